"""The fenced commit on a real Redis: once a commit's fence is set, the commit writes nothing,
whenever it arrives; the fence script reads what the commit writes; the unfenced script (the
loader's) keeps its key layout; the order index bucket a commit writes expires."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
import redis

from fraud_core.features.spec import DEFAULT_SPEC
from fraud_core.online_keys import (
    COMMIT_MARK_TTL_S,
    COMMIT_SCRIPT,
    DEFAULT_ORDER_INDEX_DAYS,
    FENCE_SCRIPT,
    FENCE_TTL_S,
    FENCED_COMMIT_SCRIPT,
    OnlineKeys,
    OrderIndexWindow,
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
    names += [keys.decisions, keys.scored(order_id), keys.entity("ns1", "customer_id", "C1")]
    args = ["ns1", 1, 60, 0, b"answer", order_id, "C1", f"entry {order_id}", "", b"state"]
    return conn.eval(FENCED_COMMIT_SCRIPT, len(names), *names, *args)


def test_a_fenced_commit_writes_nothing(client) -> None:
    conn, keys = client
    values = conn.eval(FENCE_SCRIPT, 2, keys.fence("t1"), keys.scored("O1"), FENCE_TTL_S)
    assert values == [b"fenced", 0]
    assert 0 < conn.ttl(keys.fence("t1")) <= FENCE_TTL_S
    assert _commit(conn, keys, "t1", "O1") == [4]  # it arrived after its writer gave it up
    assert conn.exists(keys.scored("O1"), keys.entity("ns1", "customer_id", "C1")) == 0
    assert conn.xlen(keys.decisions) == 0  # no decision-log entry for what was not stored


def test_a_stored_commit_marks_its_fence_and_the_fence_script_sees_it(client) -> None:
    conn, keys = client
    assert _commit(conn, keys, "t2", "O2") == [0]
    assert conn.get(keys.fence("t2")) == b"done"
    (entry,) = conn.xrange(keys.decisions)  # the stored order's one decision-log entry
    assert entry[1] == {b"d": b"entry O2"}
    assert 0 < conn.ttl(keys.fence("t2")) <= COMMIT_MARK_TTL_S
    entity = keys.entity("ns1", "customer_id", "C1")
    # another writer changing the entity afterwards does not make it look unstored
    conn.set(entity, b"someone else's state")
    assert conn.eval(FENCE_SCRIPT, 2, keys.fence("t2"), keys.scored("O2"), 60) == [b"done", 1]
    assert conn.hget(keys.order_index("ns1"), "O2") == b"C1"
    assert conn.sismember(keys.touched("ns1"), entity)


def test_a_commit_refused_for_an_existing_record_is_not_stored_but_taken(client) -> None:
    conn, keys = client
    conn.set(keys.scored("O3"), b"another request's answer")
    assert _commit(conn, keys, "t3", "O3") == [2, 1]
    assert conn.xlen(keys.decisions) == 0
    assert conn.eval(FENCE_SCRIPT, 2, keys.fence("t3"), keys.scored("O3"), 60) == [b"fenced", 1]


def test_the_loaders_commit_keeps_its_layout(client) -> None:
    conn, keys = client
    entity = keys.entity("ns1", "email", "e@x")
    names = [keys.active, keys.touched("ns1"), keys.order_index("ns1"), entity]
    assert conn.eval(COMMIT_SCRIPT, len(names), *names, "ns1", 0, 0, 0, "", b"s") == [0]
    assert conn.get(entity) == b"s"
    assert conn.eval(COMMIT_SCRIPT, len(names), *names, "ns1", 0, 0, 0, "", b"t") == [3, 1]


def test_a_label_commit_without_records_is_settled_by_its_mark(client) -> None:
    """A label writes entity states only: before the mark, a lost reply was judged by comparing
    the states, and another order of the same customer in between made a stored label look
    unstored (a 503 that lied)."""
    conn, keys = client
    entity = keys.entity("ns1", "customer_id", "C9")
    names = [keys.active, keys.touched("ns1"), keys.order_index("ns1"), keys.fence("t4"), entity]
    assert conn.eval(FENCED_COMMIT_SCRIPT, len(names), *names, "ns1", 0, 60, 0, "", b"label") == [0]
    conn.set(entity, b"the next order's state")
    assert conn.eval(FENCE_SCRIPT, 1, keys.fence("t4"), 60) == [b"done", 0]


def test_the_order_index_bucket_expires_as_its_first_writer_says(client) -> None:
    conn, keys = client
    window = OrderIndexWindow(retention_s=3_600)
    bucket = window.bucket(1_000_000)
    expire_at = window.expire_at(bucket)
    names = [keys.active, keys.touched("ns1"), keys.order_index_bucket("ns1", bucket)]
    for order_id, expires in (("O5", expire_at), ("O6", expire_at + 999)):
        record = [keys.fence(order_id), keys.decisions, keys.scored(order_id)]
        args = ["ns1", 1, 60, expires, b"answer", order_id, "C1", ""]
        assert conn.eval(FENCED_COMMIT_SCRIPT, 6, *names, *record, *args) == [0]
    # the first commit set the expiry (the bucket's time has passed here: the key is gone)
    assert conn.exists(names[2]) == 0 and expire_at < 2_000_000
    future = OrderIndexWindow().bucket(4_000_000_000)
    names[2] = keys.order_index_bucket("ns1", future)
    args = ["ns1", 1, 60, OrderIndexWindow().expire_at(future), b"answer", "O7", "C1", ""]
    record = [keys.fence("O7"), keys.decisions, keys.scored("O7")]
    assert conn.eval(FENCED_COMMIT_SCRIPT, 6, *names, *record, *args)
    assert conn.hget(names[2], "O7") == b"C1"
    expected_ttl = OrderIndexWindow().expire_at(future) - conn.time()[0]
    assert abs(conn.ttl(names[2]) - expected_ttl) <= 2  # TTL, not EXPIRETIME: Redis 6.2 too


def test_the_order_index_window_covers_the_features_horizon() -> None:
    assert DEFAULT_SPEC.horizon_s <= DEFAULT_ORDER_INDEX_DAYS * 86_400
    assert DEFAULT_SPEC.warmup_days == DEFAULT_ORDER_INDEX_DAYS
    window = OrderIndexWindow()
    assert window.bucket_s == 86_400
    now = 1_800_000_123
    live = window.live_buckets(now)
    assert live[0] == window.bucket(now) and len(live) == DEFAULT_ORDER_INDEX_DAYS + 2
    # an order scored at `now` is found while its bucket lives, for at least the retention
    assert window.expire_at(window.bucket(now)) >= now + window.retention_s
    assert OrderIndexWindow(retention_s=2).bucket_s == 1
