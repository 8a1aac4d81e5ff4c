"""The policy step's cost per order, as the scoring service pays it: building the order's facts
(its features, entity keys, amount, score, hour, list hits) and `Policy.decide` with a policy of
50 rules and two segments (bench/policy_rules.py), on generated orders' real offline features.

    .venv/bin/python bench/policy.py [--rules 50] [--orders 5000]

Prints `RESULT policy_decide_us=` (decide alone) and `RESULT policy_step_us=` (facts + decide).
Goal (issue 17): at most 50 µs an order with 50 rules. The service-level figure (p99 and
saturation with and without the policy, same run) is bench/serving.py --policy-rules 50.
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from policy_rules import policy_text


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rules", type=int, default=50)
    parser.add_argument("--orders", type=int, default=5_000)
    args = parser.parse_args()

    from fraud_core.contract import builtin_contract
    from fraud_core.features.offline import advance, canonical_order
    from fraud_core.generator import GeneratorConfig, generate_orders
    from fraud_core.policy import OrderFacts, PolicyFields, load_policy
    from fraud_core.policy.lists import ListIndex, new_entry

    contract = builtin_contract()
    fields = PolicyFields.of(contract)
    names = contract.spec.feature_names
    policy = load_policy(policy_text(fields, args.rules), fields)
    config = GeneratorConfig(n_customers=3_000, orders_per_day=args.orders // 20, days=20, seed=1)
    orders = canonical_order(generate_orders(config)).head(args.orders).reset_index(drop=True)
    end_s = int(orders["order_date"].max().timestamp()) + 1
    features, _ = advance({}, orders, end_s)
    rows = features[names].to_numpy(dtype=np.float64)
    kinds = contract.entity_kinds
    blocked = orders["customer_id"].drop_duplicates().head(20)
    lists = ListIndex(
        [new_entry("block", "customer_id", c, "bench", "bench") for c in blocked], version=1
    )
    keys = [
        {k: str(v) for k, v in zip(kinds, r, strict=True)}
        for r in orders[list(kinds)].itertuples(index=False)
    ]
    amounts = orders["order_amount"].to_numpy(dtype=float)
    hours = orders["order_date"].dt.hour.to_numpy(dtype=float)
    scores = np.random.default_rng(0).beta(0.5, 20, len(orders))
    card = {"review": 0.3, "decline": 0.7}
    n = len(orders)

    # as ScoringService._decide builds them: only the names the policy reads
    columns = [(name, j) for j, name in enumerate(names) if name in policy.reads]
    read_kinds = [k for k in kinds if k in policy.reads]

    def facts(i: int) -> OrderFacts:
        row = rows[i]
        values: dict[str, float | str] = {name: float(row[j]) for name, j in columns}
        for kind in read_kinds:
            values[kind] = keys[i][kind]
        values["amount"], values["score"], values["hour"] = amounts[i], float(scores[i]), hours[i]
        return OrderFacts(values, lists.hits(keys[i], 0.0), frozenset())

    built = [facts(i) for i in range(n)]
    decide = policy.decide
    for f in built:  # warm
        decide(f, card)
    best_decide = best_step = math.inf
    for _ in range(5):
        t0 = time.perf_counter()
        for f in built:
            decide(f, card)
        best_decide = min(best_decide, (time.perf_counter() - t0) / n)
        t0 = time.perf_counter()
        for i in range(n):
            decide(facts(i), card)
        best_step = min(best_step, (time.perf_counter() - t0) / n)
    outcomes = [decide(f, card) for f in built]
    matched = sum(len(o.rules) for o in outcomes) / n
    by_rule = sum(o.decided_by != "score" for o in outcomes) / n
    print(f"{n:,} orders, {len(policy.rules)} rules reading {len(policy.reads)} names: {matched:.1f} rules match an order on average, "
          f"{by_rule:.1%} decided by a rule")  # fmt: skip
    print(f"RESULT policy_decide_us={best_decide * 1e6:.1f} µs per order (best of 5)")
    print(f"RESULT policy_step_us={best_step * 1e6:.1f} µs per order (facts + decide, best of 5)")


if __name__ == "__main__":
    main()
