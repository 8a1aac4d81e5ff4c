"""`label_feed_sensor`: keeps the label feed (`labels`) up to date, and what reads it.

Each tick:
- label files: a file of `landing/labels/` that is new, changed or gone since the cursor saw it
  makes its label days due (a file's days are read from its `label_date` column);
- (the labels posted to the service are drained with the decision log by `decision_log_sensor`,
  whose `served_days_job` run builds their label days);
- due days that are partitions (not today's yet) become one `labels_job` run over first..last;
  the others wait in the cursor until they are partitions;
- a newer `labels` materialization requests `model_performance_job` for the served days its
  labels judge (its `served_days` metadata) and that were judged before it: late labels
  re-materialize old days; and, when its
  events changed and a day they can reach (`features_affected_from` on: a label counts in the
  risk features of later orders whose risk window reaches its order) has features computed
  before them, `entity_features_job` from that day to the newest day with features, in the daily
  features lane.

Cursor: `{"files": {name: [fingerprint, [days]]}, "labels": id, "pending": [days]}`.
"""

from __future__ import annotations

import hashlib
import json

from dagster import (
    AssetKey,
    DefaultSensorStatus,
    RunRequest,
    SensorEvaluationContext,
    SensorResult,
    SkipReason,
    sensor,
)

from fraud_assets.jobs import (
    DAILY_FEATURES_LANE,
    entity_features_job,
    labels_job,
    model_performance_job,
)
from fraud_assets.lib.materializations import latest_storage_ids
from fraud_assets.partitions import daily_partitions, partition_range_tags
from fraud_assets.sensors.ticks import tick_interval_s
from fraud_core.labels import label_file_paths, read_label_file
from fraud_core.landing import fingerprint
from fraud_core.storage import DataLayout, as_path

LABELS = AssetKey("labels")
ENTITY_FEATURES = AssetKey("entity_features")
PERFORMANCE = AssetKey("model_performance")
TICK_INTERVAL_S = 60


def read_cursor(text: str | None) -> dict:
    cursor = json.loads(text) if text else {}
    return {
        "files": cursor.get("files", {}),
        "labels": int(cursor.get("labels", 0)),
        "pending": cursor.get("pending", []),
    }


def changed_label_files(layout: DataLayout, seen: dict) -> tuple[dict, set[str]]:
    """The label files as they are now ({name: [fingerprint, days]}) and the label days that a
    new, changed or removed file makes due."""
    now: dict = {}
    due: set[str] = set()
    for path in label_file_paths(as_path(layout.label_landing)):
        size, mtime_ns = fingerprint(path)
        stamp = f"{size}:{mtime_ns}"
        before = seen.get(path.name)
        if before is not None and before[0] == stamp:
            now[path.name] = before
            continue
        days = [d.isoformat() for d in read_label_file(path).days]
        now[path.name] = [stamp, days]
        due.update(days)
        if before is not None:  # the days it held before may have lost events
            due.update(before[1])
    for name, (_, days) in seen.items():
        if name not in now:
            due.update(days)
    return now, due


def _newest(instance, key: AssetKey, after: int):
    records = instance.fetch_materializations(key, limit=1).records
    if records and records[0].storage_id > after:
        return records[0]
    return None


def _metadata_days(record, name: str) -> list[str]:
    materialization = record.asset_materialization
    value = materialization.metadata.get(name) if materialization else None
    return list(value.value) if value is not None else []


@sensor(
    name="label_feed_sensor",
    jobs=[labels_job, model_performance_job, entity_features_job],
    minimum_interval_seconds=tick_interval_s(TICK_INTERVAL_S),
    default_status=DefaultSensorStatus.RUNNING,
    description=(
        "Keeps the label feed up to date: label files dropped into landing/labels become runs "
        "of their label days; new labels refresh model_performance for the served days they "
        "judge and the entity features they can reach."
    ),
)
def label_feed_sensor(context: SensorEvaluationContext) -> SensorResult:
    instance = context.instance
    cursor = read_cursor(context.cursor)
    layout = DataLayout.from_env()
    requests: list[RunRequest] = []
    notes: list[str] = []

    files, due = changed_label_files(layout, cursor["files"])
    if due:
        notes.append(f"label files changed: {len(due)} label day(s) due")
    cursor["files"] = files
    partitions = set(daily_partitions.get_partition_keys())
    due.update(cursor["pending"])
    ready = sorted(d for d in due if d in partitions)
    first_partition = min(partitions, default="")
    # a day not yet a partition (today) waits; one before the first never will be
    cursor["pending"] = sorted(d for d in due if d not in partitions and d > first_partition)
    if ready:
        first, last = ready[0], ready[-1]
        key = hashlib.sha256(json.dumps([ready, files], sort_keys=True).encode()).hexdigest()
        requests.append(
            RunRequest(
                job_name=labels_job.name,
                run_key=f"labels-{first}-{last}-{key[:12]}",
                tags=partition_range_tags(first, last),
            )
        )
        notes.append(f"labels {first}..{last}")

    judged = _newest(instance, LABELS, cursor["labels"])
    if judged is not None:
        # a served day judged after these labels counts them already (a served_days_job run)
        served = [d for d in _metadata_days(judged, "served_days") if d in partitions]
        judged_at = latest_storage_ids(instance, PERFORMANCE, served)
        days = [d for d in served if judged_at[d] < judged.storage_id]
        if days:
            requests.append(
                RunRequest(
                    job_name=model_performance_job.name,
                    run_key=f"performance-{judged.storage_id}",
                    tags=partition_range_tags(days[0], days[-1]),
                )
            )
            notes.append(f"model_performance {days[0]}..{days[-1]}")
        materialization = judged.asset_materialization
        reach = materialization.metadata.get("features_affected_from") if materialization else None
        start = str(reach.value) if reach is not None else ""
        featured = [d.isoformat() for d in layout.entity_features_days()]
        # features the changed labels can reach, computed before them (a day computed after
        # them counts them already)
        reached = [d for d in featured if start and d >= start]
        computed_at = latest_storage_ids(instance, ENTITY_FEATURES, reached)
        stale = [d for d in reached if computed_at[d] < judged.storage_id]
        if stale:
            first = stale[0]
            requests.append(
                RunRequest(
                    job_name=entity_features_job.name,
                    run_key=f"relabel-{judged.storage_id}",
                    tags={**DAILY_FEATURES_LANE, **partition_range_tags(first, featured[-1])},
                )
            )
            notes.append(f"entity_features {first}..{featured[-1]} (labels changed)")
        cursor["labels"] = judged.storage_id

    text = json.dumps(cursor, sort_keys=True)
    if not requests:
        return SensorResult(
            cursor=text, skip_reason=SkipReason("; ".join(notes) or "no new labels")
        )
    context.log.info("; ".join(notes))
    return SensorResult(run_requests=requests, cursor=text)
