"""The online store stays bounded under scored traffic (issue 14 #4): with a one-second answer TTL
and a two-second order index, orders of a few customers are scored for a few seconds at a steady
rate, and the keys and bytes stop growing once the first orders expire, on a private
redis-server (so that SCAN and the byte count see this test alone) with Redis' own expiry. The
decision log is drained after every round, as the `decision_log` job does, and nothing else.
A label finds an order through the index after its answer is gone, and is a 404 once the index
forgot it too."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import replace
from datetime import date, timedelta

import pytest
import redis
from litestar.testing import TestClient

from fraud_assets.lib.decision_drain import drain_decisions
from fraud_core.net import free_port
from fraud_core.online_keys import DAY_S, OnlineKeys
from fraud_core.redis_server import start_local_redis
from fraud_core.storage import DataLayout
from fraud_serving.app import create_app

from .conftest import API_KEY

_ROUND_S = 0.3
_ROUNDS = 12
_BATCH = 40


def _order(n: int) -> dict:
    """Order `n` of four customers (e-mails, IPs); each round is dated 40 days after the one
    before, so an entity's state keeps the round's orders only (the features' horizon is 37
    days): what grows here is what traffic leaves behind, not an entity's history."""
    day = date(2025, 1, 1) + timedelta(days=40 * (n // _BATCH))
    return {
        "order_id": f"growth-{n}",
        "order_date": f"{day.isoformat()}T10:00:00Z",
        "customer_id": f"growth-c{n % 4}",
        "email": f"growth-{n % 4}@example.org",
        "ip_addr": f"10.2.0.{n % 4}",
        "order_amount": 10.0 + n % 50,
    }


@pytest.fixture
def own_redis() -> Iterator[str]:
    handle = start_local_redis(port=free_port())
    try:
        yield handle.url
    finally:
        handle.stop()


def _footprint(store: redis.Redis, prefix: str) -> tuple[int, int, int, int]:
    """(keys, answers, order index entries, bytes of everything but answers) of the whole
    database; SCAN, HLEN and MEMORY USAGE skip expired keys. Answers are counted, not weighed:
    how many of a batch's answers are still there when a round ends varies more than everything
    else weighs."""
    keys = list(store.scan_iter(count=1_000))
    answers = [k for k in keys if k.startswith(f"{prefix}scored:".encode())]
    index = [k for k in keys if b":orders:" in k]
    others = list(set(keys) - set(answers))
    with store.pipeline(transaction=False) as pipe:
        for key in others:
            pipe.memory_usage(key)
        for key in index:
            pipe.hlen(key)
        values = pipe.execute()
    sizes, entries = values[: len(others)], values[len(others) :]
    return len(keys), len(answers), sum(entries), sum(size or 0 for size in sizes)


def test_keys_and_bytes_stop_growing_with_traffic(settings, own_redis) -> None:
    # answers kept 1 s, the order index 1 s (one-second buckets: an order is kept 1-2 s)
    settings = replace(settings, redis_url=own_redis, scored_ttl_s=1, order_index_days=1 / DAY_S)
    prefix = settings.key_prefix
    store = redis.Redis.from_url(own_redis)
    footprints = []
    drained = 0
    with TestClient(create_app(settings)) as client:
        client.headers["X-API-Key"] = API_KEY
        n = 0
        scored_at = []  # when each round's orders were stored
        for _ in range(_ROUNDS):
            started = time.monotonic()
            batch = [_order(n + k) for k in range(_BATCH)]
            n += len(batch)
            assert client.post("/v1/score/batch", json={"orders": batch}).status_code == 200
            scored_at.append(time.monotonic())
            report = drain_decisions(store, OnlineKeys(prefix), DataLayout(settings.data_dir))
            drained += report.drained
            assert report.remaining == 0
            time.sleep(max(0.0, _ROUND_S - (time.monotonic() - started)))
            footprints.append(_footprint(store, prefix))
        ended = time.monotonic()

        # the newest order once its answer is gone: found through the order index, then not
        last = f"growth-{n - 1}"
        store.delete(prefix + f"scored:{last}")
        label = {"order_id": last, "is_fraud": True, "label_date": "2026-11-30T00:00:00Z"}
        found = client.post("/v1/labels", json=label)
        assert found.status_code == 200 and "customer_id" in found.json()["updated_entities"]
        time.sleep(2.1)
        assert client.post("/v1/labels", json=label).status_code == 404
    store.close()

    assert drained == n  # every decision left Redis for a segment, once
    keys, answers, entries, size = zip(*footprints, strict=True)
    assert keys[-1] < n / 3, keys  # most answers and index entries are gone
    assert max(answers) <= 5 * _BATCH, answers  # 1 s of answers, at most
    # an order stays in the index 1-2 s: at the end, only orders of the last 2 s (plus a round
    # for the time the last footprint took)
    recent = sum(_BATCH for t in scored_at if t > ended - 2.0 - _ROUND_S)
    assert entries[-1] <= recent < n, (entries, recent)
    # from 2 s on, index entries expire as fast as they come; entity states are the round's
    assert max(size[9:]) <= max(size[6:9]) * 1.25, size
