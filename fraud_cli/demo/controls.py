"""The fraud team's controls in `fraud demo`, on the running service: a block-list entry that
declines a customer's next order; a candidate policy that declines too much, refused by
`policy_replay`'s guardrails in a run of `policy_job` (a failed run: the refusal), launched
before the service starts so that its worker starts while the service does; and a policy rule
that sends a first order to review (applied at once by an audited override), and a few more
first orders left waiting in the review console's queue."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import httpx

    from fraud_cli.demo.context import DemoContext

RULE_POLICY = """\
# written by fraud demo: the lists decide first, then a first order of {amount:.0f} or more
# goes to review
name: demo-first-orders
rules:
  - name: allow_listed
    when: listed("allow")
    action: approve
  - name: block_listed
    when: listed("block")
    action: decline
  - name: big_first_order
    when: is_new("{kind}") and amount >= {amount:.0f}
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
# first-order amounts tried for the rule: the first one the model alone approves is used
RULE_AMOUNTS = (300.0, 200.0, 120.0, 60.0)


@dataclass(frozen=True)
class PendingReplay:
    version: str
    run_id: str


def start_policy_replay(ctx: DemoContext) -> PendingReplay:
    """Submit the greedy policy (as `fraud policy submit` does) and launch `policy_job`."""
    from fraud_core.contract import applied_contract
    from fraud_core.policy import PolicyFields, load_policy
    from fraud_core.policy.registry import PolicyRegistry

    policy = load_policy(GREEDY_POLICY, PolicyFields.of(applied_contract()))
    PolicyRegistry(ctx.layout).save(policy, "cli:fraud-demo", "demo: declines every order over 50")
    run_id = ctx.dagster.launch("policy_job", {"fraud/source": "demo"})
    return PendingReplay(policy.version, run_id)


def _score(client: httpx.Client, order: dict) -> dict:
    from fraud_cli.demo.context import StepFailed

    r = client.post("/v1/score", json=order)
    if r.status_code != 200:
        raise StepFailed(f"scoring {order['order_id']} failed: {r.status_code} {r.text}")
    return r.json()


def _first_order(order: dict, fields: list[str], tag: str) -> dict:
    """`order` as the first order of people never seen: every entity field a fresh value of the
    same shape (an e-mail stays an e-mail, an IPv4 address an address)."""
    fresh = dict(order, order_id=f"demo-{tag}-first")
    n = int(tag, 16) if all(c in "0123456789abcdef" for c in tag) else 7
    for field in fields:
        value = str(order[field])
        if "@" in value:
            fresh[field] = f"first-{tag}@example.com"
        elif value.count(".") == 3 and value.replace(".", "").isdigit():
            fresh[field] = f"198.51.{100 + n % 100}.{n % 250 + 1}"
        else:
            fresh[field] = f"{value}-first-{tag}"
    return fresh


def _said(answer: dict) -> str:
    return f"{answer['decision'].upper()} (by {answer['decided_by']})"


def show_team_controls(
    ctx: DemoContext, client: httpx.Client, new_order: dict, primary: str, pending: PendingReplay
) -> None:
    """`new_order`: the demo's order of a customer never seen (its `primary` request field)."""
    from fraud_assets.assets.policy import POLICY_WITHIN_GUARDRAILS
    from fraud_cli.demo.context import StepFailed
    from fraud_core.contract.request import request_fields

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

    # 2. the greedy candidate's replay, launched before the service started
    report = ctx.dagster.wait(pending.run_id)
    check = report.check(POLICY_WITHIN_GUARDRAILS)
    if check is None:
        raise StepFailed("policy_replay did not judge the candidate (see `make dev`, Runs)")
    verdict = "REFUSED" if not check.passed else "passed (unexpected)"
    print(
        f"    policy {pending.version} (decline over 50) replayed by policy_job: "
        f"{verdict}: {check.description.removeprefix('refused: ')}"
    )

    # 3. a rule: a first order the model approves goes to review (an audited override)
    fields = list(dict.fromkeys(request_fields(ctx.contract).values()))
    for i, amount in enumerate(RULE_AMOUNTS):
        fresh = {**_first_order(new_order, fields, f"{run}{i}"), "order_amount": amount}
        before = _score(client, fresh)
        if before["decision"] == "approve":
            break
    text = RULE_POLICY.format(kind=kind, amount=amount)
    saved = client.post("/v1/policy", json={"text": text, "reason": "demo: review first orders"})
    if saved.status_code != 201:
        raise StepFailed(f"submitting the policy failed: {saved.status_code} {saved.text}")
    version = saved.json()["version"]
    r = client.post("/v1/policy/active", json={"version": version, "reason": "demo"})
    if r.status_code != 200:
        raise StepFailed(f"activating the policy failed: {r.status_code} {r.text}")
    after = _score(client, {**_first_order(new_order, fields, run), "order_amount": amount})
    print(
        f"    policy {version} (rule big_first_order): a first order of {amount:,.2f} "
        f"{_said(before)} -> {_said(after)}; each change audited (fraud audit)"
    )
    # 4. a few more first orders wait in the review queue for an analyst (the console)
    for i in range(3):
        _score(client, {**_first_order(new_order, fields, f"{run}r{i}"), "order_amount": amount})


def show_review_console(client: httpx.Client) -> None:
    """The review queue's size, and how to open the console on it (an analyst key made up for
    the reader: the demo's service stops with the demo)."""
    from fraud_cli.demo.context import StepFailed

    r = client.get("/v1/reviews", params={"per_page": 0})
    if r.status_code != 200:
        raise StepFailed(f"reading the review queue failed: {r.status_code} {r.text}")
    key = secrets.token_urlsafe(18)
    print(
        f"    review console: {r.json()['pending']} orders waiting for review. Open it with "
        f"FRAUD_API_KEYS=analyst:you:{key} make serve\n"
        f"      then http://127.0.0.1:8000/console and sign in with the key {key}"
    )
