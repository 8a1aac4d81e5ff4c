"""`serving_skew_sensor`: compares a served day with its offline features whenever either changed
after its last comparison.

Each tick reads the `scored_orders` and `entity_features` materializations newer than its cursor
(their partitions are the days that changed). Every such day that has a `scored_orders` file and
an `entity_features` file, and whose `serving_skew` is older than both (a `served_days_job` run
after the drain compares it already when its features were there; a day such a run in flight
covers is left to it), becomes part of one
`serving_skew_job` run over first..last (a day between them without served orders costs
nothing): features recomputed for a day (a late file, a new label) compare it again.

Cursor: `{"scored": storage id, "features": storage id}` of the newest materializations seen.
"""

from __future__ import annotations

import json

from dagster import (
    AssetKey,
    AssetRecordsFilter,
    DefaultSensorStatus,
    RunRequest,
    RunsFilter,
    SensorEvaluationContext,
    SensorResult,
    SkipReason,
    sensor,
)

from fraud_assets.jobs import served_days_job, serving_skew_job
from fraud_assets.lib.materializations import latest_storage_ids
from fraud_assets.partitions import daily_partitions, partition_range_tags, tagged_days
from fraud_assets.sensors.decisions import IN_FLIGHT
from fraud_assets.sensors.ticks import tick_interval_s
from fraud_core.storage import DataLayout

WATCHED = {"scored": AssetKey("scored_orders"), "features": AssetKey("entity_features")}
SKEW = AssetKey("serving_skew")
TICK_INTERVAL_S = 60
_PAGE = 1_000


def _changed(instance, key: AssetKey, after: int) -> tuple[set[str], int]:
    """Partitions of `key` materialized after storage id `after`, and the newest id seen."""
    days: set[str] = set()
    newest = after
    while True:
        records = instance.fetch_materializations(
            AssetRecordsFilter(asset_key=key, after_storage_id=newest), limit=_PAGE, ascending=True
        ).records
        for record in records:
            partition = record.asset_materialization.partition
            if partition:
                days.add(partition)
            newest = max(newest, record.storage_id)
        if len(records) < _PAGE:
            return days, newest


def _stale(instance, days: list[str]) -> set[str]:
    """The days whose serving skew predates their scored orders or their features."""
    compared = latest_storage_ids(instance, SKEW, days)
    inputs = [latest_storage_ids(instance, key, days) for key in WATCHED.values()]
    return {d for d in days if any(ids[d] > compared[d] for ids in inputs)}


def _being_judged(instance) -> set[str]:
    """Days a `served_days_job` run in flight covers: it compares them itself."""
    days: set[str] = set()
    runs = instance.get_runs(RunsFilter(job_name=served_days_job.name, statuses=IN_FLIGHT))
    for run in runs:
        days.update(d.isoformat() for d in tagged_days(run.tags) or [])
    return days


@sensor(
    name="serving_skew_sensor",
    jobs=[serving_skew_job],
    minimum_interval_seconds=tick_interval_s(TICK_INTERVAL_S),
    default_status=DefaultSensorStatus.RUNNING,
    description=(
        "Runs serving_skew for each served day once it has both its scored orders and its "
        "offline features, and again when either changes."
    ),
)
def serving_skew_sensor(context: SensorEvaluationContext) -> SensorResult:
    cursor = json.loads(context.cursor) if context.cursor else {}
    layout = DataLayout.from_env()
    due: set[str] = set()
    for name, key in WATCHED.items():
        days, cursor[name] = _changed(context.instance, key, int(cursor.get(name, 0)))
        due |= days
    partitions = set(daily_partitions.get_partition_keys())
    busy = _being_judged(context.instance)
    candidates = [
        d
        for d in sorted(due)
        if d in partitions
        and d not in busy
        and layout.scored_orders(d).exists()
        and layout.entity_features(d).exists()
    ]
    ready = sorted(_stale(context.instance, candidates))
    text = json.dumps(cursor, sort_keys=True)
    if not ready:
        return SensorResult(cursor=text, skip_reason=SkipReason("no served day to compare"))
    context.log.info(f"serving skew of {len(ready)} day(s), {ready[0]}..{ready[-1]}")
    return SensorResult(
        run_requests=[
            RunRequest(
                job_name=serving_skew_job.name,
                run_key=f"skew-{cursor['scored']}-{cursor['features']}",
                tags=partition_range_tags(ready[0], ready[-1]),
            )
        ],
        cursor=text,
    )
