"""The decision log (issue 16) over HTTP on a real Redis: every order the service stores gets
exactly one entry, written by the commit that stores its answer, holding what the service saw
and decided; replays, conflicts and refused orders get none."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
import redis
from litestar.testing import TestClient

from fraud_core.access import key_id
from fraud_core.decision_log import decode_decision, log_table
from fraud_core.features.spec import DEFAULT_SPEC
from fraud_core.model.artifact import ModelCard, save_version, set_current
from fraud_core.model.decisions import HOLDOUT, held_out
from fraud_core.online_keys import OnlineKeys
from fraud_serving.app import create_app
from fraud_serving.settings import Settings

from .conftest import API_KEY
from .support import payload, small_orders, trained_booster


def _logged(redis_url: str, prefix: str) -> list[tuple[str, bytes]]:
    client = redis.Redis.from_url(redis_url)
    try:
        return [(i.decode(), f[b"d"]) for i, f in client.xrange(OnlineKeys(prefix).decisions)]
    finally:
        client.close()


def test_each_stored_order_has_one_entry_with_what_was_served(client, redis_url, prefix):
    orders = small_orders().tail(12).reset_index(drop=True)
    now = pd.Timestamp.now(tz="UTC").floor("s")
    # dated in the past hour, in order: nothing is clamped to the future limit
    orders["order_date"] = [now - pd.Timedelta(minutes=60 - i) for i in range(len(orders))]
    bodies = [payload(row) for _, row in orders.iterrows()]
    answers = {}
    for body in bodies[:4]:
        answer = client.post("/v1/score?features=true", json=body)
        assert answer.status_code == 200, answer.text
        answers[body["order_id"]] = answer.json()
    batch = client.post("/v1/score/batch?features=true", json={"orders": bodies[4:]})
    assert batch.status_code == 200, batch.text
    answers |= {a["order_id"]: a for a in batch.json()["results"]}

    # replays and a conflicting reuse of an id add nothing
    assert client.post("/v1/score", json=bodies[0]).headers["Idempotent-Replayed"] == "true"
    assert client.post("/v1/score/batch", json={"orders": bodies[2:6]}).json()["replayed"] == 4
    conflict = client.post("/v1/score", json={**bodies[1], "order_amount": 1.0})
    assert conflict.status_code == 409
    refused = client.post("/v1/score", json={**bodies[1], "order_id": "x", "email": ""})
    assert refused.status_code == 400

    logged = _logged(redis_url, prefix)
    entries = [(i, decode_decision(blob)) for i, blob in logged]
    assert [d.order_id for _, d in entries] == [b["order_id"] for b in bodies]
    for (_, d), body in zip(entries, bodies, strict=True):
        served = answers[d.order_id]
        assert d.score == served["score"] and d.decision == served["decision"]
        assert d.model_version == served["model_version"]
        assert [r[0] for r in d.reasons] == [r["feature"] for r in served["reasons"]]
        vector = [served["features"][n] for n in DEFAULT_SPEC.feature_names]
        np.testing.assert_array_equal(d.features, np.array(vector, dtype=float))
        assert d.t_s == int(pd.Timestamp(body["order_date"]).timestamp())
        assert d.cents == round(body["order_amount"] * 100)
        assert d.ids == {k: body[k] for k in ("customer_id", "email", "ip_addr")}
        assert d.key_id == key_id(API_KEY) and API_KEY not in repr(d)
        assert d.namespace and 0 <= d.latency_us < 60_000_000
        assert abs(d.received_ms / 1000 - pd.Timestamp.now(tz="UTC").timestamp()) < 600

    # the drain's bulk decoding gives the same values as the entries one by one
    table = log_table(logged)
    assert table.column("order_id").to_pylist() == [d.order_id for _, d in entries]
    assert table.column("log_id").to_pylist() == [i for i, _ in entries]
    for row, (_, d) in zip(table.to_pylist(), entries, strict=True):
        np.testing.assert_array_equal(np.array(row["features"]), d.features)
        assert row["score"] == d.score
        assert row["customer_id"] == d.ids["customer_id"] and row["t_s"] == d.t_s
        assert row["reasons"] == [r[0] for r in d.reasons] and row["key_id"] == d.key_id
    assert log_table([]).num_rows == 0


def test_a_holdout_share_approves_some_would_be_declines_and_logs_them(data_dir, redis_url, prefix):
    """FRAUD_DECLINE_HOLDOUT_SHARE: a share of would-be declines is answered `approve` (the shop
    lets them through and chargebacks can come) and logged as `holdout`; which ones is fixed by
    the order id, so a replay answers the same."""
    registry = data_dir / "models"
    card = ModelCard(
        version="",
        feature_names=DEFAULT_SPEC.feature_names,
        thresholds={"review": 0.0, "decline": 0.0},  # the model would decline every order
    )
    set_current(registry, save_version(registry, trained_booster(), card).version)
    settings = Settings(
        api_keys=frozenset({API_KEY}), redis_url=redis_url, key_prefix=prefix, data_dir=data_dir
    )
    orders = small_orders().tail(40).reset_index(drop=True)
    now = pd.Timestamp.now(tz="UTC").floor("s")
    orders["order_date"] = [now - pd.Timedelta(minutes=60 - i) for i in range(len(orders))]
    bodies = [payload(row) for _, row in orders.iterrows()]
    with TestClient(create_app(replace(settings, decline_holdout_share=0.4))) as http:
        http.headers["X-API-Key"] = API_KEY
        got = http.post("/v1/score/batch", json={"orders": bodies})
        assert got.status_code == 200, got.text
        answers = {a["order_id"]: a["decision"] for a in got.json()["results"]}
        again = http.post("/v1/score", json=bodies[0]).json()["decision"]
    held = {b["order_id"] for b in bodies if held_out(b["order_id"], 0.4)}
    assert 0 < len(held) < len(bodies)  # about 40 %
    assert {o for o, d in answers.items() if d == "approve"} == held
    assert {o for o, d in answers.items() if d == "decline"} == set(answers) - held
    assert again == answers[bodies[0]["order_id"]]
    logged = {
        d.order_id: d.decision for d in (decode_decision(b) for _, b in _logged(redis_url, prefix))
    }
    assert {o for o, d in logged.items() if d == HOLDOUT} == held
    with pytest.raises(ValueError, match="FRAUD_DECLINE_HOLDOUT_SHARE"):
        Settings.from_env({"FRAUD_DECLINE_HOLDOUT_SHARE": "0.9", "FRAUD_API_KEYS": "k"})
