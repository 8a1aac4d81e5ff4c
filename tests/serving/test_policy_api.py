"""The fraud team's controls over HTTP on a real Redis: roles per route, list entries that change
decisions (and expire), a policy submitted, activated and hot-reloaded (an invalid one refused
while the old one keeps deciding), segment thresholds, and the audit record of every change."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from litestar.testing import TestClient

from fraud_assets.lib.redis_clients import connect, coordinator
from fraud_core.access import key_digest
from fraud_core.decision_log import decode_decision
from fraud_core.online_keys import OnlineKeys
from fraud_core.storage import DataLayout
from fraud_serving.app import create_app
from fraud_serving.settings import Settings

from .conftest import REDIS_MODES
from .support import THRESHOLDS, payload, small_orders, wait_for

SCORING, ANALYST, ADMIN = "scoring-secret-1", "analyst-secret-1", "admin-secret-1"
FILE_KEY = "from-the-key-file-1"


@pytest.fixture
def keyed(
    data_dir: Path, store_url: str, redis_mode: str, prefix: str, model, tmp_path: Path
) -> Iterator[TestClient]:
    key_file = tmp_path / "keys.txt"
    key_file.write_text(f"# digests only\nanalyst:filed:sha256:{key_digest(FILE_KEY)}\n")
    settings = Settings(
        api_keys=frozenset(
            {f"scoring:shop:{SCORING}", f"analyst:ana:{ANALYST}", f"admin:boss:{ADMIN}"}
        ),
        keys_file=str(key_file),
        redis_url=store_url,
        redis_cluster=redis_mode == "cluster",
        key_prefix=prefix,
        data_dir=data_dir,
        model_poll_s=0.1,
    )
    with TestClient(create_app(settings)) as client:
        yield client


def _as(key: str) -> dict[str, str]:
    return {"X-API-Key": key}


def _orders(n: int, start: int = 0) -> list[dict]:
    return [payload(row) for _, row in small_orders().iloc[start : start + n].iterrows()]


def _score(client: TestClient, order: dict, key: str = SCORING) -> dict:
    r = client.post("/v1/score", json=order, headers=_as(key))
    assert r.status_code == 200, r.text
    return r.json()


def _audit(data_dir: Path) -> list[dict]:
    folder = Path(DataLayout(data_dir).audit)
    return [json.loads(line) for p in sorted(folder.glob("*.jsonl")) for line in p.open()]


def test_each_role_reaches_only_its_routes(keyed: TestClient) -> None:
    order = _orders(1)[0]
    entry = {"list": "watch", "kind": "email", "value": order["email"], "reason": "seen on a forum"}
    policy = {"text": "name: p\nrules: []\n", "reason": "try"}
    assert keyed.post("/v1/score", json=order, headers=_as("nope")).status_code == 401
    assert keyed.post("/v1/score", json=order).status_code == 401
    assert _score(keyed, order)["policy_version"].startswith("p-")
    for method, path, body in (
        ("post", "/v1/lists", entry),
        ("get", "/v1/lists", None),
        ("get", "/v1/audit", None),
        ("post", "/v1/labels", {"order_id": order["order_id"], "is_fraud": True,
                                "label_date": "2030-01-01T00:00:00Z"}),
        ("get", f"/v1/entities/email?id={order['email']}", None),
    ):  # fmt: skip
        r = keyed.request(method, path, json=body, headers=_as(SCORING))
        assert r.status_code == 403, (path, r.text)
        assert "'shop'" in r.json()["detail"] and "analyst" in r.json()["detail"]
    assert keyed.post("/v1/lists", json=entry, headers=_as(ANALYST)).status_code == 201
    assert keyed.post("/v1/lists", json=entry, headers=_as(FILE_KEY)).status_code == 201
    assert keyed.post("/v1/policy", json=policy, headers=_as(ANALYST)).status_code == 403
    assert keyed.post("/v1/policy", json=policy, headers=_as(ADMIN)).status_code == 201
    # the key ids, never the keys, in the trail
    trail = _audit(Path(keyed.app.state.settings.data_dir))
    assert [r["actor"] for r in trail] == ["key:ana", "key:filed", "key:boss"]
    assert not any(k in json.dumps(trail) for k in (SCORING, ANALYST, ADMIN, FILE_KEY))


def test_a_bare_key_still_works_as_an_admin_key(client: TestClient) -> None:
    assert client.get("/v1/policy").status_code == 200
    assert client.get("/v1/policy").json()["default"] is True


@pytest.mark.parametrize("redis_mode", REDIS_MODES, indirect=True)
def test_a_block_list_entry_declines_the_next_order_and_its_removal_undoes_it(
    keyed: TestClient, store_url: str, redis_mode: str, prefix: str
) -> None:
    orders = _orders(40)
    first = _score(keyed, orders[0])
    assert first["decision"] != "decline" and first.get("list_hits", []) == []
    customer = orders[0]["customer_id"]
    r = keyed.post(
        "/v1/lists",
        json={"list": "block", "kind": "customer_id", "value": customer, "reason": "stolen card"},
        headers=_as(ANALYST),
    )
    assert r.status_code == 201, r.text
    assert r.json()["author"] == "key:ana" and r.json()["expires_at"] is None
    same = (
        next(o for o in orders[1:] if o["customer_id"] == customer)
        if any(o["customer_id"] == customer for o in orders[1:])
        else {**orders[1], "customer_id": customer}
    )
    blocked = _score(keyed, same)
    assert blocked["decision"] == "decline"
    assert blocked["decided_by"] == "block_listed"
    assert "block_listed" in blocked.get("rules", []) and blocked.get("list_hits", []) == [
        "block:customer_id"
    ]
    other = _score(keyed, {**orders[2], "customer_id": "someone-else"})
    assert other.get("list_hits", []) == []

    listed = keyed.get("/v1/lists?list=block", headers=_as(ANALYST)).json()
    assert listed["total"] == 1 and listed["entries"][0]["key"] == customer
    r = keyed.delete(
        f"/v1/lists/block/customer_id?value={customer}&reason=cleared", headers=_as(ANALYST)
    )
    assert r.status_code == 204, r.text
    assert (
        keyed.delete(
            f"/v1/lists/block/customer_id?value={customer}&reason=again", headers=_as(ANALYST)
        ).status_code
        == 404
    )
    after = _score(keyed, {**orders[3], "customer_id": customer})
    assert after.get("list_hits", []) == [] and after["decided_by"] == "score"

    # the decision log has the policy's part of each order
    keys = OnlineKeys(prefix, redis_mode == "cluster")
    client = coordinator(connect(store_url, cluster=keys.cluster), keys)
    try:
        logged = {
            d.order_id: d
            for d in (decode_decision(f[b"d"]) for _, f in client.xrange(keys.decisions))
        }
    finally:
        client.close()
    entry = logged[same["order_id"]]
    assert entry.decision == "decline" and list(entry.rules) == blocked.get("rules", [])
    assert entry.list_hits == ["block:customer_id"]
    assert entry.policy_version == blocked["policy_version"] and entry.key_id == "shop"
    trail = _audit(Path(keyed.app.state.settings.data_dir))
    assert [r["action"] for r in trail] == ["list.add", "list.remove"]
    assert trail[0]["reason"] == "stolen card" and trail[1]["reason"] == "cleared"
    assert trail[0]["target"] == f"list:block:customer_id:{customer}"


def test_a_list_entry_expires(keyed: TestClient) -> None:
    orders = _orders(3)
    r = keyed.post(
        "/v1/lists",
        json={"list": "watch", "kind": "email", "value": orders[0]["email"], "reason": "odd",
              "ttl_s": 1.0},
        headers=_as(ANALYST),
    )  # fmt: skip
    assert r.status_code == 201
    hit = _score(keyed, {**orders[1], "email": orders[0]["email"]})
    assert hit.get("list_hits", []) == ["watch:email"] and hit.get("tags", []) == ["watched"]
    time.sleep(1.1)
    miss = _score(keyed, {**orders[2], "email": orders[0]["email"]})
    assert miss.get("list_hits", []) == [] and miss.get("tags", []) == []
    assert keyed.get("/v1/lists", headers=_as(ANALYST)).json()["total"] == 0


def test_bad_list_entries_get_a_400_naming_the_field(keyed: TestClient) -> None:
    base = {"list": "block", "kind": "email", "value": "x@example.com", "reason": "r"}
    for change, field in (
        ({"list": "grey"}, "list"),
        ({"kind": "phone"}, "kind"),
        ({"reason": ""}, "reason"),
        ({"ttl_s": -1}, "ttl_s"),
    ):
        r = keyed.post("/v1/lists", json={**base, **change}, headers=_as(ANALYST))
        assert r.status_code == 400, r.text
        assert field in r.text


POLICY = """
name: big-orders
rules:
  - name: big_order
    when: amount >= 900
    action: review
    tags: [big]
  - name: seen_before
    when: customer_id__order_count__30d >= 0 and email != ""
segments:
  - name: mid
    when: amount >= 400 and amount < 900
    thresholds: {review: 0.0, decline: 0.0}
"""


def test_a_policy_is_submitted_activated_hot_reloaded_and_an_invalid_one_refused(
    keyed: TestClient, data_dir: Path
) -> None:
    orders = _orders(6)
    bad = keyed.post(
        "/v1/policy",
        json={"text": "name: x\nrules:\n  - name: r1\n    when: amout > 3\n    action: review\n",
              "reason": "typo"},
        headers=_as(ADMIN),
    )  # fmt: skip
    assert bad.status_code == 400
    assert "r1" in bad.text and "amout" in bad.text and "amount" in bad.text  # did you mean

    saved = keyed.post("/v1/policy", json={"text": POLICY, "reason": "q4"}, headers=_as(ADMIN))
    assert saved.status_code == 201 and saved.json()["pointer"] == "candidate"
    version = saved.json()["version"]
    # a candidate is not applied
    assert _score(keyed, {**orders[0], "order_amount": 950.0})["decided_by"] != "big_order"
    r = keyed.post(
        "/v1/policy/active", json={"version": version, "reason": "urgent"}, headers=_as(ADMIN)
    )
    assert r.status_code == 200, r.text
    big = _score(keyed, {**orders[1], "order_amount": 950.0})
    assert big["decision"] == "review" and big["decided_by"] == "big_order"
    assert big["rules"] == ["big_order", "seen_before"]  # a feature and an entity key read
    assert big.get("tags", []) == ["big"] and big["policy_version"] == version
    # segment thresholds: every mid-sized order is declined by its segment's thresholds
    mid = _score(keyed, {**orders[2], "order_amount": 500.0})
    assert (mid["decision"], mid.get("segment", ""), mid["decided_by"]) == (
        "decline",
        "mid",
        "score",
    )
    small = _score(keyed, {**orders[3], "order_amount": 5.0})
    assert small.get("segment", "") == "" and small["decision"] == (
        "decline" if small["score"] >= THRESHOLDS["decline"]
        else "review" if small["score"] >= THRESHOLDS["review"] else "approve"
    )  # fmt: skip

    # a tampered version named by active.json is refused; the applied one keeps deciding
    policies = Path(DataLayout(data_dir).policies)
    tampered = POLICY.replace("900", "9")
    (policies / f"{version}.yaml").write_text(tampered)
    pointer = policies / "active.json"
    pointer.write_text(pointer.read_text())  # touched: the service looks again
    wait_for(
        lambda: 'fraud_policy_reloads_total{result="refused"} 1.0' in keyed.get("/metrics").text
    )
    still = _score(keyed, {**orders[4], "order_amount": 950.0})
    assert still["policy_version"] == version and still["decided_by"] == "big_order"
    assert keyed.get("/v1/policy", headers=_as(ANALYST)).json()["version"] == version

    audit = keyed.get("/v1/audit?action=policy.activate", headers=_as(ANALYST)).json()
    assert len(audit) == 1 and audit[0]["after"] == version and audit[0]["before"] is None
    assert audit[0]["actor"] == "key:boss" and audit[0]["reason"] == "override: urgent"
    submits = keyed.get("/v1/audit?action=policy.submit", headers=_as(ANALYST)).json()
    assert [a["after"] for a in submits] == [version]
