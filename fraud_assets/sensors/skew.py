"""`serving_skew_sensor`: judges each served day as soon as it can be judged.

Each tick reads the `scored_orders` and `entity_features` materializations newer than its cursor
(their partitions are the days that changed). Every such day that now has a `scored_orders` file
and an `entity_features` file becomes part of one `serving_skew_job` run over first..last (a
day between them without served orders costs nothing); features recomputed for a day (a late
file, a new label) compare it again. Every day whose scored orders changed also gets its
`model_performance` (with the labels known so far; `label_feed_sensor` runs it again as labels
arrive).

Cursor: `{"scored": storage id, "features": storage id}` of the newest materializations seen.
"""

from __future__ import annotations

import json

from dagster import (
    AssetKey,
    AssetRecordsFilter,
    DefaultSensorStatus,
    RunRequest,
    SensorEvaluationContext,
    SensorResult,
    SkipReason,
    sensor,
)

from fraud_assets.jobs import model_performance_job, serving_skew_job
from fraud_assets.partitions import daily_partitions, partition_range_tags
from fraud_assets.sensors.ticks import tick_interval_s
from fraud_core.storage import DataLayout

WATCHED = {"scored": AssetKey("scored_orders"), "features": AssetKey("entity_features")}
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


@sensor(
    name="serving_skew_sensor",
    jobs=[serving_skew_job, model_performance_job],
    minimum_interval_seconds=tick_interval_s(TICK_INTERVAL_S),
    default_status=DefaultSensorStatus.RUNNING,
    description=(
        "Runs serving_skew for each served day once it has both its scored orders and its "
        "offline features, and again when either changes; model_performance for each day whose "
        "scored orders changed."
    ),
)
def serving_skew_sensor(context: SensorEvaluationContext) -> SensorResult:
    cursor = json.loads(context.cursor) if context.cursor else {}
    layout = DataLayout.from_env()
    due: set[str] = set()
    changed: dict[str, set[str]] = {}
    for name, key in WATCHED.items():
        changed[name], cursor[name] = _changed(context.instance, key, int(cursor.get(name, 0)))
        due |= changed[name]
    partitions = set(daily_partitions.get_partition_keys())
    served = sorted(d for d in changed["scored"] if d in partitions)
    ready = sorted(
        d
        for d in due
        if d in partitions
        and layout.scored_orders(d).exists()
        and layout.entity_features(d).exists()
    )
    text = json.dumps(cursor, sort_keys=True)
    requests = []
    if ready:
        requests.append(
            RunRequest(
                job_name=serving_skew_job.name,
                run_key=f"skew-{cursor['scored']}-{cursor['features']}",
                tags=partition_range_tags(ready[0], ready[-1]),
            )
        )
    if served:
        requests.append(
            RunRequest(
                job_name=model_performance_job.name,
                run_key=f"served-{cursor['scored']}",
                tags=partition_range_tags(served[0], served[-1]),
            )
        )
    if not requests:
        return SensorResult(cursor=text, skip_reason=SkipReason("no served day to judge"))
    context.log.info(
        f"serving skew of {len(ready)} day(s), model performance of {len(served)} served day(s)"
    )
    return SensorResult(run_requests=requests, cursor=text)
