"""`feature_drift_sensor`: every day with features gets its drift, against the model that serves,
after the path to serving has taken the features, never before it.

Drift is monitoring: it reads features, it does not feed the model or the online store. So
`daily_features_job` stops at `entity_features` (the store and the model follow sooner) and this
sensor requests `feature_drift_job` (lower run priority than what serves) for:

- **every day with features** when the served model changes (promoted, or rolled back to): the
  reference is the served model's training window, so each day's check history has one result
  per served model;
- otherwise **the days whose features were materialized since the last request** (the landing
  sensor's days, a backfill, a label-driven recompute), against the model served now (or a
  trailing window before the first model).

One range run per stretch of consecutive days (a day without a features file would fail its
run). The cursor, `{"version": ..., "features": storage id}`, names the served model the last
requests were for and the newest `entity_features` materialization they covered; without one,
every day with features is due.

It waits, keeping its cursor, while a run of the daily-features or the retrain lane is in flight
(features may be rewritten, another model may be deployed), and while the newest features are
newer than the newest `online_store` load for up to `FOLLOW_GRACE_S`: `features_updated_sensor`
answers new features with a retrain or a store load, and a retrain's model is the reference the
drift should use. So a year's backfill costs one drift run, against the model trained on it, and
it never holds the store back. When nothing loads the store (that sensor stopped), the drift runs
after the grace.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass
from datetime import date

from dagster import (
    DagsterEventType,
    DagsterInstance,
    DefaultSensorStatus,
    RunRequest,
    SensorEvaluationContext,
    SensorResult,
    SkipReason,
    sensor,
)

from fraud_assets.jobs import DAILY_FEATURES_LANE, RETRAIN_LANE, feature_drift_job
from fraud_assets.partitions import daily_partitions, partition_range_tags
from fraud_assets.resources import DataLayoutResource
from fraud_assets.sensors.keys import ENTITY_FEATURES, ONLINE_STORE
from fraud_assets.sensors.landing import contiguous_ranges
from fraud_assets.sensors.retrain import runs_in_flight
from fraud_assets.sensors.ticks import tick_interval_s
from fraud_core.model.artifact import ModelIntegrityError, current_version
from fraud_core.model.dataset import feature_days_on_disk

TICK_INTERVAL_S = 60
# How long new features wait for the online store to take them before their drift runs anyway.
FOLLOW_GRACE_S = 600.0


@dataclass(frozen=True)
class DriftCursor:
    version: str | None = None  # the served model the last requests were for
    features: int = 0  # newest entity_features storage id they covered

    @classmethod
    def read(cls, text: str | None) -> DriftCursor:
        if not text:
            return cls()
        try:
            data = json.loads(text)
            return cls(data.get("version"), int(data.get("features", 0)))
        except (ValueError, TypeError, AttributeError):
            return cls()  # unreadable: every day is due again, which is safe

    def write(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)


def drift_ranges(days: list[date]) -> list[tuple[date, date]]:
    """The (first, last) stretches of consecutive days with features, inside the partitions."""
    start = daily_partitions.start.date()
    return contiguous_ranges(d for d in days if d >= start)


def features_since(instance: DagsterInstance, after: int) -> dict[str, int]:
    """entity_features partitions materialized after storage id `after`: key -> newest id."""
    return dict(
        instance.event_log_storage.get_latest_storage_id_by_partition(
            ENTITY_FEATURES, DagsterEventType.ASSET_MATERIALIZATION, after_cursor=after
        )
    )


def store_behind(instance: DagsterInstance, features: int, now: float) -> str | None:
    """Why the drift waits for the online store to take features up to storage id `features`
    (None: it does not wait)."""
    store = instance.fetch_materializations(ONLINE_STORE, limit=1).records
    if store and store[0].storage_id > features:
        return None
    newest = instance.fetch_materializations(ENTITY_FEATURES, limit=1).records
    age = now - newest[0].timestamp if newest else FOLLOW_GRACE_S
    if age >= FOLLOW_GRACE_S:
        return None
    return (
        f"waiting for the online store (or a retrain) to take the new features first, "
        f"{FOLLOW_GRACE_S - age:.0f} s at most"
    )


@dataclass
class DriftPlan:
    cursor: DriftCursor
    ranges: list[tuple[date, date]]
    reason: str  # what is due, or why nothing is requested


def plan_drift(
    instance: DagsterInstance,
    cursor: DriftCursor,
    version: str | None,
    days: list[date],
    now: float,
) -> DriftPlan:
    """The decision of one tick (see the module docstring); `version` is the served model,
    `days` the days with a features file."""
    new = features_since(instance, cursor.features)
    newest = max(new.values(), default=cursor.features)
    model_changed = version is not None and version != cursor.version
    if not model_changed and not new:
        served = f"model {version}" if version else "no model is served yet"
        return DriftPlan(cursor, [], f"every day's drift is up to date ({served})")
    busy = [
        run_id
        for lane in (DAILY_FEATURES_LANE, RETRAIN_LANE)
        for run_id in runs_in_flight(instance, lane, now)
    ]
    if busy:  # features may be rewritten, or another model deployed: look again next tick
        return DriftPlan(cursor, [], f"waiting for {', '.join(busy)}")
    waiting = store_behind(instance, newest, now) if new else None
    if waiting:
        return DriftPlan(cursor, [], waiting)
    on_disk = set(days)
    if model_changed:
        due, why = on_disk, f"{version} is served (was {cursor.version or 'none'}): every day"
    else:
        due = {d for d in (date.fromisoformat(k) for k in new) if d in on_disk}
        why = f"{len(new)} day(s) of new features"
    return DriftPlan(DriftCursor(version, newest), drift_ranges(sorted(due)), why)


@sensor(
    name="feature_drift_sensor",
    job=feature_drift_job,
    minimum_interval_seconds=tick_interval_s(TICK_INTERVAL_S),
    default_status=DefaultSensorStatus.RUNNING,
    description=(
        "Computes feature drift after the path to serving: feature_drift_job over the days "
        "whose features are new (once the online store or a retrain has taken them), and over "
        "every day with features when a new model is served (promoted, or rolled back to), "
        "against that model's training window."
    ),
)
def feature_drift_sensor(
    context: SensorEvaluationContext, layout: DataLayoutResource
) -> SensorResult:
    data = layout.layout()
    cursor = DriftCursor.read(context.cursor)
    try:
        version = current_version(data.models)
    except ModelIntegrityError as err:
        return SensorResult(skip_reason=SkipReason(f"the deployed model is unreadable: {err}"))
    plan = plan_drift(context.instance, cursor, version, feature_days_on_disk(data), time.time())
    if plan.cursor == cursor:
        return SensorResult(skip_reason=SkipReason(plan.reason))
    if not plan.ranges:  # nothing due has a features file any more: remember what was seen
        return SensorResult(skip_reason=SkipReason(plan.reason), cursor=plan.cursor.write())
    spans = ", ".join(f"{first}..{last}" for first, last in plan.ranges)
    context.log.info(f"{plan.reason}: drift of {spans}")
    tags = {"fraud/model_version": version} if version else {}
    requests = [
        RunRequest(job_name=feature_drift_job.name, tags={**partition_range_tags(a, b), **tags})
        for a, b in plan.ranges
    ]
    return SensorResult(run_requests=requests, cursor=plan.cursor.write())
