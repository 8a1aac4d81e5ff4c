"""The fenced commit on a real Redis: once a commit's fence is set, the commit writes nothing,
whenever it arrives; the fence script reads what the commit writes; the unfenced script (the
loader's) keeps its key layout."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
import redis

from fraud_core.online_keys import (
    COMMIT_SCRIPT,
    FENCE_SCRIPT,
    FENCE_TTL_S,
    FENCED_COMMIT_SCRIPT,
    OnlineKeys,
)
from fraud_core.redis_server import ensure_redis


@pytest.fixture
def client() -> Iterator[tuple[redis.Redis, OnlineKeys]]:
    handle = ensure_redis()
    keys = OnlineKeys(f"test:{uuid.uuid4().hex}:")
    conn = redis.Redis.from_url(handle.url)
    try:
        conn.set(keys.active, "ns1")
        yield conn, keys
    finally:
        found = list(conn.scan_iter(match=keys.prefix + "*"))
        if found:
            conn.unlink(*found)
        conn.close()
        handle.stop()


def _commit(conn: redis.Redis, keys: OnlineKeys, token: str, order_id: str) -> list:
    names = [keys.active, keys.touched("ns1"), keys.order_index("ns1"), keys.fence(token)]
    names += [keys.scored(order_id), keys.entity("ns1", "customer_id", "C1")]
    args = ["ns1", 1, 60, b"answer", order_id, "C1", "", b"state"]
    return conn.eval(FENCED_COMMIT_SCRIPT, len(names), *names, *args)


def test_a_fenced_commit_writes_nothing(client) -> None:
    conn, keys = client
    values = conn.eval(FENCE_SCRIPT, 3, keys.fence("t1"), keys.scored("O1"), "missing", FENCE_TTL_S)
    assert values == [None, None]
    assert 0 < conn.ttl(keys.fence("t1")) <= FENCE_TTL_S
    assert _commit(conn, keys, "t1", "O1") == [4]  # it arrived after its writer gave it up
    assert conn.exists(keys.scored("O1"), keys.entity("ns1", "customer_id", "C1")) == 0


def test_an_unfenced_commit_applies_and_the_fence_script_sees_it(client) -> None:
    conn, keys = client
    assert _commit(conn, keys, "t2", "O2") == [0]
    entity = keys.entity("ns1", "customer_id", "C1")
    assert conn.eval(FENCE_SCRIPT, 3, keys.fence("t2"), keys.scored("O2"), entity, 60) == [
        b"answer",
        b"state",
    ]
    assert conn.hget(keys.order_index("ns1"), "O2") == b"C1"
    assert conn.sismember(keys.touched("ns1"), entity)


def test_the_loaders_commit_keeps_its_layout(client) -> None:
    conn, keys = client
    entity = keys.entity("ns1", "email", "e@x")
    names = [keys.active, keys.touched("ns1"), keys.order_index("ns1"), entity]
    assert conn.eval(COMMIT_SCRIPT, len(names), *names, "ns1", 0, 0, "", b"s") == [0]
    assert conn.get(entity) == b"s"
    assert conn.eval(COMMIT_SCRIPT, len(names), *names, "ns1", 0, 0, "", b"t") == [3, 1]
