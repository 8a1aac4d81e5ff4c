"""The scoring service over HTTP on a real Redis: features equal the offline path's, replays
count nothing twice, unknown entities get cold-start features, labels reach later features,
and the API key, input validation and body limit hold."""

from __future__ import annotations

import heapq
import json
import re
import threading

import numpy as np
import pandas as pd
import pytest
import redis
from litestar.testing import TestClient

from fraud_assets.lib.online_loader import load_online_store
from fraud_core.features.offline import advance, label_seconds, order_times
from fraud_core.features.pipeline import day_end_s, mark_snapshots, state_file
from fraud_core.features.spec import DEFAULT_SPEC
from fraud_core.online_keys import OnlineKeys
from fraud_core.storage import DataLayout, write_parquet
from fraud_serving.app import create_app

from .conftest import API_KEY, REDIS_MODES
from .support import payload, small_orders, trained_booster

NAMES = DEFAULT_SPEC.feature_names


def _load_history(data_dir, redis_url: str, prefix: str, history: pd.DataFrame) -> int:
    """The offline state after `history`, written as the entity_features snapshot and loaded by
    the online_store loader. Returns the snapshot's end (epoch seconds)."""
    layout = DataLayout(data_dir)
    last_day = history["order_date"].max().date()
    end_s = day_end_s(last_day)
    _, states = advance({}, history, end_s)
    for kind, state in states.items():
        write_parquet(state, state_file(layout, kind, last_day, 0))
    mark_snapshots(layout, last_day, 1)
    client = redis.Redis.from_url(redis_url)
    try:
        report = load_online_store(client, layout, OnlineKeys(prefix))
    finally:
        client.close()
    assert not report.sample_mismatches
    return end_s


def test_api_features_equal_the_offline_path(client, data_dir, redis_url, prefix) -> None:
    """Orders after a loaded snapshot, scored through the API in accepted order (single and
    batch requests) with their chargebacks posted to /v1/labels as they arrive, get exactly the
    features the offline path computes over the whole history; scores are XGBoost's."""
    orders = small_orders()
    cut = orders["order_date"].dt.floor("D").unique()[-5]
    history, online = orders[orders["order_date"] < cut], orders[orders["order_date"] >= cut]
    end_s = _load_history(data_dir, redis_url, prefix, history.reset_index(drop=True))
    expected, _ = advance({}, orders, end_s + 10 * 86_400)
    expected = expected.set_index("order_id").loc[online["order_id"], NAMES]

    t_s, _ = order_times(online)
    labels = label_seconds(online)
    pending: list[tuple[int, str]] = []
    got: dict[str, dict] = {}
    posted = 0
    i = 0
    while i < len(online):
        while pending and pending[0][0] < t_s[i]:  # chargebacks known before this order
            label_at, order_id = heapq.heappop(pending)
            stamp = pd.Timestamp(label_at, unit="s", tz="UTC").isoformat()
            r = client.post(
                "/v1/labels", json={"order_id": order_id, "is_fraud": True, "label_date": stamp}
            )
            assert r.status_code == 200, r.text
            assert r.json()["updated_entities"] == ["customer_id", "email", "ip_addr"]
            posted += 1
        j = i + 1
        while j < len(online) and j - i < 25 and not (pending and pending[0][0] < t_s[j]):
            j += 1
        chunk = online.iloc[i:j]
        if len(chunk) == 1 or i % 2:
            for _, row in chunk.iterrows():
                r = client.post("/v1/score?features=true", json=payload(row))
                assert r.status_code == 200, r.text
                got[row["order_id"]] = r.json()
        else:
            body = {"orders": [payload(row) for _, row in chunk.iterrows()]}
            r = client.post("/v1/score/batch?features=true", json=body)
            assert r.status_code == 200, r.text
            got.update({a["order_id"]: a for a in r.json()["results"]})
        for k in range(i, j):
            if labels[k] != np.iinfo(np.int64).max:
                heapq.heappush(pending, (int(labels[k]), online.iloc[k]["order_id"]))
        i = j
    assert posted > 0, "the test data must exercise labels"

    api = pd.DataFrame(
        [
            [np.nan if v is None else v for v in (got[o]["features"][n] for n in NAMES)]
            for o in expected.index
        ],
        index=expected.index,
        columns=NAMES,
    )
    np.testing.assert_allclose(
        api.to_numpy(), expected.to_numpy(), rtol=0, atol=1e-9, equal_nan=True
    )
    scores = np.array([got[o]["score"] for o in expected.index])
    np.testing.assert_allclose(
        scores, trained_booster().inplace_predict(expected.to_numpy()), rtol=0, atol=1e-6
    )
    known = [got[o]["new_entities"] for o in expected.index]
    assert any(not k for k in known), "some orders must come from known entities"


def _entity_events(client: TestClient, kind: str, value: str) -> list[str]:
    r = client.get(f"/v1/entities/{kind}/{value}")
    assert r.status_code == 200, r.text
    return [e["order_id"] for e in r.json()["events"]]


@pytest.mark.parametrize("redis_mode", REDIS_MODES, indirect=True)
def test_a_replay_returns_the_stored_answer_and_changes_nothing(client) -> None:
    row = payload(small_orders().iloc[3])
    first = client.post("/v1/score", json=row)
    assert first.status_code == 200 and "Idempotent-Replayed" not in first.headers
    again = client.post("/v1/score", json=row)
    assert again.status_code == 200
    assert again.json() == first.json()
    assert again.headers["Idempotent-Replayed"] == "true"
    batch = client.post("/v1/score/batch", json={"orders": [row, row]})
    assert batch.json()["replayed"] == 2
    assert batch.json()["results"] == [first.json(), first.json()]
    for kind in ("customer_id", "email", "ip_addr"):
        assert _entity_events(client, kind, row[kind]) == [row["order_id"]]

    changed = client.post("/v1/score", json={**row, "order_amount": row["order_amount"] + 1})
    assert changed.status_code == 409
    assert changed.json()["errors"][0]["field"] == "order_id"
    metrics = client.get("/metrics").text
    assert "fraud_replayed_orders_total 3.0" in metrics


@pytest.mark.parametrize("redis_mode", REDIS_MODES, indirect=True)
def test_a_batch_scores_in_order_and_repeats_inside_it_count_once(client) -> None:
    base = payload(small_orders().iloc[5])
    second = {**base, "order_id": base["order_id"] + "b", "order_date": "2026-03-01T12:00:00Z"}
    base = {**base, "order_date": "2026-03-01T11:00:00Z"}
    r = client.post("/v1/score/batch?features=true", json={"orders": [base, second, base]})
    assert r.status_code == 200, r.text
    first, later, repeat = r.json()["results"]
    assert first["features"]["customer_id__first_seen"] == 1.0
    assert later["features"]["customer_id__first_seen"] == 0.0
    assert later["features"]["customer_id__seconds_since_prev"] == 3600.0
    assert repeat["order_id"] == base["order_id"] and "features" not in repeat
    assert r.json()["replayed"] == 1
    assert _entity_events(client, "customer_id", base["customer_id"]) == [
        base["order_id"],
        second["order_id"],
    ]


def test_unknown_entities_get_cold_start_features(client) -> None:
    order = {
        "order_id": "cold-1",
        "order_date": "2026-06-01T10:00:00Z",
        "customer_id": "never-seen",
        "email": "nobody@example.org",
        "ip_addr": "192.0.2.1",
        "order_amount": 12.5,
    }
    r = client.post("/v1/score?features=true", json=order)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["new_entities"] == ["customer_id", "email", "ip_addr"]
    assert 0.0 <= body["score"] <= 1.0 and body["decision"] in ("approve", "review", "decline")
    f = body["features"]
    assert f["customer_id__first_seen"] == 1.0 and f["customer_id__order_count__24h"] == 0.0
    assert f["customer_id__seconds_since_prev"] is None
    assert body["reasons"] and all(
        set(x) == {"feature", "value", "contribution"} for x in body["reasons"]
    )

    again = client.post("/v1/score", json={**order, "order_id": "cold-2", "ip_addr": "192.0.2.2"})
    assert again.json()["new_entities"] == ["ip_addr"]


@pytest.mark.parametrize("redis_mode", REDIS_MODES, indirect=True)
def test_a_label_reaches_later_orders_risk_features(client) -> None:
    def order(order_id: str, day: int) -> dict:
        return {
            "order_id": order_id,
            "order_date": f"2026-05-{day:02d}T10:00:00Z",
            "customer_id": "label-customer",
            "email": "label@example.org",
            "ip_addr": "198.51.100.7",
            "order_amount": 99.0,
        }

    assert client.post("/v1/score", json=order("L1", 1)).status_code == 200
    label = {"order_id": "L1", "is_fraud": True, "label_date": "2026-05-03T00:00:00Z"}
    r = client.post("/v1/labels", json=label)
    assert r.status_code == 200, r.text
    assert r.json() == {
        "order_id": "L1",
        "is_fraud": True,
        "updated_entities": ["customer_id", "email", "ip_addr"],
        "changed": True,
    }
    assert client.post("/v1/labels", json=label).json()["changed"] is False  # idempotent
    later = client.post("/v1/score?features=true", json=order("L2", 10)).json()["features"]
    assert later["customer_id__risk_order_count__7d"] == 1.0
    assert later["customer_id__risk_fraud_share__7d"] == 1.0
    assert later["ip_addr__risk_fraud_share__30d"] == 1.0
    view = client.get("/v1/entities/email/label@example.org").json()
    assert view["events"][0]["fraud_label_date"] == "2026-05-03T00:00:00Z"

    cleared = client.post("/v1/labels", json={**label, "is_fraud": False})
    assert cleared.json()["changed"] is True
    missing = client.post("/v1/labels", json={**label, "order_id": "no-such-order"})
    assert missing.status_code == 404


def test_orders_in_the_loaded_snapshot_can_be_labelled(client, data_dir, redis_url, prefix) -> None:
    history = small_orders().iloc[:300].reset_index(drop=True)
    _load_history(data_dir, redis_url, prefix, history)
    row = history.iloc[-1]
    r = client.post(
        "/v1/labels",
        json={"order_id": row["order_id"], "is_fraud": True, "label_date": "2026-03-20T00:00:00Z"},
    )
    assert r.status_code == 200, r.text
    assert r.json()["updated_entities"] == ["customer_id", "email", "ip_addr"]


def test_the_api_key_guards_v1(client) -> None:
    order = payload(small_orders().iloc[0])
    routes = [
        ("post", "/v1/score", order),
        ("post", "/v1/score/batch", {"orders": [order]}),
        (
            "post",
            "/v1/labels",
            {"order_id": "x", "is_fraud": True, "label_date": "2026-01-01T00:00:00Z"},
        ),
        ("get", "/v1/entities/customer_id/C1", None),
        ("get", "/v1/model", None),
    ]
    for key in (None, "wrong-key"):
        headers = {"X-API-Key": key} if key else {}
        client.headers.pop("X-API-Key", None)
        for method, path, body in routes:
            kwargs = {"json": body} if body is not None else {}
            r = getattr(client, method)(path, headers=headers, **kwargs)
            assert r.status_code == 401, (path, key, r.text)
    for path in ("/health", "/ready", "/metrics", "/schema/openapi.json"):
        assert client.get(path).status_code == 200, path
    client.headers["X-API-Key"] = API_KEY
    assert client.get("/v1/model").status_code == 200


def test_the_docs_page_needs_nothing_from_the_internet(client):
    """/schema is Swagger UI 5 with its scripts and favicon served by the app (swagger-ui-py),
    so it renders offline; the viewers that need a CDN are not offered; error schemas carry no
    made-up examples."""
    client.headers.pop("X-API-Key", None)
    page = client.get("/schema")
    assert page.status_code == 200 and "swagger-ui-bundle.js" in page.text
    sources = re.findall(r"""(?:src|href)=["']([^"']+)["']""", page.text)
    assert sources and all(s.startswith("/schema/assets/") for s in sources), sources
    for source in sources:
        asset = client.get(source)
        assert asset.status_code == 200 and len(asset.content) > 1000, source
    for viewer in ("/schema/redoc", "/schema/elements", "/schema/rapidoc"):
        assert client.get(viewer).status_code == 404, viewer
    spec = client.get("/schema/openapi.json").json()
    bad_input = spec["paths"]["/v1/score"]["post"]["responses"]["400"]
    assert "examples" not in json.dumps(bad_input)


GOOD = {
    "order_id": "V1",
    "order_date": "2026-02-01T10:00:00Z",
    "customer_id": "C1",
    "email": "c1@example.org",
    "ip_addr": "203.0.113.9",
    "order_amount": 10.0,
}


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"order_amount": -1}, "order_amount"),
        ({"order_amount": "ten"}, "order_amount"),
        ({"order_date": "2026-02-01T10:00:00"}, "order_date"),  # no time zone
        ({"order_date": "yesterday"}, "order_date"),
        ({"order_date": "1999-12-31T00:00:00Z"}, ""),
        ({"order_id": ""}, "order_id"),
        ({"order_id": "has space"}, "order_id"),
        ({"customer_id": "x" * 300}, "customer_id"),
        ({"email": None}, "email"),
        ({"unexpected": 1}, "unexpected"),
        ({"location_lat": 91}, "location_lat"),
    ],
)
def test_bad_input_is_a_400_naming_the_field(client, change, field) -> None:
    r = client.post("/v1/score", json={**GOOD, **change})
    assert r.status_code == 400, r.text
    errors = r.json()["errors"]
    assert errors and errors[0]["reason"]
    if field:
        assert errors[0]["field"] == field, errors
    else:
        assert "order_date" in errors[0]["reason"]


def test_more_bad_input(client) -> None:
    missing = {k: v for k, v in GOOD.items() if k != "email"}
    r = client.post("/v1/score", json=missing)
    assert r.status_code == 400 and r.json()["errors"][0]["field"] == "email"
    r = client.post("/v1/score/batch", json={"orders": [GOOD, {**GOOD, "order_amount": -5}]})
    assert r.status_code == 400 and r.json()["errors"][0]["field"] == "orders[1].order_amount"
    r = client.post("/v1/score/batch", json={"orders": []})
    assert r.status_code == 400
    r = client.post("/v1/score/batch", json={"orders": [GOOD] * 1001})
    assert r.status_code == 400
    r = client.post("/v1/score", content=b"{not json", headers={"Content-Type": "application/json"})
    assert r.status_code == 400
    r = client.get("/v1/entities/phone/123")
    assert r.status_code == 400 and r.json()["errors"][0]["field"] == "kind"
    r = client.post(
        "/v1/labels",
        json={"order_id": "x", "is_fraud": "maybe", "label_date": "2026-01-01T00:00:00Z"},
    )
    assert r.status_code == 400 and r.json()["errors"][0]["field"] == "is_fraud"
    big = b'{"orders": [' + b",".join([b'{"order_id": "' + b"x" * 100 + b'"}'] * 12_000) + b"]}"
    r = client.post("/v1/score/batch", content=big, headers={"Content-Type": "application/json"})
    assert r.status_code == 413


def _answer(r) -> tuple[int, dict[str, str], bytes]:
    headers = {k.lower(): v for k, v in r.headers.items() if k.lower() != "date"}
    return r.status_code, headers, r.content


def test_the_direct_answer_equals_the_handlers(client) -> None:
    """`POST /v1/score` without a query string is answered by the route's middleware; with one
    (`?features=false`) by the handler. Both give the same status, headers and body: for a new
    order, a replay, bad input, a conflict and a body over the limit."""
    direct, handler = "/v1/score", "/v1/score?features=false"
    first = payload(small_orders().iloc[5])
    second = payload(small_orders().iloc[6])
    new_direct, new_handler = client.post(direct, json=first), client.post(handler, json=second)
    assert new_direct.status_code == new_handler.status_code == 200
    assert _answer(new_direct)[1].keys() == _answer(new_handler)[1].keys()
    assert new_direct.headers["content-type"] == new_handler.headers["content-type"]
    assert new_direct.json().keys() == new_handler.json().keys()
    replays = [client.post(direct, json=first), client.post(handler, json=first)]
    assert replays[0].headers["Idempotent-Replayed"] == "true"
    assert _answer(replays[0]) == _answer(replays[1])
    assert replays[0].content == new_direct.content
    for bad in (
        {**GOOD, "order_amount": "ten"},
        {k: v for k, v in GOOD.items() if k != "email"},
        {**first, "order_amount": first["order_amount"] + 1},  # a conflict: 409
    ):
        answers = [_answer(client.post(path, json=bad)) for path in (direct, handler)]
        assert answers[0][0] in (400, 409) and answers[0] == answers[1], answers
    junk = {"Content-Type": "application/json"}
    answers = [
        _answer(client.post(p, content=b"{not json", headers=junk)) for p in (direct, handler)
    ]
    assert answers[0][0] == 400 and answers[0] == answers[1]
    big = b'{"order_id": "' + b"x" * 1_100_000 + b'"}'
    answers = [_answer(client.post(p, content=big, headers=junk)) for p in (direct, handler)]
    assert answers[0][0] == 413 and answers[0] == answers[1]
    for kind in ("customer_id", "email", "ip_addr"):  # each order was stored once
        assert _entity_events(client, kind, first[kind]) == [first["order_id"]]


def test_model_card_and_readiness(client, model) -> None:
    r = client.get("/v1/model")
    assert r.status_code == 200
    assert r.json()["version"] == model.version
    assert r.json()["card"]["feature_names"] == NAMES
    ready = client.get("/ready").json()
    assert ready["ready"] and ready["redis"] and ready["model_version"] == model.version
    response = client.get("/metrics")
    assert response.headers["content-type"].count("charset") == 1
    assert response.headers["content-type"].startswith("text/plain; version=")
    metrics = response.text
    assert f'fraud_model_info{{version="{model.version}"}} 1.0' in metrics
    assert "fraud_redis_up 1.0" in metrics


@pytest.mark.parametrize("redis_mode", REDIS_MODES, indirect=True)
def test_two_processes_on_the_same_customer_lose_no_order(settings) -> None:
    """Two app instances (two event loops, like two worker processes) score orders of one
    customer at the same time: the compare-and-set makes every order land exactly once."""
    n = 30
    results: dict[str, int] = {}
    apps = [
        create_app(settings) for _ in range(2)
    ]  # built here: Litestar's imports are not thread-safe

    def send(start: int) -> None:
        with TestClient(apps[start]) as c:
            c.headers["X-API-Key"] = API_KEY
            for k in range(start, n, 2):
                order = {
                    **GOOD,
                    "order_id": f"race-{k}",
                    "order_date": f"2026-02-01T10:00:{k:02d}Z",
                }
                results[order["order_id"]] = c.post("/v1/score", json=order).status_code

    threads = [threading.Thread(target=send, args=(s,)) for s in (0, 1)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(results) == n and set(results.values()) == {200}
    with TestClient(create_app(settings)) as c:
        c.headers["X-API-Key"] = API_KEY
        events = _entity_events(c, "customer_id", GOOD["customer_id"])
    assert sorted(events) == sorted(f"race-{k}" for k in range(n))


def test_orders_dated_too_far_ahead_can_be_refused(settings) -> None:
    from dataclasses import replace

    with TestClient(create_app(replace(settings, max_future_s=3_600))) as c:
        c.headers["X-API-Key"] = API_KEY
        r = c.post("/v1/score", json={**GOOD, "order_date": "2099-01-01T00:00:00Z"})
        assert r.status_code == 400
        assert r.json()["errors"][0]["field"] == "order_date"
        r = c.post(
            "/v1/score/batch",
            json={
                "orders": [GOOD, {**GOOD, "order_id": "V2", "order_date": "2099-01-01T00:00:00Z"}]
            },
        )
        assert r.status_code == 400 and r.json()["errors"][0]["field"] == "orders[1].order_date"


def test_settings_never_show_the_api_keys() -> None:
    """Logging the settings object (or an error that formats it) must not leak a key."""
    from fraud_serving.settings import Settings

    settings = Settings(api_keys=frozenset({"do-not-log-me"}))
    assert "do-not-log-me" not in repr(settings) and "do-not-log-me" not in str(settings)
