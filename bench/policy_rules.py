"""A policy of N rules shaped like a fraud team's (bench/policy.py, bench/serving.py --policy-rules):
comparisons of features and amounts, list lookups, first orders, night hours, e-mail domains,
value lists; most rules only tag or decide rarely, as real ones do; two segments."""

from __future__ import annotations

from fraud_core.policy import PolicyFields


def policy_text(fields: PolicyFields, n_rules: int = 50) -> str:
    features = [name for name in fields.numbers if "__" in name]
    kind = fields.kinds[0]
    string = fields.strings[1] if len(fields.strings) > 1 else kind
    shapes = [
        lambda i: f"amount > {5_000 + 100 * i}",
        lambda i: f'is_new("{kind}") and amount > {1_500 + 10 * i}',
        lambda i: 'listed("block", "' + kind + '") or listed("watch")',
        lambda i: f"{features[i % len(features)]} >= {50 + i} and score > 0.{i % 9 + 1}",
        lambda i: f"hour in [1, 2, 3, 4] and amount >= {2_000 + i}",
        lambda i: f'ends_with({string}, "@disposable{i}.example")',
        lambda i: f"{features[(7 * i) % len(features)]} > 40 and not is_missing(score)",
        lambda i: f'not listed("allow") and score > 0.9{i % 10} and amount > {300 + i}',
        lambda i: f'{kind} not in ["c{i}", "c{i + 1}", "c{i + 2}"] and score > 0.99',
        lambda i: f"-amount < -{9_000 + i} or score * 100 > {99 + i % 2}",
    ]
    actions = ["review", None, "decline", None, None]
    lines = ["name: bench-rules", "rules:"]
    for i in range(n_rules):
        lines.append(f"  - name: rule_{i:02d}")
        lines.append(f"    when: '{shapes[i % len(shapes)](i)}'")
        if actions[i % len(actions)]:
            lines.append(f"    action: {actions[i % len(actions)]}")
        lines.append(f"    tags: [tag_{i % 7}]")
    lines += [
        "segments:",
        "  - name: high_value",
        "    when: amount >= 1000",
        "  - name: night",
        "    when: hour < 6",
    ]
    return "\n".join(lines) + "\n"
