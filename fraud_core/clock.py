"""How far ahead of the wall clock an order may be dated, for every door orders come in by (the
landing folder and the scoring API).

One far-future order would otherwise move its entities' clocks: every later order of the same
customer, e-mail or IP would be stored and scored as if it happened after it. So both doors
refuse orders dated more than `max_future_s()` seconds after now (`FRAUD_MAX_FUTURE_S`, default
five minutes of clock skew between the shop's servers and ours).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta

MAX_FUTURE_ENV = "FRAUD_MAX_FUTURE_S"
DEFAULT_MAX_FUTURE_S = 300


def max_future_s(env: Mapping[str, str] | None = None) -> int:
    """The allowed clock skew in seconds, from `FRAUD_MAX_FUTURE_S` (default 300)."""
    text = (os.environ if env is None else env).get(MAX_FUTURE_ENV, "").strip()
    if not text:
        return DEFAULT_MAX_FUTURE_S
    try:
        value = int(text)
    except ValueError:
        raise ValueError(f"{MAX_FUTURE_ENV}: {text!r} is not a whole number of seconds") from None
    if value < 0:
        raise ValueError(f"{MAX_FUTURE_ENV}: {value} is negative")
    return value


def latest_accepted(skew_s: int, now: datetime | None = None) -> datetime:
    """The latest order time accepted now (UTC)."""
    return (now or datetime.now(UTC)) + timedelta(seconds=skew_s)
