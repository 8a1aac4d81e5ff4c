"""Scoring on a Redis Cluster (issue 20): two `fraud serve` processes on a 3-master cluster
started from redis-server on loopback ports, real HTTP.

- 1,000 concurrent orders of one customer, split over both processes: every one answered, and
  the customer's history holds exactly those 1,000 orders, each once (events equal answers);
  the decision log holds one entry per order.
- 50 concurrent replays of one new order id over both processes: one answer for all of them, one
  event in each entity, one log entry.
- A commit that wrote an entity and died before the answer was stored (the cluster's two-step
  commit, simulated by writing the order's event into the state): the retry counts the order
  once and its features do not see it.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from pathlib import Path

import httpx
import pytest

from fraud_assets.lib.redis_clients import connect, coordinator
from fraud_core.decision_log import LOG_FIELD, decode_decision
from fraud_core.features.offline import amount_cents, epoch_seconds
from fraud_core.features.online import OrderEvent, append_order
from fraud_core.features.state import decode_state, encode_state
from fraud_core.net import free_port
from fraud_core.online_keys import CommitIntent, OnlineKeys
from fraud_core.redis_server import ClusterHandle

from ..serving.support import delete_prefix, deploy, trained_booster
from .conftest import poll

API_KEY = "cluster-test-key"
NETS = {"C-burst": 1, "C-replay": 2, "C-retry": 3}  # each test's customer has IPs of its own


def _serve(data: Path, url: str, prefix: str, log: Path) -> tuple[subprocess.Popen, str]:
    """`fraud serve` on the cluster, started (not yet ready)."""
    port = free_port()
    env = dict(
        os.environ,
        FRAUD_API_KEYS=API_KEY,
        REDIS_URL=url,
        FRAUD_REDIS_CLUSTER="1",
        FRAUD_REDIS_PREFIX=prefix,
        FRAUD_DATA_DIR=str(data),
    )
    with log.open("ab") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "fraud_cli.main", "serve", "--port", str(port)],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    return process, f"http://127.0.0.1:{port}"


def _ready(base: str) -> bool:
    try:
        return httpx.get(f"{base}/ready", timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


@pytest.fixture(scope="module")
def services(
    tmp_path_factory: pytest.TempPathFactory, redis_cluster: ClusterHandle
) -> Iterator[tuple[list[str], OnlineKeys]]:
    """Two service processes for the module's tests (each test uses a customer of its own)."""
    tmp_path = tmp_path_factory.mktemp("cluster-serving")
    deploy(tmp_path / "models", trained_booster())
    prefix = f"test:{os.getpid()}-{free_port()}:"
    started = [
        _serve(tmp_path, redis_cluster.url, prefix, tmp_path / f"serve-{i}.log") for i in (0, 1)
    ]
    try:
        for i, (_, base) in enumerate(started):  # both start at once
            assert poll(lambda base=base: _ready(base), 60), (
                tmp_path / f"serve-{i}.log"
            ).read_text()[-3000:]
        yield [base for _, base in started], OnlineKeys(prefix, cluster=True)
    finally:
        for process, _ in started:
            process.terminate()
        for process, _ in started:
            process.wait(timeout=30)
        delete_prefix(redis_cluster.url, prefix, cluster=True)


def _order(customer: str, i: int, order_id: str | None = None) -> dict:
    return {
        "order_id": order_id or f"{customer}-{i:04d}",
        "order_date": f"2026-02-01T10:{i // 60 % 60:02d}:{i % 60:02d}Z",
        "customer_id": customer,
        # several e-mails and IPs (entities in many slots), of this customer only
        "email": f"{customer}.{i % 37}@example.org",
        "ip_addr": f"198.51.{NETS[customer]}.{i % 53}",
        "order_amount": 10.0 + i % 17,
    }


def _post_all(bases: list[str], bodies: list[dict], threads: int = 16) -> list[httpx.Response]:
    clients = [httpx.Client(base_url=b, headers={"X-API-Key": API_KEY}, timeout=30) for b in bases]
    try:
        with ThreadPoolExecutor(threads) as pool:
            return list(
                pool.map(
                    lambda ib: clients[ib[0] % len(clients)].post(
                        "/v1/score?features=true", json=ib[1]
                    ),
                    enumerate(bodies),
                )
            )
    finally:
        for c in clients:
            c.close()


def _state(client, keys: OnlineKeys, kind: str, value: str):
    ns = client.get(keys.active).decode()
    blob = client.get(keys.entity(ns, kind, value))
    return decode_state(blob) if blob is not None else None


def _logged(client, keys: OnlineKeys, customer: str) -> Counter:
    """How many decision-log entries each order of `customer` has."""
    log = coordinator(client, keys)
    entries = [decode_decision(fields[LOG_FIELD]) for _, fields in log.xrange(keys.decisions)]
    return Counter(e.order_id for e in entries if e.ids["customer_id"] == customer)


def test_a_thousand_concurrent_orders_of_one_customer_each_land_once(
    services, redis_cluster: ClusterHandle
) -> None:
    bases, keys = services
    customer = "C-burst"
    bodies = [_order(customer, i) for i in range(1_000)]
    answers = _post_all(bases, bodies)
    assert Counter(r.status_code for r in answers) == {200: 1_000}, [
        r.text for r in answers if r.status_code != 200
    ][:3]
    client = connect(redis_cluster.url, cluster=True)
    try:
        state = _state(client, keys, "customer_id", customer)
        assert Counter(state.order_ids) == Counter(b["order_id"] for b in bodies)
        emails = Counter(b["email"] for b in bodies)
        for email, count in emails.items():
            assert len(_state(client, keys, "email", email).order_ids) == count
        assert _logged(client, keys, customer) == Counter(b["order_id"] for b in bodies)
        # Intents left are those of tries that lost a compare-and-set after writing some of
        # their entities (the try after them stored): every order they name has its answer, so
        # the sweeper will only delete them.
        node = coordinator(client, keys)
        for name in node.scan_iter(match=keys.pending_pattern):
            intent = CommitIntent.decode(node.get(name))
            assert all(node.exists(keys.scored(o)) for o in intent.order_ids)
        # the states really are spread over the masters
        ns = client.get(keys.active).decode()
        nodes = {client.get_node_from_key(keys.entity(ns, "email", e)).port for e in emails}
        assert len(nodes) == 3
    finally:
        client.close()


def test_fifty_concurrent_replays_score_an_order_once(
    services, redis_cluster: ClusterHandle
) -> None:
    bases, keys = services
    body = _order("C-replay", 7, order_id="replayed-once")
    answers = _post_all(bases, [body] * 50)
    assert {r.status_code for r in answers} == {200}
    assert len({r.json()["score"] for r in answers}) == 1
    assert sum(r.headers.get("Idempotent-Replayed") == "true" for r in answers) == 49
    client = connect(redis_cluster.url, cluster=True)
    try:
        for kind in ("customer_id", "email", "ip_addr"):
            assert _state(client, keys, kind, body[kind]).order_ids == ["replayed-once"]
        assert _logged(client, keys, "C-replay") == Counter({"replayed-once": 1})
    finally:
        client.close()


def test_a_retry_after_a_half_done_commit_counts_the_order_once(
    services, redis_cluster: ClusterHandle
) -> None:
    """The first step of a cluster commit (the entities) applied, the second (the answer) not:
    the customer's state already holds the order. Scored again, the order is not counted twice
    and its features are those of an order the customer has not placed yet."""
    bases, keys = services
    customer = "C-retry"
    first, second = _order(customer, 1), _order(customer, 2)
    (r1,) = _post_all(bases[:1], [first])
    assert r1.status_code == 200
    client = connect(redis_cluster.url, cluster=True)
    try:
        ns = client.get(keys.active).decode()
        name = keys.entity(ns, "customer_id", customer)
        event = OrderEvent(
            second["order_id"],
            epoch_seconds(datetime.fromisoformat(second["order_date"])),
            amount_cents(second["order_amount"]),
            {"email": second["email"], "ip_addr": second["ip_addr"]},
        )
        client.set(
            name, encode_state(append_order(decode_state(client.get(name)), event, "customer_id"))
        )
        (r2,) = _post_all(bases[1:], [second])
        assert r2.status_code == 200, r2.text
        state = decode_state(client.get(name))
        assert state.order_ids == [first["order_id"], second["order_id"]]
        features = r2.json()["features"]
        assert features["customer_id__first_seen"] == 0.0
        assert features["customer_id__seconds_since_prev"] == 1.0  # since the first order
        assert _logged(client, keys, customer) == Counter(
            {first["order_id"]: 1, second["order_id"]: 1}
        )
    finally:
        client.close()
