"""Freshness checks (issue 16): is what the service scores with recent enough? One check on each
of `raw_orders`, `entity_features`, `online_store` and `deployed_model`, all measured against the
platform's clock (`fraud_core.freshness`: the wall clock in production, the data's own clock for
historical data with FRAUD_CLOCK=data), shown on each asset's Checks tab and run hourly by
`freshness_schedule` (and on demand: "Execute checks" in the UI).

Dagster's own freshness checks measure against the wall clock only, which would call every
historical (demo) day stale; these read the same clock as the rest of the monitoring.
"""

# No `from __future__ import annotations`: Dagster checks the `context` annotation at definition.
from datetime import date, timedelta
from pathlib import Path

import redis
from dagster import AssetCheckResult, AssetCheckSeverity, asset_check

from fraud_assets.resources import DataLayoutResource, RedisResource
from fraud_core.freshness import clock_mode, freshness, limits_h, monitoring_clock
from fraud_core.model.artifact import ModelIntegrityError, current_version, read_card
from fraud_core.online_keys import OnlineKeys, namespace_snapshot_day
from fraud_core.storage import as_path

IS_FRESH = "is_fresh"


def _store_day(client: redis.Redis) -> tuple[date | None, str | None]:
    try:
        active = client.get(OnlineKeys.from_env().active)
    except (redis.RedisError, OSError) as err:
        return None, f"the online store does not answer: {err}"
    if active is None:
        return None, None
    return namespace_snapshot_day(active.decode()), None


def _model_day(registry: Path) -> tuple[date | None, str | None]:
    try:
        version = current_version(registry)
        if version is None:
            return None, None
        cutoff = read_card(registry, version).training_window.get("cutoff")
    except (ModelIntegrityError, OSError, ValueError) as err:
        return None, f"the registry is unreadable: {err}"
    if not cutoff:
        return None, f"model {version} has no training cutoff on its card"
    return date.fromisoformat(cutoff) - timedelta(days=1), None  # its newest day of data


def _result(name: str, day: date | None, problem: str | None, data) -> AssetCheckResult:
    clock = monitoring_clock(data)
    fact = freshness(name, day, clock, limits_h()[name])
    return AssetCheckResult(
        passed=problem is None and fact.fresh,
        severity=AssetCheckSeverity.WARN,
        description=problem or fact.describe(),
        metadata={
            "clock": f"{clock_mode()}: {clock.isoformat(timespec='seconds')}",
            "newest_day": str(day) if day else "",
            "age_hours": round(fact.age_h, 1) if fact.age_h is not None else -1.0,
            "limit_hours": fact.limit_h,
        },
    )


def _description(name: str) -> str:
    return (
        f"The newest day {name} holds is at most its limit old at the clock (FRAUD_CLOCK: wall "
        "or data; limits in FRAUD_FRESHNESS_HOURS)."
    )


# One check per asset, each with only the resources it reads: a job of raw_orders takes its
# freshness check along and never needs Redis.
@asset_check(asset="raw_orders", name=IS_FRESH, description=_description("raw_orders"))
def raw_orders_is_fresh(layout: DataLayoutResource) -> AssetCheckResult:
    data = layout.layout()
    days = data.raw_orders_days()
    return _result("raw_orders", days[-1] if days else None, None, data)


@asset_check(asset="entity_features", name=IS_FRESH, description=_description("entity_features"))
def entity_features_is_fresh(layout: DataLayoutResource) -> AssetCheckResult:
    data = layout.layout()
    days = data.entity_features_days()
    return _result("entity_features", days[-1] if days else None, None, data)


@asset_check(asset="online_store", name=IS_FRESH, description=_description("online_store"))
def online_store_is_fresh(layout: DataLayoutResource, redis: RedisResource) -> AssetCheckResult:
    client = redis.get_client()
    try:
        day, problem = _store_day(client)
    finally:
        client.close()
    return _result("online_store", day, problem, layout.layout())


@asset_check(asset="deployed_model", name=IS_FRESH, description=_description("deployed_model"))
def deployed_model_is_fresh(layout: DataLayoutResource) -> AssetCheckResult:
    data = layout.layout()
    day, problem = _model_day(as_path(data.models))
    return _result("deployed_model", day, problem, data)


FRESHNESS_CHECKS = [
    raw_orders_is_fresh,
    entity_features_is_fresh,
    online_store_is_fresh,
    deployed_model_is_fresh,
]
