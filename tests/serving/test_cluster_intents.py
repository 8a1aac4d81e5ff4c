"""A service process that dies between the two steps of a Redis Cluster commit (its entities
written, its answers not) leaves a commit intent behind; the sweeper settles it: the commit can
no longer store late, its orders without an answer leave the entities' histories again, and an
order another request answered meanwhile stays. A commit that stores deletes its own intent."""

from __future__ import annotations

from datetime import datetime

import pytest
from litestar.testing import TestClient

from fraud_assets.lib.redis_clients import connect, coordinator
from fraud_core.features.offline import amount_cents, epoch_seconds
from fraud_core.features.online import OrderEvent, append_order
from fraud_core.features.state import decode_state, encode_state
from fraud_core.online_keys import CommitIntent, OnlineKeys
from fraud_serving.app import create_app
from fraud_serving.services.store import CommitOutcome
from fraud_serving.settings import Settings

from .conftest import API_KEY

ORDER = {
    "order_id": "I1",
    "order_date": "2026-02-01T10:00:00Z",
    "customer_id": "C-intent",
    "email": "intent@example.org",
    "ip_addr": "203.0.113.88",
    "order_amount": 30.0,
}
KINDS = ("customer_id", "email", "ip_addr")


@pytest.mark.parametrize("redis_mode", ["cluster"], indirect=True)
def test_a_commit_that_died_between_its_steps_is_undone_by_the_sweeper(
    settings: Settings, store_url: str
) -> None:
    keys = OnlineKeys(settings.key_prefix, cluster=True)
    raw = connect(store_url, cluster=True)
    node = coordinator(raw, keys)
    with TestClient(create_app(settings)) as client:
        client.headers["X-API-Key"] = API_KEY
        first = client.post("/v1/score", json=ORDER)
        assert first.status_code == 200, first.text
        assert not list(node.scan_iter(match=keys.pending_pattern))  # stored: its intent gone

        # A process wrote the intent and the entities of orders I2 and I3, then died. I3 was
        # scored again meanwhile by another request, which found it there and stored it.
        ns = raw.get(keys.active).decode()
        later = []
        for n, order_id in ((1, "I2"), (2, "I3")):
            body = {**ORDER, "order_id": order_id, "order_date": f"2026-02-01T10:0{n}:00Z"}
            later.append(body)
        entities = [(kind, ORDER[kind]) for kind in KINDS]
        for kind, value in entities:
            name = keys.entity(ns, kind, value)
            state = decode_state(raw.get(name))
            for body in later:
                event = OrderEvent(
                    body["order_id"],
                    epoch_seconds(datetime.fromisoformat(body["order_date"])),
                    amount_cents(body["order_amount"]),
                    {k: body[k] for k in KINDS if k != kind},
                )
                state = append_order(state, event, kind)
            raw.set(name, encode_state(state))
        token = "dead-process-token"
        intent = CommitIntent(token, ns, 1_000, ["I2", "I3"], entities)  # long ago
        node.set(keys.pending(token), intent.encode())
        third = client.post("/v1/score", json=later[1])  # I3 found in the states: not again
        assert third.status_code == 200, third.text
        for kind, value in entities:
            ids = decode_state(raw.get(keys.entity(ns, kind, value))).order_ids
            assert ids == ["I1", "I2", "I3"]

        store = client.app.state.services.store
        assert client.blocking_portal.call(store.sweep_intents) == 1
        for kind, value in entities:  # I2 (no answer) undone; I1 and I3 (answered) kept
            ids = decode_state(raw.get(keys.entity(ns, kind, value))).order_ids
            assert ids == ["I1", "I3"]
        assert node.get(keys.pending(token)) is None
        assert node.get(keys.fence(token)) == b"fenced"
        # the dead commit's second step, were it to arrive now, can no longer store
        late = client.blocking_portal.call(
            store._commit_once, ns, [("I2", ORDER["customer_id"], b"answer", b"entry")], [], token
        )
        assert late == CommitOutcome.FENCED
        assert node.get(keys.scored("I2")) is None
        # and I2 is scored normally when its client tries again
        retried = client.post("/v1/score", json=later[0])
        assert retried.status_code == 200 and "Idempotent-Replayed" not in retried.headers
        ids = decode_state(raw.get(keys.entity(ns, "customer_id", ORDER["customer_id"]))).order_ids
        assert ids == ["I1", "I3", "I2"]
        assert client.blocking_portal.call(store.sweep_intents) == 0
    raw.close()
