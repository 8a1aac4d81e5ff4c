"""How far ahead of the wall clock an order may be dated, for every door orders come in by (the
landing folder and the scoring API).

One far-future order would otherwise move its entities' clocks: every later order of the same
customer, e-mail or IP would be stored and scored as if it happened after it. So both doors
refuse orders dated more than `max_future_s()` seconds after now (`FRAUD_MAX_FUTURE_S`, default
five minutes of clock skew between the shop's servers and ours).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta

from fraud_core.env import env_number

MAX_FUTURE_ENV = "FRAUD_MAX_FUTURE_S"
DEFAULT_MAX_FUTURE_S = 300


def max_future_s(env: Mapping[str, str] | None = None) -> int:
    """The allowed clock skew in seconds, from `FRAUD_MAX_FUTURE_S` (default 300)."""
    return env_number(MAX_FUTURE_ENV, DEFAULT_MAX_FUTURE_S, int, low=0, env=env)


def latest_accepted(skew_s: int, now: datetime | None = None) -> datetime:
    """The latest order time accepted now (UTC)."""
    return (now or datetime.now(UTC)) + timedelta(seconds=skew_s)
