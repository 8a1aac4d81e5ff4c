"""A 503 means nothing was stored (issue 12 #8), even when Redis runs a commit whose reply comes
too late: a private redis-server is frozen and thawed (SIGSTOP / SIGCONT) again and again while
batches are scored, so some commits are sent to a frozen server, time out in the service, and are
run by Redis once it thaws. Every batch answered 200 must be stored with that answer; every batch
answered 503 must have left nothing behind."""

from __future__ import annotations

import os
import random
import signal
import threading
import time
from dataclasses import replace

import pytest
import redis
from litestar.testing import TestClient

from fraud_core.features.state import decode_state
from fraud_core.net import free_port
from fraud_core.online_keys import OnlineKeys
from fraud_core.redis_server import start_local_redis
from fraud_serving.app import create_app
from fraud_serving.services.answers import decode_record

from .conftest import API_KEY

_PREFIX = "test:lost-reply:"
_BATCH = 40


@pytest.fixture
def frozen_at_times():
    """A private redis-server and a thread that freezes it for 120-180 ms at a time with short
    thaws (the service's Redis timeout is 80 ms)."""
    port = free_port()
    handle = start_local_redis(port=port)
    pid = handle.process.pid
    stop = threading.Event()
    rng = random.Random(12)

    def freeze_and_thaw() -> None:
        while not stop.is_set():
            os.kill(pid, signal.SIGSTOP)
            time.sleep(rng.uniform(0.12, 0.18))
            os.kill(pid, signal.SIGCONT)
            time.sleep(rng.uniform(0.005, 0.025))

    thread = threading.Thread(target=freeze_and_thaw, daemon=True)
    try:
        yield f"redis://127.0.0.1:{port}/0", thread, stop
    finally:
        stop.set()
        if thread.is_alive():
            thread.join(timeout=5)
        os.kill(pid, signal.SIGCONT)
        handle.stop()


def _settled(client: TestClient, result: str) -> float:
    for line in client.get("/metrics").text.splitlines():
        if line.startswith(f'fraud_commit_replies_lost_total{{result="{result}"}}'):
            return float(line.split()[-1])
    return 0.0


@pytest.mark.timeout(240)
def test_a_503_stores_nothing_and_every_stored_batch_got_a_200(settings, frozen_at_times) -> None:
    url, freezer, stop = frozen_at_times
    # One try per read and commit (no retries within a deadline): the test is about what a 503
    # means, so it wants 503s, and with retries a freeze this short rarely gives one.
    settings = replace(settings, redis_url=url, key_prefix=_PREFIX, redis_deadline_ms=0)
    answers: list[tuple[int, list[dict], dict]] = []
    with TestClient(create_app(settings), timeout=30) as client:
        client.headers["X-API-Key"] = API_KEY
        assert client.get("/ready").status_code == 200
        freezer.start()
        deadline = time.monotonic() + 90
        n = 0
        while time.monotonic() < deadline and _settled(client, "stored") < 2:
            orders = [
                {
                    "order_id": f"lost-{n}-{k}",
                    "order_date": "2026-03-01T10:00:00Z",
                    "customer_id": f"lost-c{k}",
                    "email": f"lost-{k}@example.org",
                    "ip_addr": f"10.0.{n % 200}.{k}",
                    "order_amount": 12.5 + k,
                }
                for k in range(_BATCH)
            ]
            r = client.post("/v1/score/batch", json={"orders": orders})
            answers.append((r.status_code, orders, r.json()))
            n += 1
        stop.set()
        freezer.join(timeout=5)
        stored_after_lost_reply = _settled(client, "stored")

    keys = OnlineKeys(_PREFIX)
    store = redis.Redis.from_url(url, socket_timeout=5)
    time.sleep(0.2)  # a frozen server's last commands run once it thaws
    try:
        statuses = {status for status, _, _ in answers}
        assert statuses <= {200, 503}, statuses
        namespace = store.get(keys.active).decode()
        customers = store.mget(
            [keys.entity(namespace, "customer_id", f"lost-c{k}") for k in range(_BATCH)]
        )
        in_states = {o for blob in customers if blob for o in decode_state(blob).order_ids}
        for status, orders, body in answers:
            stored = store.mget([keys.scored(o["order_id"]) for o in orders])
            if status == 200:
                assert all(stored), f"a 200 whose orders are not all stored: {body}"
                assert [a["order_id"] for a in body["results"]] == [o["order_id"] for o in orders]
                assert all(
                    decode_record(b).answer.score == a["score"]
                    for b, a in zip(stored, body["results"], strict=True)
                )
            else:
                assert not any(stored), f"a 503 whose orders were stored: {orders[0]['order_id']}"
                assert not in_states & {o["order_id"] for o in orders}
        assert 200 in statuses and 503 in statuses
    finally:
        store.close()
    assert stored_after_lost_reply >= 1, "no commit was run after its reply was lost: try again"
