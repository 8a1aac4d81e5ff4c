"""`decision_log_sensor`: keeps the streams the service writes in Redis bounded, and the days
they touch up to date.

Each tick does two things. It looks at the newest drain (`decision_log` and `label_log`, the two
assets of `feedback_drain_job`): when a drain has moved decisions or labels the cursor has not
seen yet, it requests one `served_days_job` run over the days the drain touched (order days and
label days that are partitions: their scored orders, labels, realized performance and serving
skew). Then it looks at the streams: when the decision log holds at least
`FRAUD_DRAIN_AT_ENTRIES` entries (default 200,000, about 300 MB of Redis) or its oldest entry
waited `FRAUD_DRAIN_AFTER_S` (default an hour), or the oldest posted label waited
`FRAUD_LABEL_DRAIN_AFTER_S` (default 300 s), it requests `feedback_drain_job`. So a quiet shop
drains at most once an hour (labels every few minutes) and a busy one every few minutes (at 500
orders/s, every 400 s: about 200 runs a day); idle streams are never drained. A drain already in
flight waits. When no Redis answers at the configured URL, the tick skips: a sensor never starts
a server.

Cursor: `{"drain": storage id of the newest decision_log materialization already turned into a
served_days_job request}`.
"""

from __future__ import annotations

import json
import os
import time

import redis
from dagster import (
    AssetKey,
    DagsterRunStatus,
    DefaultSensorStatus,
    RunRequest,
    RunsFilter,
    SensorEvaluationContext,
    SensorResult,
    SkipReason,
    sensor,
)

from fraud_assets.jobs import feedback_drain_job, served_days_job
from fraud_assets.lib.redis_clients import connect, coordinator, redacted
from fraud_assets.partitions import daily_partitions, partition_range_tags
from fraud_assets.sensors.ticks import tick_interval_s
from fraud_core.decision_log import DRAIN_AFTER_ENV, DRAIN_AT_ENV
from fraud_core.env import env_number
from fraud_core.labels import LABEL_DRAIN_AFTER_ENV
from fraud_core.online_keys import OnlineKeys
from fraud_core.redis_server import DEFAULT_REDIS_URL, ENV_VAR

DECISION_LOG = AssetKey("decision_log")
LABEL_LOG = AssetKey("label_log")
DEFAULT_LABEL_DRAIN_AFTER_S = 300
TICK_INTERVAL_S = 60
DEFAULT_DRAIN_AT = 200_000
DEFAULT_DRAIN_AFTER_S = 3_600
IN_FLIGHT = [
    DagsterRunStatus.QUEUED,
    DagsterRunStatus.NOT_STARTED,
    DagsterRunStatus.STARTING,
    DagsterRunStatus.STARTED,
]


def read_cursor(text: str | None) -> int:
    return int(json.loads(text).get("drain", 0)) if text else 0


def write_cursor(drain: int) -> str:
    return json.dumps({"drain": drain})


def drain_due(length: int, oldest_ms: int | None, now_s: float) -> str | None:
    """Why the log should be drained now (None: not yet)."""
    if length <= 0 or oldest_ms is None:
        return None
    at = env_number(DRAIN_AT_ENV, DEFAULT_DRAIN_AT, int, low=1)
    after = env_number(DRAIN_AFTER_ENV, DEFAULT_DRAIN_AFTER_S, float, low=0)
    waited = now_s - oldest_ms / 1000
    if length >= at:
        return f"{length:,} decisions in Redis (drain at {at:,})"
    if waited >= after:
        return f"the oldest decision waited {waited:,.0f} s (drain after {after:,.0f} s)"
    return None


def partition_days(days: list[str]) -> list[str]:
    """The days a drain touched that are partitions (not before the first, not today)."""
    keys = set(daily_partitions.get_partition_keys())
    return sorted(d for d in days if d in keys)


def _drained_days(instance, run_id: str) -> list[str]:
    """Order days and label days of one drain run (its two materializations)."""
    days: list[str] = []
    for key, name in ((DECISION_LOG, "order_days"), (LABEL_LOG, "label_days")):
        for record in instance.fetch_materializations(key, limit=5).records:
            if record.run_id != run_id or record.asset_materialization is None:
                continue
            value = record.asset_materialization.metadata.get(name)
            days += list(value.value) if value is not None else []
    return days


def _oldest_ms(client: redis.Redis, stream: str) -> int | None:
    """When the stream's oldest entry was added (epoch ms, from its id), None when empty."""
    head = client.xrange(stream, "-", "+", count=1)
    return int(head[0][0].decode().split("-")[0]) if head else None


def _label_due(client: redis.Redis, keys: OnlineKeys, now_s: float) -> str | None:
    oldest = _oldest_ms(client, keys.labels)
    if oldest is None:
        return None
    waited = now_s - oldest / 1000
    after = env_number(LABEL_DRAIN_AFTER_ENV, DEFAULT_LABEL_DRAIN_AFTER_S, float, low=0)
    if waited >= after:
        return f"a posted label waited {waited:,.0f} s (drain after {after:,.0f} s)"
    return None


@sensor(
    name="decision_log_sensor",
    jobs=[feedback_drain_job, served_days_job],
    minimum_interval_seconds=tick_interval_s(TICK_INTERVAL_S),
    default_status=DefaultSensorStatus.RUNNING,
    description=(
        "Drains the scoring service's decision log and posted labels from Redis when the log "
        "holds many decisions, its oldest one waited an hour, or a posted label waited five "
        "minutes (FRAUD_DRAIN_AT_ENTRIES, FRAUD_DRAIN_AFTER_S, FRAUD_LABEL_DRAIN_AFTER_S), then "
        "brings the days each drain touched up to date in one run: scored orders, labels, "
        "realized performance, serving skew."
    ),
)
def decision_log_sensor(context: SensorEvaluationContext) -> SensorResult:
    instance = context.instance
    seen = read_cursor(context.cursor)
    requests: list[RunRequest] = []
    notes: list[str] = []
    cursor = seen
    records = instance.fetch_materializations(DECISION_LOG, limit=1).records
    if records and records[0].storage_id > seen:
        newest = records[0]
        days = partition_days(_drained_days(instance, newest.run_id))
        if days:
            requests.append(
                RunRequest(
                    job_name=served_days_job.name,
                    run_key=f"served-{newest.storage_id}",
                    tags=partition_range_tags(days[0], days[-1]),
                )
            )
        notes.append(f"days {', '.join(days) or 'none'} after drain {newest.run_id}")
        cursor = newest.storage_id

    in_flight = instance.get_run_ids(
        RunsFilter(job_name=feedback_drain_job.name, statuses=IN_FLIGHT), limit=1
    )
    if in_flight:
        notes.append(f"drain {in_flight[0]} in flight")
    else:
        url = os.environ.get(ENV_VAR) or DEFAULT_REDIS_URL
        keys = OnlineKeys.from_env()
        now = time.time()
        opened = None
        try:
            opened = connect(url, socket_timeout=2, socket_connect_timeout=2)
            client = coordinator(opened, keys)
            length = client.xlen(keys.decisions)
            oldest = _oldest_ms(client, keys.decisions)
            why = drain_due(length, oldest, now) or _label_due(client, keys, now)
        except (redis.RedisError, OSError) as err:
            return SensorResult(
                run_requests=requests,
                cursor=write_cursor(cursor),
                skip_reason=None if requests else SkipReason(f"no Redis at {redacted(url)}: {err}"),
            )
        finally:
            if opened is not None:
                opened.close()
        if why:
            requests.append(RunRequest(job_name=feedback_drain_job.name, run_key=None))
            notes.append(f"drain: {why}")
        else:
            notes.append(f"{length:,} decisions in Redis, not due")
    context.log.info("; ".join(notes))
    if not requests:
        return SensorResult(cursor=write_cursor(cursor), skip_reason=SkipReason("; ".join(notes)))
    return SensorResult(run_requests=requests, cursor=write_cursor(cursor))
