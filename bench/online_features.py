"""Online feature cost: `order_features` for one order and `batch_features` for 50, on entity
states built from 250 earlier orders of 5 customers, 7 e-mails and 3 IPs (36 to 84 stored
events per entity), the kernel loaded first.

    .venv/bin/python bench/online_features.py

Prints `RESULT` lines; figures in bench/RESULTS.md (Feature engine).
"""

from __future__ import annotations

import time

import numpy as np

from fraud_core.features.kernel import warm_up
from fraud_core.features.online import OrderEvent, append_order, batch_features, order_features
from fraud_core.features.spec import DEFAULT_SPEC


def _per_call_s(fn, calls: int) -> float:
    for _ in range(max(calls // 20, 5)):
        fn()
    start = time.perf_counter()
    for _ in range(calls):
        fn()
    return (time.perf_counter() - start) / calls


def main() -> None:
    warm_up()
    rng = np.random.default_rng(0)
    t0 = 1_700_000_000
    orders = [
        OrderEvent(
            f"o{i}",
            t0 + i * 600,
            int(rng.integers(100, 50_000)),
            {"customer_id": f"c{i % 5}", "email": f"e{i % 7}", "ip_addr": f"ip{i % 3}"},
        )
        for i in range(300)
    ]
    states: dict[str, dict] = {e.kind: {} for e in DEFAULT_SPEC.entities}
    for o in orders[:250]:
        for kind, by_entity in states.items():
            by_entity[o.ids[kind]] = append_order(by_entity.get(o.ids[kind]), o, kind)
    new = orders[250:]
    own = {kind: by_entity.get(new[0].ids[kind]) for kind, by_entity in states.items()}

    one = _per_call_s(lambda: order_features(own, new[0]), 2_000)
    print(f"RESULT order_features_us={one * 1e6:.0f} us (one order)")
    batch = _per_call_s(lambda: batch_features(states, new), 200)
    print(f"RESULT batch_features_us={batch / len(new) * 1e6:.1f} us/order (batch of {len(new)})")


if __name__ == "__main__":
    main()
