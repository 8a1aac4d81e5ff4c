"""`decision_log_sensor` against a real (temporary) instance and a real Redis: an idle or young
log is left alone, a full one (or one whose oldest decision waited too long) requests a drain,
and a drain's order days request `scored_orders` once each."""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
import redis
from dagster import SensorResult, build_sensor_context, instance_for_test, materialize

from fraud_assets.assets.decision_log import decision_log
from fraud_assets.jobs import feedback_drain_job, served_days_job
from fraud_assets.partitions import partition_range_tags
from fraud_assets.resources import DataLayoutResource, RedisResource
from fraud_assets.sensors.decisions import (
    DRAIN_AFTER_ENV,
    DRAIN_AT_ENV,
    decision_log_sensor,
    drain_due,
)
from fraud_core.decision_log import Decision, encode_decision
from fraud_core.online_keys import KEY_PREFIX_ENV, OnlineKeys
from fraud_core.redis_server import ENV_VAR, ensure_redis


@pytest.fixture
def log(monkeypatch):
    handle = ensure_redis()
    keys = OnlineKeys(f"test-sensor:{uuid.uuid4().hex[:8]}:")
    monkeypatch.setenv(ENV_VAR, handle.url)
    monkeypatch.setenv(KEY_PREFIX_ENV, keys.prefix)
    client = redis.Redis.from_url(handle.url)
    yield handle.url, keys, client
    found = list(client.scan_iter(match=keys.prefix + "*"))
    if found:
        client.delete(*found)
    client.close()


def _add(client: redis.Redis, keys: OnlineKeys, n: int, day: datetime) -> None:
    for i in range(n):
        entry = Decision(
            order_id=f"o{uuid.uuid4().hex[:6]}",
            t_s=int(day.timestamp()) + 60 * i,
            received_ms=int(time.time() * 1000),
            cents=1_000,
            ids={"customer_id": "C1", "email": "e", "ip_addr": "i"},
            namespace="ns",
            model_version="m1",
            features=np.zeros(3),
            score=0.1,
            decision="APPROVE",
        )
        client.xadd(keys.decisions, {"d": encode_decision(entry)})


def _tick(instance, cursor: str | None) -> SensorResult:
    context = build_sensor_context(instance=instance, cursor=cursor)
    return decision_log_sensor(context)


def test_the_drain_is_due_by_size_or_age(monkeypatch) -> None:
    monkeypatch.setenv(DRAIN_AT_ENV, "10")
    monkeypatch.setenv(DRAIN_AFTER_ENV, "60")
    now = 1_000_000.0
    assert drain_due(0, None, now) is None
    assert drain_due(9, int((now - 59) * 1000), now) is None
    assert "10 decisions" in drain_due(10, int(now * 1000), now)
    assert "waited 61 s" in drain_due(1, int((now - 61) * 1000), now)


def test_a_full_log_is_drained_and_its_days_scored_once(log, tmp_path, monkeypatch) -> None:
    url, keys, client = log
    monkeypatch.setenv(DRAIN_AT_ENV, "5")
    day = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0) - timedelta(days=1)
    with instance_for_test() as instance:
        idle = _tick(instance, None)
        assert not idle.run_requests and "0 decisions in Redis" in idle.skip_reason.skip_message
        _add(client, keys, 4, day)
        assert not _tick(instance, None).run_requests  # young and small: not yet
        _add(client, keys, 1, day)
        (drain,) = _tick(instance, None).run_requests
        assert drain.job_name == feedback_drain_job.name

        resources = {
            "layout": DataLayoutResource(data_dir=str(tmp_path)),
            "redis": RedisResource(url=url),
        }
        assert materialize([decision_log], resources=resources, instance=instance).success
        assert client.xlen(keys.decisions) == 0
        after = _tick(instance, None)
        (scored,) = after.run_requests
        assert scored.job_name == served_days_job.name
        assert scored.tags == partition_range_tags(day.date(), day.date())
        again = _tick(instance, after.cursor)  # the same drain: nothing more
        assert not again.run_requests
