"""`label_feed_sensor`: keeps the label feed (`labels`) up to date, and what reads it.

Each tick:
- label files: a file of `landing/labels/` that is new, changed or gone since the cursor saw it
  makes its label days due (a file's days are read from its `label_date` column);
- the service's labels: when the `{p}labels` stream holds an entry that waited
  `FRAUD_LABEL_DRAIN_AFTER_S` (default 300 s), it requests `label_log_job` (none in flight); a
  newer `label_log` materialization makes its label days due;
- due days that are partitions (not today's yet) become one `labels_job` run over first..last;
  the others wait in the cursor until they are partitions;
- a newer `labels` materialization requests `model_performance_job` for the served days its
  labels judge (its `served_days` metadata): late labels re-materialize old days; and, when its
  events changed on a label day D that has features, `entity_features_job` from D to the newest
  day with features, in the daily features lane (risk features count the feed's labels, and a
  label known on D changes only features of orders after it).

Cursor: `{"files": {name: [fingerprint, [days]]}, "drain": id, "labels": id, "pending": [days]}`.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from pathlib import Path

import redis
from dagster import (
    AssetKey,
    DefaultSensorStatus,
    RunRequest,
    RunsFilter,
    SensorEvaluationContext,
    SensorResult,
    SkipReason,
    sensor,
)

from fraud_assets.jobs import (
    DAILY_FEATURES_LANE,
    entity_features_job,
    label_log_job,
    labels_job,
    model_performance_job,
)
from fraud_assets.partitions import daily_partitions, partition_range_tags
from fraud_assets.sensors.decisions import IN_FLIGHT
from fraud_assets.sensors.ticks import tick_interval_s
from fraud_core.env import env_number
from fraud_core.labels import label_file_paths, read_label_file
from fraud_core.landing import fingerprint
from fraud_core.online_keys import OnlineKeys, resolve_key_prefix
from fraud_core.redis_server import DEFAULT_REDIS_URL, ENV_VAR
from fraud_core.storage import DataLayout

LABEL_LOG = AssetKey("label_log")
LABELS = AssetKey("labels")
TICK_INTERVAL_S = 60
DRAIN_AFTER_ENV = "FRAUD_LABEL_DRAIN_AFTER_S"
DEFAULT_DRAIN_AFTER_S = 300


def read_cursor(text: str | None) -> dict:
    cursor = json.loads(text) if text else {}
    return {
        "files": cursor.get("files", {}),
        "drain": int(cursor.get("drain", 0)),
        "labels": int(cursor.get("labels", 0)),
        "pending": cursor.get("pending", []),
    }


def changed_label_files(layout: DataLayout, seen: dict) -> tuple[dict, set[str]]:
    """The label files as they are now ({name: [fingerprint, days]}) and the label days that a
    new, changed or removed file makes due."""
    now: dict = {}
    due: set[str] = set()
    for path in label_file_paths(Path(layout.label_landing)):
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


def _stream_due(keys: OnlineKeys) -> tuple[str | None, str | None]:
    """(why the label stream should be drained now or None, a problem reaching Redis)."""
    url = os.environ.get(ENV_VAR) or DEFAULT_REDIS_URL
    client = redis.Redis.from_url(url, socket_timeout=2, socket_connect_timeout=2)
    try:
        head = client.xrange(keys.labels, "-", "+", count=1)
        length = client.xlen(keys.labels) if head else 0
    except (redis.RedisError, OSError) as err:
        return None, f"no Redis at {url}: {err}"
    finally:
        client.close()
    if not head:
        return None, None
    waited = time.time() - int(head[0][0].decode().split("-")[0]) / 1000
    after = env_number(DRAIN_AFTER_ENV, DEFAULT_DRAIN_AFTER_S, float, low=0)
    if waited >= after:
        return f"{length:,} posted label(s), the oldest waited {waited:,.0f} s", None
    return None, None


@sensor(
    name="label_feed_sensor",
    jobs=[label_log_job, labels_job, model_performance_job, entity_features_job],
    minimum_interval_seconds=tick_interval_s(TICK_INTERVAL_S),
    default_status=DefaultSensorStatus.RUNNING,
    description=(
        "Keeps the label feed up to date: label files dropped into landing/labels and labels "
        "posted to /v1/labels (drained after FRAUD_LABEL_DRAIN_AFTER_S) become runs of their "
        "label days; new labels refresh model_performance for the served days they judge and "
        "the entity features from the first label day that changed."
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
    drained = _newest(instance, LABEL_LOG, cursor["drain"])
    if drained is not None:
        days = _metadata_days(drained, "label_days")
        due.update(days)
        cursor["drain"] = drained.storage_id
        notes.append(f"drain {drained.run_id[:8]} brought {len(days)} label day(s)")
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
        days = [d for d in _metadata_days(judged, "served_days") if d in partitions]
        if days:
            requests.append(
                RunRequest(
                    job_name=model_performance_job.name,
                    run_key=f"performance-{judged.storage_id}",
                    tags=partition_range_tags(days[0], days[-1]),
                )
            )
            notes.append(f"model_performance {days[0]}..{days[-1]}")
        changed = _metadata_days(judged, "changed_days")
        featured = [d.isoformat() for d in layout.entity_features_days()]
        if changed and featured and featured[-1] >= min(changed):
            first = max(min(changed), featured[0])
            requests.append(
                RunRequest(
                    job_name=entity_features_job.name,
                    run_key=f"relabel-{judged.storage_id}",
                    tags={**DAILY_FEATURES_LANE, **partition_range_tags(first, featured[-1])},
                )
            )
            notes.append(f"entity_features {first}..{featured[-1]} (labels changed)")
        cursor["labels"] = judged.storage_id

    in_flight = instance.get_run_ids(
        RunsFilter(job_name=label_log_job.name, statuses=IN_FLIGHT), limit=1
    )
    if not in_flight:
        why, problem = _stream_due(OnlineKeys(resolve_key_prefix()))
        if why:
            requests.append(RunRequest(job_name=label_log_job.name, run_key=None))
            notes.append(f"drain: {why}")
        elif problem:
            notes.append(problem)
    text = json.dumps(cursor, sort_keys=True)
    if not requests:
        return SensorResult(
            cursor=text, skip_reason=SkipReason("; ".join(notes) or "no new labels")
        )
    context.log.info("; ".join(notes))
    return SensorResult(run_requests=requests, cursor=text)
