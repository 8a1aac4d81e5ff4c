"""`decision_log_sensor`: keeps the service's decision log in Redis bounded and the scored orders
up to date.

Each tick does two things. It looks at the newest `decision_log` materialization: when a drain
has moved orders the cursor has not seen yet, it requests `scored_orders_job` for each order day
the drain touched (days inside the partitions). Then it looks at the stream: when it holds at
least `FRAUD_DRAIN_AT_ENTRIES` entries (default 200,000, about 300 MB of Redis) or its oldest
entry waited `FRAUD_DRAIN_AFTER_S` (default an hour), it requests `decision_log_job`. So a quiet
shop drains at most once an hour and a busy one every few minutes (at 500 orders/s, every 400 s:
about 200 runs a day); an idle log is never drained. A drain already in flight waits. When no
Redis answers at the configured URL, the tick skips: a sensor never starts a server.

Cursor: `{"drain": storage id of the newest decision_log materialization already turned into
scored_orders requests}`.
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

from fraud_assets.jobs import decision_log_job, scored_orders_job
from fraud_assets.partitions import daily_partitions
from fraud_assets.sensors.ticks import tick_interval_s
from fraud_core.env import env_number
from fraud_core.online_keys import OnlineKeys, resolve_key_prefix
from fraud_core.redis_server import DEFAULT_REDIS_URL, ENV_VAR

DECISION_LOG = AssetKey("decision_log")
TICK_INTERVAL_S = 60
DRAIN_AT_ENV = "FRAUD_DRAIN_AT_ENTRIES"
DRAIN_AFTER_ENV = "FRAUD_DRAIN_AFTER_S"
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


def scored_days(days: list[str]) -> list[str]:
    """The order days a drain touched that are partitions (not before the first, not today)."""
    keys = set(daily_partitions.get_partition_keys())
    return [d for d in days if d in keys]


@sensor(
    name="decision_log_sensor",
    jobs=[decision_log_job, scored_orders_job],
    minimum_interval_seconds=tick_interval_s(TICK_INTERVAL_S),
    default_status=DefaultSensorStatus.RUNNING,
    description=(
        "Drains the scoring service's decision log from Redis when it holds many decisions or "
        "its oldest one waited an hour (FRAUD_DRAIN_AT_ENTRIES, FRAUD_DRAIN_AFTER_S), and "
        "brings scored_orders up to date for the order days each drain touched."
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
        metadata = newest.asset_materialization.metadata if newest.asset_materialization else {}
        days = metadata.get("order_days")
        days = scored_days(list(days.value) if days is not None else [])
        for day in days:
            requests.append(
                RunRequest(
                    job_name=scored_orders_job.name,
                    partition_key=day,
                    run_key=f"scored-{newest.storage_id}-{day}",
                )
            )
        notes.append(f"scored orders of {', '.join(days) or 'no day'} after drain {newest.run_id}")
        cursor = newest.storage_id

    in_flight = instance.get_run_ids(
        RunsFilter(job_name=decision_log_job.name, statuses=IN_FLIGHT), limit=1
    )
    if in_flight:
        notes.append(f"drain {in_flight[0]} in flight")
    else:
        url = os.environ.get(ENV_VAR) or DEFAULT_REDIS_URL
        keys = OnlineKeys(resolve_key_prefix())
        client = redis.Redis.from_url(url, socket_timeout=2, socket_connect_timeout=2)
        try:
            length = client.xlen(keys.decisions)
            head = client.xrange(keys.decisions, "-", "+", count=1)
        except (redis.RedisError, OSError) as err:
            return SensorResult(
                run_requests=requests,
                cursor=write_cursor(cursor),
                skip_reason=None if requests else SkipReason(f"no Redis at {url}: {err}"),
            )
        finally:
            client.close()
        oldest = int(head[0][0].decode().split("-")[0]) if head else None
        why = drain_due(length, oldest, time.time())
        if why:
            requests.append(RunRequest(job_name=decision_log_job.name, run_key=None))
            notes.append(f"drain: {why}")
        else:
            notes.append(f"{length:,} decisions in Redis, not due")
    context.log.info("; ".join(notes))
    if not requests:
        return SensorResult(cursor=write_cursor(cursor), skip_reason=SkipReason("; ".join(notes)))
    return SensorResult(run_requests=requests, cursor=write_cursor(cursor))
