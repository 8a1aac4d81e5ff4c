"""The platform's calendar: the first day of data, which is the first daily partition.

The daily partitions run from the first day to yesterday (UTC). The first day is, in order:
`FRAUD_START_DATE` when set; else the day recorded in the data folder (`calendar.json`, written
by whoever knows where the data start: `fraud demo` writes its first day there); else 2026-01-01.
Recording it with the data keeps `make dev`, the daemon and every run worker on the same
partitions as the data, without an environment variable to remember, so the UI shows the data's
days and not months of partitions that can never have files.
"""

from __future__ import annotations

import json
import os
from datetime import date

from fraud_core.storage import DataLayout, atomic_path

START_ENV = "FRAUD_START_DATE"
DEFAULT_FIRST_DAY = date(2026, 1, 1)


def _parse(text: str, where: str) -> date:
    try:
        return date.fromisoformat(text.strip())
    except ValueError:
        raise ValueError(f"{where}: {text!r} is not a day (YYYY-MM-DD)") from None


def first_day(layout: DataLayout | None = None) -> date:
    """The first daily partition (see the module docstring)."""
    text = os.environ.get(START_ENV, "").strip()
    if text:
        return _parse(text, START_ENV)
    layout = layout or DataLayout.from_env()
    try:
        recorded = json.loads(layout.calendar.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return DEFAULT_FIRST_DAY
    except (ValueError, UnicodeDecodeError) as err:
        raise ValueError(f"{layout.calendar}: not a JSON calendar ({err})") from None
    if not isinstance(recorded, dict) or not isinstance(recorded.get("first_day"), str):
        raise ValueError(f'{layout.calendar}: expected {{"first_day": "YYYY-MM-DD"}}')
    return _parse(recorded["first_day"], f"{layout.calendar}: first_day")


def record_first_day(layout: DataLayout, day: date) -> None:
    """Make `day` the first daily partition of this data folder (`FRAUD_START_DATE`, when set,
    still wins). Code locations read it when they load: restart `make dev` after a change."""
    with atomic_path(layout.calendar) as tmp:
        tmp.write_text(json.dumps({"first_day": day.isoformat()}) + "\n", encoding="utf-8")
