"""A busy Redis is not a down Redis (issue 14 #3): a private redis-server is paused (SIGSTOP) for
a moment shorter than the service's Redis deadline while orders are scored, and every order is
answered and stored; the same pause without retries (deadline 0) gives 503s; a pause longer than
the deadline gives a 503 soon after the deadline; a killed Redis still gives a 503 at once."""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Iterator
from dataclasses import replace

import pytest
import redis
from litestar.testing import TestClient

from fraud_core.net import free_port
from fraud_core.online_keys import OnlineKeys
from fraud_core.redis_server import RedisHandle, start_local_redis
from fraud_serving.app import create_app
from fraud_serving.settings import Settings

from .conftest import API_KEY
from .support import wait_for

_PREFIX = "test:deadline:"


@pytest.fixture
def paused_redis() -> Iterator[RedisHandle]:
    handle = start_local_redis(port=free_port())
    try:
        yield handle
    finally:
        if handle.process is not None and handle.process.poll() is None:
            os.kill(handle.process.pid, signal.SIGCONT)
        handle.stop()


def _order(n: int) -> dict:
    return {
        "order_id": f"busy-{n}",
        "order_date": "2026-03-01T10:00:00Z",
        "customer_id": f"busy-c{n % 7}",
        "email": f"busy-{n % 5}@example.org",
        "ip_addr": f"10.1.0.{n % 11}",
        "order_amount": 20.0 + n,
    }


def _pause_then_score(client: TestClient, pid: int, pause_s: float, n: int) -> tuple[int, float]:
    """Pause Redis for `pause_s`, score order `n` meanwhile; (status, seconds it took)."""
    thaw = threading.Timer(pause_s, os.kill, (pid, signal.SIGCONT))
    os.kill(pid, signal.SIGSTOP)
    thaw.start()
    started = time.perf_counter()
    try:
        status = client.post("/v1/score", json=_order(n)).status_code
        return status, time.perf_counter() - started
    finally:
        thaw.join()


def _app(settings: Settings, handle: RedisHandle, deadline_ms: int) -> TestClient:
    settings = replace(
        settings, redis_url=handle.url, key_prefix=_PREFIX, redis_deadline_ms=deadline_ms
    )
    client = TestClient(create_app(settings), timeout=30)
    client.headers["X-API-Key"] = API_KEY
    return client


def test_a_pause_shorter_than_the_deadline_fails_no_order(settings, paused_redis) -> None:
    pid = paused_redis.process.pid
    with _app(settings, paused_redis, deadline_ms=600) as client:
        assert client.post("/v1/score", json=_order(0)).status_code == 200
        results = [_pause_then_score(client, pid, 0.25, n) for n in range(1, 9)]
    assert [status for status, _ in results] == [200] * 8, results
    assert max(seconds for _, seconds in results) < 1.5
    store = redis.Redis.from_url(paused_redis.url)
    try:
        keys = OnlineKeys(_PREFIX)
        assert all(store.mget([keys.scored(f"busy-{n}") for n in range(9)]))
    finally:
        store.close()


def test_without_a_deadline_the_same_pause_is_a_503(settings, paused_redis) -> None:
    pid = paused_redis.process.pid
    with _app(settings, paused_redis, deadline_ms=0) as client:
        assert client.post("/v1/score", json=_order(0)).status_code == 200
        statuses = [_pause_then_score(client, pid, 0.25, n)[0] for n in range(1, 4)]
    assert 503 in statuses, statuses


def test_a_pause_longer_than_the_deadline_is_a_503_soon_after_it(settings, paused_redis) -> None:
    pid = paused_redis.process.pid
    with _app(settings, paused_redis, deadline_ms=300) as client:
        assert client.post("/v1/score", json=_order(0)).status_code == 200
        status, seconds = _pause_then_score(client, pid, 1.5, 1)
        # it gives up once another try (a whole 80 ms Redis timeout after a pause of up to
        # 100 ms) could no longer end by the 300 ms deadline: from 120 ms on, and not much after
        assert status == 503 and 0.12 < seconds < 0.6, (status, seconds)
        # silent for a whole deadline: the health probe may have marked it down; it heals
        wait_for(lambda: client.get("/ready").status_code == 200, timeout_s=5)
        assert client.post("/v1/score", json=_order(2)).status_code == 200


def test_a_killed_redis_is_a_503_at_once_despite_the_deadline(settings, paused_redis) -> None:
    with _app(settings, paused_redis, deadline_ms=2_000) as client:
        assert client.post("/v1/score", json=_order(0)).status_code == 200
        paused_redis.process.kill()
        paused_redis.process.wait(timeout=10)
        started = time.perf_counter()
        r = client.post("/v1/score", json=_order(1))
        assert r.status_code == 503 and time.perf_counter() - started < 0.1
