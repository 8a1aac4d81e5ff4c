"""The fraud team's controls in `fraud demo`, on the running service: a block-list entry that
declines a customer's next order, a policy rule that sends a big first order to review (applied
at once by an audited override), and a candidate policy that declines too much, refused by
`policy_replay`'s guardrails in a run of `policy_job` (a failed run: the refusal)."""

from __future__ import annotations

import secrets
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import httpx

    from fraud_cli.demo.context import DemoContext

RULE_POLICY = """\
# written by fraud demo: the lists decide first, then a big first order goes to review
name: demo-first-orders
rules:
  - name: allow_listed
    when: listed("allow")
    action: approve
  - name: block_listed
    when: listed("block")
    action: decline
  - name: big_first_order
    when: is_new("{primary}") and amount >= 1000
    action: review
"""
GREEDY_POLICY = """\
# written by fraud demo: declines every order over 50, which the replay refuses
name: demo-decline-everything
rules:
  - name: over_fifty
    when: amount > 50
    action: decline
"""


def _score(client: httpx.Client, order: dict) -> dict:
    from fraud_cli.demo.context import StepFailed

    r = client.post("/v1/score", json=order)
    if r.status_code != 200:
        raise StepFailed(f"scoring {order['order_id']} failed: {r.status_code} {r.text}")
    return r.json()


def _said(answer: dict) -> str:
    return f"{answer['decision'].upper()} (by {answer['decided_by']})"


def show_team_controls(
    ctx: DemoContext, client: httpx.Client, new_order: dict, primary: str
) -> None:
    """`new_order`: the demo's order of a customer never seen (its `primary` request field)."""
    from fraud_assets.assets.policy import POLICY_WITHIN_GUARDRAILS
    from fraud_cli.demo.context import StepFailed

    run = secrets.token_hex(3)
    kind = ctx.contract.primary.name
    # 1. a list entry: the new customer's next order is declined, whatever its score
    value = new_order[primary]
    r = client.post(
        "/v1/lists",
        json={"list": "block", "kind": kind, "value": value, "reason": "demo: chargeback ring"},
    )
    if r.status_code != 201:
        raise StepFailed(f"adding to the block list failed: {r.status_code} {r.text}")
    again = _score(client, {**new_order, "order_id": f"demo-{run}-again"})
    print(f"    block list + {kind} {value}: their next order -> {_said(again)}")

    # 2. a rule: a big first order goes to review (activated now: an audited override)
    text = RULE_POLICY.format(primary=kind)
    fresh = {
        **new_order,
        primary: f"new-{run}",
        "order_id": f"demo-{run}-big",
        "order_amount": 1500.0,
    }
    before = _score(client, {**fresh, "order_id": f"demo-{run}-big0", primary: f"new0-{run}"})
    saved = client.post(
        "/v1/policy", json={"text": text, "reason": "demo: review big first orders"}
    )
    if saved.status_code != 201:
        raise StepFailed(f"submitting the policy failed: {saved.status_code} {saved.text}")
    version = saved.json()["version"]
    r = client.post("/v1/policy/active", json={"version": version, "reason": "demo"})
    if r.status_code != 200:
        raise StepFailed(f"activating the policy failed: {r.status_code} {r.text}")
    after = _score(client, fresh)
    print(
        f"    policy {version} (rule big_first_order): a first order of 1,500.00 "
        f"{_said(before)} -> {_said(after)}"
    )

    # 3. a candidate that declines too much, replayed through Dagster and refused
    r = client.post("/v1/policy", json={"text": GREEDY_POLICY, "reason": "demo: too greedy"})
    if r.status_code != 201:
        raise StepFailed(f"submitting the policy failed: {r.status_code} {r.text}")
    # the run policy_candidate_sensor launches in production (the daemon is stopped here)
    report = ctx.dagster.wait(ctx.dagster.launch("policy_job", {"fraud/source": "demo"}))
    check = report.check(POLICY_WITHIN_GUARDRAILS)
    if check is None:
        raise StepFailed("policy_replay did not judge the candidate (see `make dev`, Runs)")
    verdict = "REFUSED" if not check.passed else "passed (unexpected)"
    print(
        f"    policy {r.json()['version']} (decline over 50) replayed by policy_replay: "
        f"{verdict}: {check.description.removeprefix('refused: ')}"
    )
    print("    every change is in the audit trail: fraud audit")
