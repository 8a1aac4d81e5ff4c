"""The feature kernel against an earlier commit's, in one process: both compiled, fed the same
sorted table (1.2M rows, 60,000 entities, the built-in spec's three kinds), called alternately,
their outputs checked equal first. On a VM whose speed drifts by 10-15 % between processes, an
alternation inside one process is what resolves a few per cent.

    .venv/bin/python bench/kernel_ab.py --against 327dbcf [--rounds 20]

The earlier kernel file is taken with `git show` and imported under another name; it must take
the arguments `entity_block` takes today for the built-in spec (every commit since the contract
does). Prints min, lower quartile and median seconds of each, then new / old.
"""

from __future__ import annotations

import argparse
import importlib.util
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from fraud_core.features.kernel import NO_LABEL, entity_block
from fraud_core.features.spec import DEFAULT_SPEC

KINDS = [e.kind for e in DEFAULT_SPEC.entities]


def _earlier_kernel(revision: str):
    source = subprocess.run(
        ["git", "show", f"{revision}:fraud_core/features/kernel.py"],
        check=True,
        capture_output=True,
        text=True,
        cwd=Path(__file__).parent,
    ).stdout
    folder = Path(tempfile.mkdtemp(prefix="kernel_ab_"))
    path = folder / "earlier_kernel.py"
    path.write_text(source)
    spec = importlib.util.spec_from_file_location("earlier_kernel", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules["earlier_kernel"] = module
    spec.loader.exec_module(module)
    return module.entity_block


def _table(n: int = 1_200_000, entities: int = 60_000):
    rng = np.random.default_rng(0)
    group = np.sort(rng.integers(0, entities, n))
    t_s = np.sort(rng.integers(0, 360 * 86_400, n))
    t_s = t_s[np.lexsort((t_s, group))]
    cents = rng.integers(100, 100_000, n)
    labels = np.where(rng.random(n) < 0.01, t_s + 10 * 86_400, NO_LABEL)
    codes = {kind: rng.integers(0, 3, n) for kind in KINDS}
    return group, t_s, cents, codes, labels


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--against", required=True, help="a git revision")
    parser.add_argument("--rounds", type=int, default=20)
    args = parser.parse_args()
    kernels = {"earlier": _earlier_kernel(args.against), "now": entity_block}
    group, t_s, cents, codes, labels = _table()
    # compile (or load) both, and check that they compute the same
    outputs = {
        name: [kernel(DEFAULT_SPEC, k, group, t_s, cents, codes, labels) for k in KINDS]
        for name, kernel in kernels.items()
    }
    for a, b in zip(outputs["earlier"], outputs.pop("now"), strict=True):
        assert np.array_equal(a, b, equal_nan=True), "the kernels disagree"
    del outputs
    times: dict[str, list[float]] = {name: [] for name in kernels}
    for r in range(args.rounds):
        order = list(kernels.items()) if r % 2 else list(reversed(kernels.items()))
        for name, kernel in order:
            started = time.perf_counter()
            for k in KINDS:
                kernel(DEFAULT_SPEC, k, group, t_s, cents, codes, labels)
            times[name].append(time.perf_counter() - started)
    stats = {}
    for name, values in times.items():
        v = sorted(values)
        stats[name] = (v[0], v[len(v) // 4], v[len(v) // 2])
        print(
            f"{name}: min {v[0]:.3f} s, q25 {v[len(v) // 4]:.3f} s, median {v[len(v) // 2]:.3f} s"
        )
    ratios = [f"{b / a:.3f}" for a, b in zip(stats["earlier"], stats["now"], strict=True)]
    print(f"now / earlier (min, q25, median): {', '.join(ratios)}")


if __name__ == "__main__":
    main()
