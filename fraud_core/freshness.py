"""How fresh the platform's data is, against one clock (issue 16).

The clock (`FRAUD_CLOCK`) is the wall clock in production (`wall`, the default) or the data's own
clock for historical data (`data`: the end of the newest day any landing file or accepted day
holds, as in the demo, whose orders are months old). Every "how old" figure of the monitoring
assets (`model_performance`'s label maturity, the freshness checks) reads it here.

Each watched fact has an age: the newest accepted day of `raw_orders`, the newest day with
`entity_features`, the snapshot day the online store serves, and the newest data the deployed
model learned from (its training cutoff). An age is the time from the end of that day to the
clock; it is stale beyond its limit (hours, `FRAUD_FRESHNESS_HOURS`, e.g.
`raw_orders=36,deployed_model=720`).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from fraud_core.storage import DataLayout, as_path
from fraud_core.validation import day_of_landing_file

CLOCK_ENV = "FRAUD_CLOCK"
CLOCKS = ("wall", "data")
LIMITS_ENV = "FRAUD_FRESHNESS_HOURS"
# Hours from the end of the newest day to the clock: a daily file lands the morning after its
# day, features follow within the hour, the store with them; a model is retrained weekly or so.
DEFAULT_LIMITS_H = {
    "raw_orders": 36.0,
    "entity_features": 36.0,
    "online_store": 36.0,
    "deployed_model": 24.0 * 30,
}


def clock_mode(env: Mapping[str, str] | None = None) -> str:
    mode = (os.environ if env is None else env).get(CLOCK_ENV, "wall").strip().lower() or "wall"
    if mode not in CLOCKS:
        raise ValueError(f"{CLOCK_ENV} must be one of {', '.join(CLOCKS)}, got {mode!r}")
    return mode


def day_end(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=UTC) + timedelta(days=1)


def data_clock(layout: DataLayout) -> datetime | None:
    """The end of the newest day the data holds: the newest landing file's day or accepted day."""
    days = list(layout.raw_orders_days())
    landing = as_path(layout.landing)
    if landing.is_dir():
        days += [d for p in landing.iterdir() if (d := day_of_landing_file(p)) is not None]
    return day_end(max(days)) if days else None


def monitoring_clock(layout: DataLayout, env: Mapping[str, str] | None = None) -> datetime:
    """Now, by `FRAUD_CLOCK`: the wall clock, or the data's clock (the wall clock when the data
    folder holds no day yet)."""
    if clock_mode(env) == "data":
        found = data_clock(layout)
        if found is not None:
            return found
    return datetime.now(UTC)


def limits_h(env: Mapping[str, str] | None = None) -> dict[str, float]:
    """The staleness limits in hours: the defaults, with `FRAUD_FRESHNESS_HOURS` overrides."""
    text = (os.environ if env is None else env).get(LIMITS_ENV, "")
    limits = dict(DEFAULT_LIMITS_H)
    for part in filter(None, (p.strip() for p in text.split(","))):
        name, _, value = part.partition("=")
        name = name.strip()
        if name not in limits:
            raise ValueError(f"{LIMITS_ENV}: unknown name {name!r} (known: {', '.join(limits)})")
        try:
            limits[name] = float(value)
        except ValueError as err:
            raise ValueError(f"{LIMITS_ENV}: {name} needs hours, got {value!r}") from err
    return limits


@dataclass(frozen=True)
class Freshness:
    name: str
    newest: date | None  # the newest day the fact holds (None: nothing yet)
    age_h: float | None
    limit_h: float

    @property
    def fresh(self) -> bool:
        return self.age_h is not None and self.age_h <= self.limit_h

    def describe(self) -> str:
        if self.newest is None:
            return f"{self.name}: nothing yet"
        state = "fresh" if self.fresh else "STALE"
        return (
            f"{self.name}: newest day {self.newest}, {self.age_h:,.1f} h old at the clock "
            f"(limit {self.limit_h:,.0f} h): {state}"
        )


def freshness(name: str, newest: date | None, clock: datetime, limit_h: float) -> Freshness:
    if newest is None:
        return Freshness(name, None, None, limit_h)
    age = max(0.0, (clock - day_end(newest)).total_seconds() / 3600)
    return Freshness(name, newest, age, limit_h)
