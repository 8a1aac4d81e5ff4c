"""What more entities cost the kernel, in one process: the built-in spec (3 entities) and the
six-entity contract (`bench/contracts/six_entities.yaml`: the three plus an e-mail domain, an
IP /24 and a customer cohort) over the same 1.2M-row table, timed alternately, each kind sorted
by its own entity. Per entity and per feature row, six over three: 1.0 is proportional.

    .venv/bin/python bench/kernel_entities.py [--rounds 8]

Entity sizes follow the generator's mix at 1.2M orders a year (12,000 customers, 14,000
e-mails, 58,000 IPs) and the derived kinds' (a handful of domains, thousands of /24s, a dozen
cohorts); values are random, so the figure is the kernel's, not the data's.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from fraud_core.contract import load_contract
from fraud_core.features.kernel import NO_LABEL, entity_block
from fraud_core.features.spec import DEFAULT_SPEC

SIX = Path(__file__).parent / "contracts" / "six_entities.yaml"
SIZES = {
    "customer_id": 12_000,
    "email": 14_000,
    "ip_addr": 58_000,
    "email_domain": 8,
    "ip_net": 9_000,
    "customer_cohort": 12,
}


def _inputs(spec, n: int, rng: np.random.Generator) -> dict:
    """Per kind: its rows sorted by (entity, time), with codes of its counterparts."""
    t_s = np.sort(rng.integers(0, 365 * 86_400, n))
    values = {kind: rng.integers(0, size, n) for kind, size in SIZES.items()}
    cents = rng.integers(100, 100_000, n)
    labels = np.where(rng.random(n) < 0.01, t_s + 10 * 86_400, NO_LABEL)
    out = {}
    for e in spec.entities:
        order = np.lexsort((t_s, values[e.kind]))
        out[e.kind] = (
            values[e.kind][order],
            t_s[order],
            cents[order],
            {c: values[c][order] for c in e.counterparts},
            labels[order],
        )
    return out


def _run(spec, inputs) -> float:
    started = time.perf_counter()
    for e in spec.entities:
        entity_block(spec, e.kind, *inputs[e.kind])
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=8)
    parser.add_argument("--rows", type=int, default=1_200_000)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    specs = {"three": DEFAULT_SPEC, "six": load_contract(SIX).spec}
    inputs = {name: _inputs(spec, args.rows, rng) for name, spec in specs.items()}
    for name, spec in specs.items():  # compile or load
        _run(spec, inputs[name])
    times: dict[str, list[float]] = {name: [] for name in specs}
    for r in range(args.rounds):
        for name in specs if r % 2 else reversed(list(specs)):
            times[name].append(_run(specs[name], inputs[name]))
    best = {name: min(v) for name, v in times.items()}
    rows = {
        name: sum(len(s.entity_features(e.kind)) for e in s.entities) for name, s in specs.items()
    }
    for name, spec in specs.items():
        print(
            f"{name}: {len(spec.entities)} entities, {rows[name]} feature rows: "
            f"min {best[name]:.3f} s, median {sorted(times[name])[len(times[name]) // 2]:.3f} s"
        )
    per_entity = (best["six"] / 6) / (best["three"] / 3)
    per_row = (best["six"] / rows["six"]) / (best["three"] / rows["three"])
    print(
        f"six / three per entity {per_entity:.2f}, per feature row {per_row:.2f} (1.0: proportional)"
    )


if __name__ == "__main__":
    main()
