"""The service under a contract whose entities are derived (issue 15): it takes the clear value,
keys it as validation keys a landing file (the transform, then the keyed digest of a personal
entity) and never stores the clear value; a value the transform finds nothing in is a 400."""

from __future__ import annotations

from dataclasses import replace

import pandas as pd
import pytest
import redis
from litestar.testing import TestClient

from fraud_core.contract import DEFAULT_CONTRACT_PATH, contract_from_text
from fraud_core.contract.request import RequestShape, RequestValueError
from fraud_core.contract.source import SourceFormat
from fraud_core.contract.transforms import entity_keys
from fraud_serving.app import create_app

from .conftest import API_KEY

KEY_ENV = {"SHOP_KEY": "k" * 32}
# The built-in entities, the e-mail stored only as its keyed digest and the IP as its /24
# network: the same features (the spec does not change), other keys.
TEXT = (
    DEFAULT_CONTRACT_PATH.read_text()
    .replace("  - name: email\n", "  - name: email\n    personal: true\n")
    .replace("  - name: ip_addr\n", "  - name: ip_addr\n    transform: ip_prefix/24\n")
    + "privacy:\n  key_env: SHOP_KEY\n"
)
CONTRACT = contract_from_text(TEXT, "derived.yaml", KEY_ENV)


def test_request_keys_are_the_landing_files_keys() -> None:
    shape = RequestShape.of(CONTRACT, KEY_ENV)
    assert shape.entity_fields == ("customer_id", "email", "ip_addr") and not shape.identity
    values = [
        {"customer_id": "C1", "email": "Ann@Example.com", "ip_addr": "83.12.200.7"},
        {"customer_id": "C2", "email": "bob@example.com", "ip_addr": "2001:db8::1"},
    ]
    keys = shape.keys(values)
    source = SourceFormat.of(CONTRACT)
    for e in CONTRACT.entities:  # what validation stores for the same values
        column = pd.Series([v[e.name] for v in values], dtype="string")
        expected = entity_keys(e, column, source.personal_key(KEY_ENV)).tolist()
        assert [k[e.name] for k in keys] == expected
    assert keys[0]["ip_addr"] == "83.12.200.0/24"
    assert len(keys[0]["email"]) == 64 and "Ann" not in keys[0]["email"]
    with pytest.raises(RequestValueError, match="ip_addr: ip_prefix/24 finds nothing"):
        shape.keys([{**values[0], "ip_addr": "not an address"}])


def test_the_service_keys_clear_values_and_stores_no_clear_e_mail(settings, redis_url, prefix):
    settings = replace(settings, contract=CONTRACT, privacy_key=KEY_ENV["SHOP_KEY"].encode())
    order = {
        "order_id": "derived-1",
        "order_date": "2026-03-20T10:00:00Z",
        "customer_id": "C-derived",
        "email": "Ann@Example.com",
        "ip_addr": "83.12.200.7",
        "order_amount": 20.0,
    }
    with TestClient(create_app(settings)) as http:
        http.headers["X-API-Key"] = API_KEY
        first = http.post("/v1/score", json=order)
        assert first.status_code == 200, first.text
        # the same network, the same e-mail: the known entities, not new ones
        second = http.post(
            "/v1/score", json={**order, "order_id": "derived-2", "ip_addr": "83.12.200.99"}
        ).json()
        assert second["new_entities"] == []
        view = http.get("/v1/entities/email", params={"id": "Ann@Example.com"}).json()
        assert view["id"] != "Ann@Example.com" and len(view["id"]) == 64
        assert [e["order_id"] for e in view["events"]] == ["derived-1", "derived-2"]
        network = http.get("/v1/entities/ip_addr", params={"id": "83.12.200.1"}).json()
        assert network["id"] == "83.12.200.0/24"
        bad = http.post("/v1/score", json={**order, "order_id": "derived-3", "ip_addr": "x"})
        assert bad.status_code == 400
        assert bad.json()["errors"][0]["field"] == "ip_addr"
    client = redis.Redis.from_url(redis_url)
    try:
        stored = []  # every key and value the service wrote
        for name in client.scan_iter(match=f"{prefix}*"):
            stored.append(name)
            kind = client.type(name)
            if kind == b"string":
                stored.append(client.get(name))
            elif kind == b"hash":
                stored += [x for pair in client.hgetall(name).items() for x in pair]
            elif kind == b"set":
                stored += list(client.smembers(name))
    finally:
        client.close()
    assert len(stored) > 4
    assert not any(b"Ann@" in value or b"ann@" in value for value in stored)
