"""Hostile input over HTTP (issue 12 #9): whatever a client sends is a 4xx naming the field and
the reason, never a 500; types are strict; any entity id can be looked up; a label cannot be
dated before its order."""

from __future__ import annotations

import pandas as pd
import pytest

from .support import small_orders
from .test_scoring_api import GOOD, _load_history

_JSON = {"Content-Type": "application/json"}


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/v1/score", b'{"order_id": "\xff\xfe"}'),
        ("/v1/score/batch", b'{"orders": [{"order_id": "O-\xc3"}]}'),
        ("/v1/labels", b'{"order_id": "\xed\xa0\x80"}'),  # an encoded surrogate
    ],
)
def test_a_body_that_is_not_utf8_is_a_400(client, path, body) -> None:
    r = client.post(path, content=body, headers=_JSON)
    assert r.status_code == 400, r.text
    (error,) = r.json()["errors"]
    assert error["field"] == "body" and "UTF-8" in error["reason"]


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/v1/score", b"[" * 2_000 + b"]" * 2_000),
        ("/v1/score", b'{"a":' * 2_000 + b"1" + b"}" * 2_000),
        ("/v1/score", b'{"location_lat": ' + b"[" * 2_000 + b"]" * 2_000 + b"}"),
        ("/v1/score/batch", b'{"orders": ' + b"[" * 2_000 + b"]" * 2_000 + b"}"),
        ("/v1/labels", b'{"unknown": ' + b"{" * 2_000 + b"}" * 2_000 + b"}"),
    ],
)
def test_json_nested_2000_deep_is_a_400(client, path, body) -> None:
    r = client.post(path, content=body, headers=_JSON)
    assert r.status_code == 400, r.text
    assert r.json()["errors"][0]["reason"]


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        ("/v1/score", {**GOOD, "order_amount": "42.5"}, "order_amount"),
        ("/v1/score", {**GOOD, "order_date": 1_767_225_600}, "order_date"),
        ("/v1/score", {**GOOD, "location_lat": "12.5"}, "location_lat"),
        (
            "/v1/score/batch",
            {"orders": [{**GOOD, "order_amount": "42.5"}]},
            "orders[0].order_amount",
        ),
        (
            "/v1/labels",
            {"order_id": "V1", "is_fraud": "true", "label_date": "2026-02-02T00:00:00Z"},
            "is_fraud",
        ),
        (
            "/v1/labels",
            {"order_id": "V1", "is_fraud": True, "label_date": 1_767_225_600},
            "label_date",
        ),
    ],
)
def test_types_are_strict(client, path, body, field) -> None:
    """A string where a number belongs and a number where a date belongs are refused, not
    coerced."""
    r = client.post(path, json=body)
    assert r.status_code == 400, r.text
    (error,) = r.json()["errors"]
    assert error["field"] == field and error["reason"], error


def test_a_date_out_of_range_names_the_field(client) -> None:
    r = client.post("/v1/score", json={**GOOD, "order_date": "1999-12-31T00:00:00Z"})
    assert r.json()["errors"][0]["field"] == "order_date"
    r = client.post(
        "/v1/score/batch", json={"orders": [GOOD, {**GOOD, "order_date": "1999-12-31T00:00:00Z"}]}
    )
    assert r.json()["errors"][0]["field"] == "orders[1].order_date"


@pytest.mark.parametrize("entity", ["C/1", "C/1/", "a//b", "50% off?#x", "/leading", "x+y"])
def test_any_entity_id_can_be_looked_up(client, entity) -> None:
    order = {**GOOD, "order_id": "ids-1", "customer_id": entity}
    assert client.post("/v1/score", json=order).status_code == 200
    r = client.get("/v1/entities/customer_id", params={"id": entity})
    assert r.status_code == 200, r.text
    assert r.json()["id"] == entity
    assert [e["order_id"] for e in r.json()["events"]] == ["ids-1"]
    assert client.get("/v1/entities/customer_id", params={"id": "nobody"}).status_code == 404
    r = client.get(f"/v1/entities/email/{GOOD['email']}")  # the path form still works
    assert r.status_code == 200 and r.json()["id"] == GOOD["email"]


def test_a_label_dated_before_its_order_is_refused(client) -> None:
    order = {**GOOD, "order_id": "early-1", "order_date": "2026-02-01T10:00:00.500Z"}
    assert client.post("/v1/score", json=order).status_code == 200
    label = {"order_id": "early-1", "is_fraud": True, "label_date": "2026-02-01T10:00:00.400Z"}
    r = client.post("/v1/labels", json=label)
    assert r.status_code == 400, r.text
    (error,) = r.json()["errors"]
    assert error["field"] == "label_date" and "before" in error["reason"]
    view = client.get(f"/v1/entities/customer_id/{GOOD['customer_id']}").json()
    assert view["events"][0]["fraud_label_date"] is None  # nothing was written

    r = client.post("/v1/labels", json={**label, "label_date": "2026-02-01T10:00:00.500Z"})
    assert r.status_code == 200, r.text
    r = client.post("/v1/labels", json={**label, "order_id": "never-scored"})
    assert r.status_code == 404


def test_a_label_dated_before_an_order_of_the_loaded_snapshot_is_refused(
    client, data_dir, redis_url, prefix
) -> None:
    """Orders the service never scored are known from the snapshot's states: their time there
    (whole seconds) is the bound."""
    history = small_orders().iloc[:300].reset_index(drop=True)
    _load_history(data_dir, redis_url, prefix, history)
    row = history.iloc[-1]
    before = (row["order_date"] - pd.Timedelta(seconds=1)).isoformat()
    r = client.post(
        "/v1/labels", json={"order_id": row["order_id"], "is_fraud": True, "label_date": before}
    )
    assert r.status_code == 400, r.text
    assert r.json()["errors"][0]["field"] == "label_date"
