"""Online path: one order's features from its entities' stored states, and the state updates.

The scoring service calls `order_features` with the customer's, e-mail's and IP's states (None
for an entity never seen: cold start), then `append_order` for each, and `apply_label` when a
chargeback arrives. Features come from the very kernel the offline path runs, over the entity's
history plus the new order, so both paths agree by construction.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from fraud_core.features.kernel import NO_LABEL, entity_kernel, order_kernel
from fraud_core.features.spec import DEFAULT_SPEC, FeatureSpec
from fraud_core.features.state import EntityState


@dataclass(frozen=True)
class OrderEvent:
    """What the feature paths need of an order."""

    order_id: str
    t_s: int  # epoch seconds (UTC, floored)
    cents: int
    ids: dict[
        str, str
    ]  # entity kind -> value, e.g. {"customer_id": "C1", "email": ..., "ip_addr": ...}
    label_s: int = NO_LABEL


def _codes(values: list[str]) -> np.ndarray:
    seen: dict[str, int] = {}
    return np.fromiter(
        (seen.setdefault(v, len(seen)) for v in values), dtype=np.int64, count=len(values)
    )


def kind_features(
    state: EntityState | None, order: OrderEvent, kind: str, spec: FeatureSpec = DEFAULT_SPEC
) -> dict[str, float]:
    """Features of one entity kind for `order`, as of just before it."""
    state = state or EntityState()
    n = len(state) + 1
    counterparts = {
        c: _codes([*state.counterparts.get(c, []), order.ids[c]])
        for c in spec.entity(kind).counterparts
    }
    feats = entity_kernel(
        spec,
        kind,
        np.zeros(n, dtype=np.int64),
        np.array([*state.t_s, order.t_s], dtype=np.int64),
        np.array([*state.cents, order.cents], dtype=np.int64),
        counterparts,
        np.array([*state.label_s, NO_LABEL], dtype=np.int64),
    )
    return {name: float(col[-1]) for name, col in feats.items()}


def order_features(
    states: dict[str, EntityState | None], order: OrderEvent, spec: FeatureSpec = DEFAULT_SPEC
) -> dict[str, float]:
    """Every feature of the spec for `order`, in spec order."""
    own = order_kernel(np.array([order.t_s]), np.array([order.cents]))
    values = {name: float(col[0]) for name, col in own.items()}
    for e in spec.entities:
        values.update(kind_features(states.get(e.kind), order, e.kind, spec))
    return {name: values[name] for name in spec.feature_names}


def append_order(
    state: EntityState | None, order: OrderEvent, kind: str, spec: FeatureSpec = DEFAULT_SPEC
) -> EntityState:
    """The entity's state after `order`, trimmed to what later orders can still look at."""
    state = state or EntityState()
    cps = spec.entity(kind).counterparts
    t_s = [*state.t_s, order.t_s]
    n = len(t_s)
    oldest_kept = order.t_s - spec.horizon_s
    keep = [i for i in range(n) if i >= n - spec.history_n or t_s[i] > oldest_kept]

    def kept(values: list) -> list:
        return [values[i] for i in keep]

    return EntityState(
        t_s=kept(t_s),
        cents=kept([*state.cents, order.cents]),
        counterparts={c: kept([*state.counterparts.get(c, []), order.ids[c]]) for c in cps},
        order_ids=kept([*state.order_ids, order.order_id]),
        label_s=kept([*state.label_s, order.label_s]),
    )


def apply_label(state: EntityState, order_id: str, label_s: int) -> bool:
    """Record that `order_id` was found fraudulent at `label_s`. False if the order is not in the
    state (too old to matter for any feature)."""
    try:
        i = state.order_ids.index(order_id)
    except ValueError:
        return False
    state.label_s[i] = label_s
    return True
