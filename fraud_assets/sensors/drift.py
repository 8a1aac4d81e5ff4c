"""`model_deployed_sensor`: when the served model changes, every day's feature drift is computed
again against it, since the drift reference is the deployed model's training window.

Each tick reads the registry's `current` pointer (so a promotion by `deployed_model` and a
rollback from the CLI count alike) and compares it with the version in the cursor,
`{"version": ...}`. A new version requests `feature_drift_job` over every day with features, one
range run per stretch of consecutive days (a day without features would fail its run); the
cursor then names that version. No model, an unreadable pointer, or no day with features: skip.
While a run of the daily-features or the retrain lane is in flight (features may be rewritten, a
newer model may be deployed), the sensor waits and keeps its cursor, so that a retrain right
after new days costs one drift run, not two.
"""

from __future__ import annotations

import json
import time
from datetime import date

from dagster import (
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
from fraud_assets.sensors.landing import contiguous_ranges
from fraud_assets.sensors.retrain import runs_in_flight
from fraud_assets.sensors.ticks import tick_interval_s
from fraud_core.model.artifact import ModelIntegrityError, current_version
from fraud_core.model.dataset import feature_days_on_disk

TICK_INTERVAL_S = 60


def read_cursor(text: str | None) -> str | None:
    """The model version whose drift the sensor last requested (None: none yet)."""
    return json.loads(text).get("version") if text else None


def write_cursor(version: str) -> str:
    return json.dumps({"version": version})


def drift_ranges(days: list[date]) -> list[tuple[date, date]]:
    """The (first, last) stretches of consecutive days with features, inside the partitions."""
    start = daily_partitions.start.date()
    return contiguous_ranges(d for d in days if d >= start)


@sensor(
    name="model_deployed_sensor",
    job=feature_drift_job,
    minimum_interval_seconds=tick_interval_s(TICK_INTERVAL_S),
    default_status=DefaultSensorStatus.RUNNING,
    description=(
        "Watches the deployed model (the registry's current pointer). When a new version is "
        "served (promoted, or rolled back to), feature_drift_job computes every day's drift "
        "again against that model's training window, one run over all days with features."
    ),
)
def model_deployed_sensor(
    context: SensorEvaluationContext, layout: DataLayoutResource
) -> SensorResult:
    data = layout.layout()
    seen = read_cursor(context.cursor)
    try:
        version = current_version(data.models)
    except ModelIntegrityError as err:
        return SensorResult(skip_reason=SkipReason(f"the deployed model is unreadable: {err}"))
    if version is None:
        return SensorResult(skip_reason=SkipReason("no model deployed yet"))
    if version == seen:
        return SensorResult(skip_reason=SkipReason(f"drift is computed against {version}"))
    busy = [
        run_id
        for lane in (DAILY_FEATURES_LANE, RETRAIN_LANE)
        for run_id in runs_in_flight(context.instance, lane, time.time())
    ]
    if busy:  # features may be rewritten, or a newer model deployed: look again next tick
        return SensorResult(
            skip_reason=SkipReason(f"{version} is deployed; waiting for {', '.join(busy)}")
        )
    ranges = drift_ranges(feature_days_on_disk(data))
    if not ranges:
        return SensorResult(skip_reason=SkipReason(f"{version} is deployed, no day has features"))
    spans = ", ".join(f"{first}..{last}" for first, last in ranges)
    context.log.info(f"{version} is deployed (was {seen}): drift of {spans} against it")
    requests = [
        RunRequest(
            job_name=feature_drift_job.name,
            tags={**partition_range_tags(first, last), "fraud/model_version": version},
        )
        for first, last in ranges
    ]
    return SensorResult(run_requests=requests, cursor=write_cursor(version))
