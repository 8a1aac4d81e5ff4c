"""The coordinator slot moves to another master while the service runs (what a resharding or a
failover does on a Redis Cluster): requests meanwhile get a 503, never a 500; the health probe
reads the slot map again and the service scores on, with its answers and decision log intact.
A cluster of its own: moving a slot of the session's cluster would disturb the other tests."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace

import pytest
import redis
from litestar.testing import TestClient

from fraud_assets.lib.redis_clients import connect, coordinator
from fraud_core.online_keys import OnlineKeys
from fraud_core.redis_server import ClusterHandle, start_local_cluster
from fraud_serving.app import create_app
from fraud_serving.settings import Settings

from .conftest import API_KEY
from .support import wait_for

ORDER = {
    "order_id": "M1",
    "order_date": "2026-02-01T10:00:00Z",
    "customer_id": "C-move",
    "email": "move@example.org",
    "ip_addr": "203.0.113.77",
    "order_amount": 25.0,
}


@pytest.fixture
def own_cluster() -> Iterator[ClusterHandle]:
    with start_local_cluster() as handle:
        yield handle


def _node_id(port: int) -> str:
    with redis.Redis(port=port) as node:
        return node.execute_command("CLUSTER", "MYID").decode()


def _move_slot(handle: ClusterHandle, slot: int, source: int, target: int) -> int:
    """Migrate `slot` from the master on port `source` to the one on `target`, keys included,
    as `redis-cli --cluster reshard` does. Returns how many keys moved."""
    source_id, target_id = _node_id(source), _node_id(target)
    with redis.Redis(port=source) as src, redis.Redis(port=target) as dst:
        dst.execute_command("CLUSTER", "SETSLOT", slot, "IMPORTING", source_id)
        src.execute_command("CLUSTER", "SETSLOT", slot, "MIGRATING", target_id)
        moved = 0
        while keys := src.execute_command("CLUSTER", "GETKEYSINSLOT", slot, 500):
            src.execute_command("MIGRATE", "127.0.0.1", target, "", 0, 5_000, "KEYS", *keys)
            moved += len(keys)
        for port in handle.ports:
            with redis.Redis(port=port) as node:
                node.execute_command("CLUSTER", "SETSLOT", slot, "NODE", target_id)
    return moved


def test_the_service_follows_the_coordinator_slot_to_another_master(
    own_cluster: ClusterHandle, settings: Settings
) -> None:
    settings = replace(settings, redis_url=own_cluster.url, redis_cluster=True)
    keys = OnlineKeys(settings.key_prefix, cluster=True)
    with TestClient(create_app(settings)) as client:
        client.headers["X-API-Key"] = API_KEY
        first = client.post("/v1/score", json=ORDER)
        assert first.status_code == 200, first.text

        admin = connect(own_cluster.url, cluster=True)
        slot = admin.keyslot(keys.active)
        source = int(admin.get_node_from_key(keys.active).port)
        target = next(p for p in own_cluster.ports if p != source)
        admin.close()
        assert _move_slot(own_cluster, slot, source, target) >= 3  # pointer, answer, log, ...

        # until the service has looked the slot up again: 503s, never anything else
        def scored() -> bool:
            r = client.post("/v1/score", json={**ORDER, "order_id": "M2"})
            assert r.status_code in (200, 503), r.text
            return r.status_code == 200

        try:
            wait_for(scored, timeout_s=15)
        except AssertionError:  # why the store stays down: the probe's last error
            raise AssertionError(f"still 503: /ready says {client.get('/ready').text}") from None
        again = client.post("/v1/score", json=ORDER)  # answered from the moved answer
        assert again.status_code == 200 and again.json() == first.json()
        assert again.headers["Idempotent-Replayed"] == "true"
        assert client.get("/ready").status_code == 200

    check = connect(own_cluster.url, cluster=True)
    try:
        assert int(check.get_node_from_key(keys.active).port) == target
        log = coordinator(check, keys)
        assert log.connection_pool.connection_kwargs["port"] == target
        assert log.xlen(keys.decisions) == 2  # M1 and M2, once each
    finally:
        check.close()
