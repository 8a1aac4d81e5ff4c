"""The fraud team's controls without a server: API keys and roles, the audit trail, the policy
registry (checksums, pointers, audit), list entries and their expiry, the replay's guardrails
and its offline source, and the shadow verdict."""

from __future__ import annotations

import json
import time

import numpy as np
import pandas as pd
import pytest

from fraud_core import audit
from fraud_core.access import KeyConfigError, KeyRing, allows, key_digest, key_id, parse_entry
from fraud_core.contract import builtin_contract
from fraud_core.model.shadow import shadow_verdict
from fraud_core.policy import PolicyError, PolicyFields, default_policy, load_policy
from fraud_core.policy.lists import ListIndex, decode_entry, new_entry
from fraud_core.policy.registry import ACTIVE, CANDIDATE, PolicyRegistry
from fraud_core.policy.replay import Guardrails, Replayer, judge, offline_orders
from fraud_core.storage import DataLayout

FIELDS = PolicyFields.of(builtin_contract())
NAMES = builtin_contract().spec.feature_names


def test_key_entries_give_roles_ids_and_never_echo_a_key(tmp_path) -> None:
    key_file = tmp_path / "keys"
    key_file.write_text(f"admin:ops:sha256:{key_digest('very-secret-admin')}  # on call\n\n")
    ring = KeyRing.of(["scoring:shop:shop-secret-1", "bare-legacy-key"], key_file)
    shop = ring.match(b"shop-secret-1")
    assert (shop.role, shop.id, shop.legacy) == ("scoring", "shop", False)
    assert ring.match(b"very-secret-admin").id == "ops"
    legacy = ring.match(b"bare-legacy-key")
    assert legacy.role == "admin" and legacy.id == key_id("bare-legacy-key") and ring.has_legacy
    assert ring.match(b"") is None and ring.match(b"shop-secret-2") is None
    assert allows("admin", "analyst") and allows("analyst", "scoring")
    assert not allows("scoring", "analyst")
    for entry, words in (
        ("analyst:bad id:secret-123", "id"),
        ("analyst:x:short", "shorter than 8"),
        ("admin:x:sha256:abc", "64 hex"),
    ):
        with pytest.raises(KeyConfigError) as err:
            parse_entry(entry)
        assert words in str(err.value) and "secret-123" not in str(err.value)
    with pytest.raises(KeyConfigError, match="unique"):
        KeyRing.of(["scoring:a:aaaaaaaaaa", "analyst:a:bbbbbbbbbb"])


def test_the_audit_trail_appends_and_filters(tmp_path, caplog) -> None:
    folder = tmp_path / "audit"
    caplog.set_level("INFO", logger="fraud_core.audit")
    audit.append(folder, audit.AuditRecord("list.add", "key:ana", "list:block:email:x@y.z", "r1"))
    # the log names who and what by id, never the listed value
    assert "list.add list:block:email by key:ana" in caplog.text and "x@y.z" not in caplog.text
    audit.append(folder, audit.AuditRecord("policy.activate", "cli:lead", "policy:active", "go",
                                           before="p-000000000000", after="p-111111111111"))  # fmt: skip
    (month,) = folder.glob("*.jsonl")
    with month.open("a") as fh:
        fh.write('{"action": "list.add", "act')  # a writer that died mid-line
    records = audit.read(folder)
    assert [r["action"] for r in records] == ["policy.activate", "list.add"]
    assert audit.read(folder, action="list.add")[0]["actor"] == "key:ana"
    assert audit.read(folder, target_prefix="policy:")[0]["after"] == "p-111111111111"
    with pytest.raises(ValueError, match="action must be one of"):
        audit.read(folder, action="drop.tables")
    with pytest.raises(ValueError):
        audit.AuditRecord("nope", "x", "y")


POLICY = "name: p1\nrules:\n  - name: big\n    when: amount > 100\n    action: review\n"


def test_the_registry_keeps_versions_by_checksum_and_audits_pointer_moves(tmp_path) -> None:
    layout = DataLayout(tmp_path)
    registry = PolicyRegistry(layout)
    assert registry.active(FIELDS) is None and registry.pointer(CANDIDATE) is None
    policy = load_policy(POLICY, FIELDS)
    assert policy.reads == {"amount", "score"}  # what the service puts in the facts
    assert default_policy(FIELDS).reads == {"score"}
    assert registry.save(policy, "cli:a", "first") == policy.version
    assert registry.pointer(CANDIDATE).version == policy.version
    registry.point(ACTIVE, policy.version, "cli:a", "go")
    assert registry.active(FIELDS).version == policy.version
    trail = audit.read(layout.audit, newest_first=False)
    assert [(r["action"], r["after"]) for r in trail] == [
        ("policy.submit", policy.version),
        ("policy.activate", policy.version),
    ]
    # a kept version edited in place is refused; an unknown version too
    registry.path(policy.version).write_text(POLICY.replace("100", "1"))
    with pytest.raises(PolicyError, match="changed after it was submitted"):
        registry.read(policy.version, FIELDS)
    with pytest.raises(PolicyError, match="no policy version"):
        registry.point(ACTIVE, "p-0123456789ab", "cli:a")
    with pytest.raises(PolicyError, match="not a policy version"):
        registry.path("../../etc/passwd")


def test_list_entries_check_their_input_and_expire() -> None:
    kinds = ("customer_id", "email")
    with pytest.raises(ValueError, match="list must be one of"):
        new_entry("grey", "email", "x", "r", "cli:a", kinds=kinds)
    with pytest.raises(ValueError, match="entity kind"):
        new_entry("block", "phone", "x", "r", "cli:a", kinds=kinds)
    with pytest.raises(ValueError, match="reason"):
        new_entry("block", "email", "x", "  ", "cli:a", kinds=kinds)
    with pytest.raises(ValueError, match="ttl_s"):
        new_entry("block", "email", "x", "r", "cli:a", ttl_s=0, kinds=kinds)
    forever = new_entry("block", "email", "a:b@c", "ring", "cli:a", kinds=kinds)
    brief = new_entry("watch", "customer_id", "C1", "odd", "cli:a", ttl_s=60, kinds=kinds)
    again = decode_entry(forever.field, forever.to_json())
    assert again == forever and again.key == "a:b@c"  # a ':' in a key survives
    index = ListIndex([forever, brief], version=3)
    now = time.time()
    keys = {"customer_id": "C1", "email": "a:b@c"}
    assert index.hits(keys, now) == {("block", "email"), ("watch", "customer_id")}
    assert index.hits(keys, now + 61) == {("block", "email")}
    assert index.hits({"customer_id": "C2", "email": "z"}, now) == frozenset()
    assert ListIndex().hits(keys, now) == frozenset()


def _figures(decline: float, good_declined: float, review: float, caught: float, orders=1000):
    from fraud_core.policy.replay import PolicyFigures

    return PolicyFigures(
        version="p", name="p", orders=orders, decisions={}, amounts={}, fraud=10, good=990,
        fraud_declined=0, fraud_reviewed=0, fraud_amount_caught=caught, fraud_amount_missed=0,
        good_declined=0, decline_rate=decline, review_rate=review, good_declined_rate=good_declined,
    )  # fmt: skip


def test_each_guardrail_refuses_on_its_own() -> None:
    g = Guardrails()
    base = _figures(0.01, 0.005, 0.02, 1000.0)
    assert judge(base, _figures(0.014, 0.006, 0.029, 960.0), g) == []
    for worse, words in (
        (_figures(0.016, 0.005, 0.02, 1000.0), "decline rate"),
        (_figures(0.01, 0.0075, 0.02, 1000.0), "good orders declined"),
        (_figures(0.01, 0.005, 0.031, 1000.0), "review rate"),
        (_figures(0.01, 0.005, 0.02, 940.0), "fraud amount caught"),
        (_figures(0.01, 0.005, 0.02, 1000.0, orders=10), "no evidence"),
    ):
        (breach,) = judge(base, worse, g)
        assert words in breach
    with pytest.raises(ValueError, match="guardrail"):
        Guardrails(max_decline_rate_increase=-1)


def test_offline_orders_are_scored_keyed_and_decided_like_logged_ones() -> None:
    rng = np.random.default_rng(0)
    n = 50
    features = pd.DataFrame(rng.random((n, len(NAMES))), columns=NAMES)
    features["customer_id__first_seen"] = (np.arange(n) % 5 == 0).astype(float)
    features.insert(0, "order_id", [f"O{i}" for i in range(n)])
    orders = pd.DataFrame({
        "order_id": [f"O{i}" for i in range(n)][::-1],  # joined by id, not by position
        "order_date": pd.date_range("2026-11-01", periods=n, freq="17min", tz="UTC")[::-1],
        "order_amount": np.linspace(10, 500, n)[::-1],
        "customer_id": [f"C{i % 7}" for i in range(n)][::-1],
        "email": "e@x", "ip_addr": "1.2.3.4", "location_lat": 1.0, "location_long": 2.0,
    })  # fmt: skip
    got = offline_orders(features, orders, FIELDS, NAMES, lambda x: x[:, 0], "m1")
    frame = got.frame.set_index("order_id")
    assert frame.loc["O3", "customer_id"] == "C3" and frame.loc["O3", "amount"] == pytest.approx(
        float(orders.set_index("order_id").loc["O3", "order_amount"])
    )
    assert frame.loc["O5", "new_kinds"] == ["customer_id"] and frame.loc["O6", "new_kinds"] == []
    np.testing.assert_allclose(got.frame["score"], got.features[:, 0])
    got.frame["is_fraud"] = got.frame["amount"] > 400
    candidate = load_policy(
        "name: c\nrules:\n  - name: new_big\n    when: is_new('customer_id') and amount > 250\n"
        "    action: decline\n", FIELDS,
    )  # fmt: skip
    replayer = Replayer(default_policy(FIELDS), candidate, FIELDS, NAMES,
                        lambda _: {"review": 0.5, "decline": 0.9})  # fmt: skip
    replayer.add(got)
    report = replayer.report(Guardrails(min_orders=1))
    expected = int(((got.frame["amount"] > 250) & got.frame["new_kinds"].map(bool)).sum())
    assert report.candidate.rules["new_big"].matched == expected > 0
    assert report.sources == {"offline": n}
    scores = got.frame["score"]
    assert report.active.decisions["decline"] == int((scores >= 0.9).sum())
    assert json.loads(json.dumps(report.to_dict()))["candidate"]["orders"] == n


def test_the_shadow_verdict_needs_matured_days_and_a_challenger_as_good() -> None:
    rng = np.random.default_rng(2)

    def day(good_challenger: bool, n: int = 400) -> pd.DataFrame:
        fraud = rng.random(n) < 0.05
        sharp = np.where(fraud, rng.uniform(0.6, 1, n), rng.uniform(0, 0.5, n))
        blunt = rng.random(n)
        return pd.DataFrame({
            "score": blunt if good_challenger else sharp,
            "shadow_score": sharp if good_challenger else blunt,
            "shadow_version": "m2", "decision": "approve", "is_fraud": fraud,
        })  # fmt: skip

    better = shadow_verdict("m2", [day(True), day(True)], min_days=2, tolerance=0.01)
    assert better.passed and better.ap_challenger > better.ap_champion and better.days == 2
    worse = shadow_verdict("m2", [day(False), day(False)], min_days=2, tolerance=0.01)
    assert not worse.passed and "<" in worse.reason
    young = shadow_verdict("m2", [day(True)], min_days=2, tolerance=0.01)
    assert not young.passed and "1 matured day" in young.reason
    other = shadow_verdict("m3", [day(True), day(True)], min_days=1, tolerance=0.01)
    assert not other.passed and other.orders == 0
    declined = day(True).assign(decision="decline")  # no chargebacks reach declined orders
    assert shadow_verdict("m2", [declined], min_days=1, tolerance=0.01).orders == 0
