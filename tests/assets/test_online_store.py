"""The `online_store` asset on a real Redis: a snapshot loaded into a new namespace and switched
on, its sample check, the service's writes carried into the next load, one previous namespace
kept and older ones deleted."""

from __future__ import annotations

import uuid
from datetime import date

import pytest
from dagster import materialize

from fraud_assets.assets.online_store import (
    REDIS_MEMORY_HAS_HEADROOM,
    SAMPLE_MATCHES_OFFLINE_STATE,
    online_store,
)
from fraud_assets.lib.redis_clients import connect, mget
from fraud_assets.resources import DataLayoutResource, RedisResource
from fraud_core.features.offline import advance, canonical_order
from fraud_core.features.online import OrderEvent, append_order
from fraud_core.features.pipeline import day_end_s, mark_snapshots, state_file
from fraud_core.features.state import decode_state, encode_state, states_from_frame
from fraud_core.generator import GeneratorConfig, generate_orders
from fraud_core.online_keys import CLUSTER_ENV, ENTITY_COMMIT_SCRIPT, OnlineKeys, entity_group
from fraud_core.redis_server import ensure_redis
from fraud_core.storage import DataLayout, write_parquet

CONFIG = GeneratorConfig(
    n_customers=200,
    n_emails=200,
    n_ips=200,
    orders_per_day=100,
    days=5,
    start=date(2026, 4, 1),
    seed=5,
)


@pytest.fixture
def store(request, monkeypatch):
    """(url, keys, client) of a single Redis, or (parametrised `cluster`) of the session's Redis
    Cluster, with $FRAUD_REDIS_CLUSTER set as a deployment would."""
    cluster = getattr(request, "param", "single") == "cluster"
    handle = request.getfixturevalue("redis_cluster") if cluster else ensure_redis()
    monkeypatch.setenv(CLUSTER_ENV, "1" if cluster else "0")
    prefix = f"test:{uuid.uuid4().hex}:"
    client = connect(handle.url, cluster=cluster)
    yield handle.url, OnlineKeys(prefix, cluster), client
    keys = list(client.scan_iter(match=prefix + "*", count=10_000))
    if keys:
        client.unlink(*keys)
    client.close()
    if not cluster:
        handle.stop()


def _snapshot(layout: DataLayout, n_buckets: int = 3) -> dict:
    orders = canonical_order(generate_orders(CONFIG))
    last = orders["order_date"].max().date()
    _, states = advance({}, orders, day_end_s(last))
    for kind, state in states.items():
        bucket = state["entity"].map(hash) % n_buckets
        for b in range(n_buckets):
            write_parquet(
                state[bucket == b].reset_index(drop=True), state_file(layout, kind, last, b)
            )
    mark_snapshots(layout, last, n_buckets)
    return {"day": last, "states": states}


def _run(tmp_path, url: str, keys: OnlineKeys, **config):
    result = materialize(
        [online_store],
        resources={
            "layout": DataLayoutResource(data_dir=str(tmp_path)),
            "redis": RedisResource(url=url),
        },
        run_config={"ops": {"online_store": {"config": {"key_prefix": keys.prefix, **config}}}},
    )
    assert result.success
    evaluations = {e.check_name: e for e in result.get_asset_check_evaluations()}
    assert set(evaluations) == {SAMPLE_MATCHES_OFFLINE_STATE, REDIS_MEMORY_HAS_HEADROOM}
    assert evaluations[SAMPLE_MATCHES_OFFLINE_STATE].passed
    (event,) = result.get_asset_materialization_events()
    metadata = {k: v.value for k, v in event.materialization.metadata.items()}
    memory = evaluations[REDIS_MEMORY_HAS_HEADROOM].metadata
    return metadata | {"memory": {k: v.value for k, v in memory.items()}}


@pytest.mark.parametrize("store", ["single", "cluster"], indirect=True)
def test_loads_switches_and_carries_the_service_writes_over(tmp_path, store) -> None:
    url, keys, client = store
    snap = _snapshot(DataLayout(tmp_path))
    first = _run(tmp_path, url, keys)
    ns1 = client.get(keys.active).decode()
    assert first["namespace"] == ns1 and first["active"] is True
    assert first["entities"] == {k: s["entity"].nunique() for k, s in snap["states"].items()}
    assert (
        first["load_rate_entities_per_s"] > 0
        and first["keys_written"] == sum(first["entities"].values()) + 2
    )
    for kind, frame in snap["states"].items():  # every state, not just the sample
        expected = states_from_frame(
            frame,
            tuple(
                c
                for c in frame.columns
                if c not in ("entity", "t_s", "cents", "order_id", "label_s")
            ),
        )
        names = [keys.entity(ns1, kind, e) for e in expected]
        assert [decode_state(b) for b in mget(client, names)] == list(expected.values())
    some_order = snap["states"]["customer_id"].iloc[0]
    assert (
        client.hget(keys.order_index(ns1), some_order["order_id"]).decode() == some_order["entity"]
    )
    # the memory check weighed a sample of each kind's states (MEMORY USAGE, real bytes)
    memory = first["memory"]
    assert set(memory["bytes_per_state"]) == set(snap["states"])
    assert all(100 < size < 20_000 for size in memory["bytes_per_state"].values())
    assert all(0 < n <= 200 for n in memory["states_sampled"].values())
    assert memory["order_index_entries"] == first["order_index_size"] > 0
    assert memory["bytes_per_order_index_entry"] > 0 and memory["state_bytes_per_customer"] > 0

    # the service scores an order of a known customer after the snapshot
    customer = snap["states"]["customer_id"].iloc[0]["entity"]
    key = keys.entity(ns1, "customer_id", customer)
    state = decode_state(client.get(key))
    event = OrderEvent(
        "online-1",
        day_end_s(snap["day"]) + 3_600,
        4_200,
        {"email": "x@y.z", "ip_addr": "192.0.2.9"},
    )
    client.set(key, encode_state(append_order(state, event, "customer_id")))
    client.sadd(keys.touched(ns1, entity_group("customer_id", customer)), key)

    second = _run(tmp_path, url, keys)
    ns2 = client.get(keys.active).decode()
    assert (
        ns2 != ns1
        and second["previous_namespace"] == ns1
        and second["carried_over_from_service"] == 1
    )
    if keys.cluster:  # the replaced namespace takes no entity write any more, in any group
        group = entity_group("customer_id", customer)
        names = [keys.closed(ns1, group), keys.touched(ns1, group), key]
        assert client.eval(ENTITY_COMMIT_SCRIPT, 3, *names, "", b"late") == 1
        assert all(client.exists(keys.closed(ns1, g)) for g in keys.groups())
    carried = decode_state(client.get(keys.entity(ns2, "customer_id", customer)))
    assert carried.order_ids[-1] == "online-1" and carried.order_ids[:-1] == state.order_ids
    assert client.hget(keys.order_index(ns2), "online-1").decode() == customer

    third = _run(tmp_path, url, keys)
    ns3 = client.get(keys.active).decode()
    assert third["previous_namespace"] == ns2 and third["deleted_namespaces"] == [ns1]
    assert [m.decode() for m in client.zrange(keys.namespaces, 0, -1)] == [ns2, ns3]
    for pattern in keys.namespace_patterns(ns1):
        assert not list(client.scan_iter(match=pattern))
    assert client.exists(keys.entity(ns2, "customer_id", customer))  # kept for a rollback


def test_the_order_index_keeps_the_snapshots_recent_orders_only(tmp_path, store) -> None:
    """A label can name an order of the last `order_index_days` of the snapshot by its id; older
    orders are not indexed (a label for them could change no feature with the default window)."""
    url, keys, client = store
    snap = _snapshot(DataLayout(tmp_path))
    meta = _run(tmp_path, url, keys, order_index_days=1.0)
    ns = client.get(keys.active).decode()
    customers = snap["states"]["customer_id"]
    recent = customers[customers["t_s"] >= day_end_s(snap["day"]) - 86_400]
    assert 0 < len(recent) < len(customers)
    assert meta["order_index_size"] == len(recent) == client.hlen(keys.order_index(ns))
    old = customers[customers["t_s"] < day_end_s(snap["day"]) - 86_400].iloc[0]
    assert client.hget(keys.order_index(ns), old["order_id"]) is None


def test_without_a_snapshot_the_asset_fails_clearly(tmp_path, store) -> None:
    url, keys, _ = store
    result = materialize(
        [online_store],
        resources={
            "layout": DataLayoutResource(data_dir=str(tmp_path)),
            "redis": RedisResource(url=url),
        },
        run_config={"ops": {"online_store": {"config": {"key_prefix": keys.prefix}}}},
        raise_on_error=False,
    )
    assert not result.success
    failure = result.failure_data_for_node("online_store")
    assert "materialize entity_features first" in str(failure.error)
