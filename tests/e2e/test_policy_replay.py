"""A candidate policy replayed on the service's own decisions through Dagster (issue 17): orders
scored over HTTP on a real Redis (one customer block-listed meanwhile), the decision log drained
to `scored_orders`, labels from the order rows; `policy_replay`'s figures equal a recomputation
written here from the logged entries, a modest policy is activated by `active_policy`, and one
that declines too many good orders is refused by the blocking check, audited, and not applied."""

from __future__ import annotations

import json

import pandas as pd
import pyarrow as pa
import pytest
from dagster import materialize
from litestar.testing import TestClient

from fraud_assets.assets.decision_log import decision_log
from fraud_assets.assets.policy import POLICY_WITHIN_GUARDRAILS, active_policy, policy_replay
from fraud_assets.assets.scored_orders import scored_orders
from fraud_assets.resources import DataLayoutResource, RedisResource
from fraud_core import audit
from fraud_core.contract import builtin_contract
from fraud_core.decision_log import decode_decision
from fraud_core.policy import PolicyFields, load_policy
from fraud_core.policy.registry import ACTIVE, PolicyRegistry
from fraud_core.storage import DataLayout, write_parquet
from fraud_serving.app import create_app
from fraud_serving.settings import Settings

from ..serving.support import THRESHOLDS, deploy, payload, small_orders, trained_booster

ADMIN = "admin:lead:replay-admin-key"
MODEST = """
name: modest
rules:
  - name: block_listed
    when: listed("block")
    action: decline
  - name: big_new_customer
    when: is_new("customer_id") and amount >= 400
    action: review
"""
GREEDY = """
name: greedy
rules:
  - name: block_listed
    when: listed("block")
    action: decline
  - name: anything_over_20
    when: amount > 20
    action: decline
"""


def _card(score: float) -> str:
    if score >= THRESHOLDS["decline"]:
        return "decline"
    return "review" if score >= THRESHOLDS["review"] else "approve"


def _by_hand(entry, policy: str) -> tuple[str, list[str]]:
    """The decision and matched rules of a policy above for one logged entry, in plain Python."""
    blocked = any(h.startswith("block:") for h in entry.list_hits)
    amount = entry.cents / 100
    if policy == "default":
        return ("decline", ["block_listed"]) if blocked else (_card(entry.score), [])
    second = (
        "customer_id" in entry.new_kinds and amount >= 400 if policy == "modest" else amount > 20
    )
    matched = [n for n, m in (("block_listed", blocked), ("second", second)) if m]
    if blocked:
        return "decline", matched
    if second:
        return ("review" if policy == "modest" else "decline"), matched
    return _card(entry.score), matched


@pytest.fixture
def served(tmp_path, store):
    url, keys, client = store
    deploy(tmp_path / "models", trained_booster())
    settings = Settings(
        api_keys=frozenset({ADMIN}),
        redis_url=url,
        key_prefix=keys.prefix,
        data_dir=tmp_path,
        model_poll_s=0.1,
    )
    layout = DataLayout(tmp_path)
    orders = small_orders().head(300).reset_index(drop=True)
    start = (pd.Timestamp.now(tz="UTC") - pd.Timedelta(days=2)).floor("D")
    orders["order_date"] = [start + pd.Timedelta(minutes=9 * i) for i in range(len(orders))]
    with TestClient(create_app(settings)) as http:
        http.headers["X-API-Key"] = ADMIN.rpartition(":")[2]
        for i in range(0, len(orders), 20):
            if i == 100:  # a customer block-listed mid-traffic: later orders hit the list
                r = http.post(
                    "/v1/lists",
                    json={"list": "block", "kind": "customer_id", "reason": "chargeback ring",
                          "value": str(orders.loc[150:, "customer_id"].mode()[0])},
                )  # fmt: skip
                assert r.status_code == 201, r.text
            body = {"orders": [payload(row) for _, row in orders.iloc[i : i + 20].iterrows()]}
            assert http.post("/v1/score/batch", json=body).status_code == 200
    logged = [decode_decision(f[b"d"]) for _, f in client.xrange(keys.decisions)]
    assert len(logged) == len(orders)
    # the orders' own rows carry their chargebacks (as when the orders also land as files)
    for day, rows in orders.groupby(orders["order_date"].dt.date):
        write_parquet(
            pa.Table.from_pandas(
                rows[["order_id", "order_date", "is_fraud", "label_date"]], preserve_index=False
            ),
            layout.raw_orders(day),
        )
    resources = {
        "layout": DataLayoutResource(data_dir=str(tmp_path)),
        "redis": RedisResource(url=url),
    }
    drained = materialize(
        [decision_log],
        resources=resources,
        run_config={"ops": {"decision_log": {"config": {"key_prefix": keys.prefix}}}},
    )
    assert drained.success
    for day in sorted(orders["order_date"].dt.date.unique()):
        assert materialize([scored_orders], resources=resources, partition_key=str(day)).success
    fraud = dict(zip(orders["order_id"], orders["is_fraud"] == 1, strict=True))
    return layout, resources, logged, fraud


def _replay(resources, min_orders: int = 100):
    # the team accepts up to 5 points more reviews (a small sample of mostly new customers)
    guardrails = {"days": 7, "min_orders": min_orders, "max_review_rate_increase": 0.05}
    config = {"ops": {"policy_replay": {"config": guardrails}}}
    return materialize(
        [policy_replay, active_policy], resources=resources, run_config=config,
        raise_on_error=False,
    )  # fmt: skip


def test_a_replay_matches_a_recomputation_and_activates_a_modest_policy(served):
    layout, resources, logged, fraud = served
    registry = PolicyRegistry(layout)
    fields = PolicyFields.of(builtin_contract())
    modest = load_policy(MODEST, fields)
    registry.save(modest, "cli:test", "review big first orders")
    result = _replay(resources)
    [check] = result.get_asset_check_evaluations()
    assert check.check_name == POLICY_WITHIN_GUARDRAILS and check.passed, check.description
    report = json.loads((layout.policy_replays / "latest.json").read_text())
    assert report["sources"] == {"decision_log": len(logged)}

    for name, figures in (("default", report["active"]), ("modest", report["candidate"])):
        by_hand = [(e, *_by_hand(e, name)) for e in logged]
        decisions = [d for _, d, _ in by_hand]
        assert figures["decisions"] == {
            k: decisions.count(k) for k in ("approve", "review", "decline")
        }, name
        bad = [e for e, d, _ in by_hand if d == "decline" and fraud[e.order_id]]
        good = [e for e, d, _ in by_hand if d == "decline" and not fraud[e.order_id]]
        assert figures["fraud_declined"] == len(bad) and figures["good_declined"] == len(good)
        caught = sum(
            e.cents for e, d, _ in by_hand if d in ("review", "decline") and fraud[e.order_id]
        )
        assert figures["fraud_amount_caught"] == pytest.approx(caught / 100)
        block = figures["rules"].get("block_listed")
        if block is not None:
            assert block["matched"] == sum("block_listed" in m for _, _, m in by_hand)
            assert block["matched"] > 0, "the test must exercise a list hit"
    second = [m for _, _, m in ((e, *_by_hand(e, "modest")) for e in logged) if "second" in m]
    assert report["candidate"]["rules"]["big_new_customer"]["matched"] == len(second) > 0

    made = {e.asset_key.path[0] for e in result.get_asset_materialization_events()}
    assert made == {"policy_replay", "active_policy"}
    assert registry.pointer(ACTIVE).version == modest.version
    actions = [r["action"] for r in audit.read(layout.audit, newest_first=False)]
    assert actions == ["list.add", "policy.submit", "policy.activate"]


def test_a_policy_declining_too_many_good_orders_is_refused(served):
    layout, resources, _, _ = served
    registry = PolicyRegistry(layout)
    greedy = load_policy(GREEDY, PolicyFields.of(builtin_contract()))
    registry.save(greedy, "cli:test", "decline everything")
    result = _replay(resources)
    [check] = result.get_asset_check_evaluations()
    assert check.check_name == POLICY_WITHIN_GUARDRAILS and not check.passed
    assert "good orders declined" in check.description and "decline rate" in check.description
    made = {e.asset_key.path[0] for e in result.get_asset_materialization_events()}
    assert made == {"policy_replay"}  # active_policy blocked by the failed check
    assert registry.pointer(ACTIVE) is None
    refused = audit.read(layout.audit, action="policy.refuse")
    assert len(refused) == 1 and refused[0]["after"] == greedy.version
    assert "good orders declined" in refused[0]["reason"]
    # too few orders to judge is a refusal too, never a silent pass
    again = _replay(resources, min_orders=10_000)
    [check] = again.get_asset_check_evaluations()
    assert not check.passed and "no evidence" in check.description
