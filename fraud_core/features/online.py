"""Online path: one order's features from its entities' stored states, and the state updates.

The scoring service turns a request into an `OrderEvent` with `order_event` (in the units that
`offline` owns for both paths), calls `order_features` with the customer's, e-mail's and IP's
states (None for an entity never seen: cold start), then `append_order` for each, and
`apply_label` when a chargeback arrives. Features come from the very kernel the offline path runs,
over the entity's history plus the new order, so both paths agree by construction.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

import numpy as np

from fraud_core.features.kernel import NO_LABEL, entity_kernel, order_kernel
from fraud_core.features.offline import amount_cents, epoch_seconds, number_units
from fraud_core.features.spec import DEFAULT_SPEC, NO_VALUE, FeatureSpec
from fraud_core.features.state import EntityState


@dataclass(frozen=True)
class OrderEvent:
    """What the feature paths need of an order."""

    order_id: str
    t_s: int  # epoch seconds (UTC, floored)
    cents: int
    # entity kind (or categorical attribute) -> value: {"customer_id": "C1", "email": ...}
    ids: dict[str, str]
    label_s: int = NO_LABEL
    # numeric attribute -> whole units (`offline.number_units`), for the spec's numeric ones
    numbers: dict[str, int] = field(default_factory=dict)


class OrderFields(Protocol):
    """An order in the schema's fields (the service's request): its entity ids are attributes
    named after the spec's entity kinds."""

    order_id: str
    order_date: datetime
    order_amount: float


def order_event(
    order: OrderFields, t_s: int | None = None, spec: FeatureSpec = DEFAULT_SPEC
) -> OrderEvent:
    """The order as the feature paths see it: whole seconds (or `t_s`, the time it is accepted
    at) and whole cents, converted as the offline path converts a table (`order_times`); its
    entities and the attributes they follow (a missing one as NO_VALUE)."""
    names = dict.fromkeys(
        [e.kind for e in spec.entities] + [c for e in spec.entities for c in e.counterparts]
    )
    return OrderEvent(
        order_id=order.order_id,
        t_s=epoch_seconds(order.order_date) if t_s is None else t_s,
        cents=amount_cents(order.order_amount),
        ids={name: getattr(order, name, None) or NO_VALUE for name in names},
        numbers={v.name: number_units(getattr(order, v.name), v) for v in spec.numeric},
    )


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
        {
            v.name: np.array([*state.numbers.get(v.name, []), order.numbers[v.name]], np.int64)
            for v in spec.numeric
        },
    )
    return {name: float(col[-1]) for name, col in feats.items()}


def order_features(
    states: dict[str, EntityState | None], order: OrderEvent, spec: FeatureSpec = DEFAULT_SPEC
) -> dict[str, float]:
    """Every feature of the spec for `order`, in spec order."""
    own = order_kernel(
        np.array([order.t_s]),
        np.array([order.cents]),
        spec,
        {v.name: np.array([order.numbers[v.name]]) for v in spec.numeric},
    )
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
    # Events are in accepted order (times never decrease), so what is kept (the last
    # `history_n` events and every event younger than the horizon) is a suffix: slice it.
    start = min(max(n - spec.history_n, 0), bisect.bisect_right(t_s, order.t_s - spec.horizon_s))

    def kept(values: list) -> list:
        return values[start:]

    return EntityState(
        t_s=kept(t_s),
        cents=kept([*state.cents, order.cents]),
        counterparts={c: kept([*state.counterparts.get(c, []), order.ids[c]]) for c in cps},
        order_ids=kept([*state.order_ids, order.order_id]),
        label_s=kept([*state.label_s, order.label_s]),
        numbers={
            v.name: kept([*state.numbers.get(v.name, []), order.numbers[v.name]])
            for v in spec.numeric
        },
    )


def without_orders(state: EntityState, order_ids: set[str]) -> EntityState:
    """The state without the events of `order_ids`: what an order's features see when its own
    event is already there (a commit on a Redis Cluster that wrote some entities and failed
    before the answer was stored; the retry must neither see nor count it again)."""
    keep = [i for i, order_id in enumerate(state.order_ids) if order_id not in order_ids]

    def kept(values: list) -> list:
        return [values[i] for i in keep]

    return EntityState(
        t_s=kept(state.t_s),
        cents=kept(state.cents),
        counterparts={c: kept(v) for c, v in state.counterparts.items()},
        order_ids=kept(state.order_ids),
        label_s=kept(state.label_s),
        numbers={name: kept(v) for name, v in state.numbers.items()},
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


def batch_features(
    states: dict[str, dict[str, EntityState]],
    orders: list[OrderEvent],
    spec: FeatureSpec = DEFAULT_SPEC,
) -> np.ndarray:
    """Features of several orders in one kernel call per entity kind: a (len(orders), features)
    matrix in spec column order, equal to scoring the orders one after another (an order sees the
    batch's earlier orders of its entities, as if each had been appended before it).

    `states[kind]` maps entity values to their stored state (missing: never seen). The per-call
    cost of the kernel is mostly fixed, so a batch of 50 costs about what one order costs.
    """
    names = spec.feature_names
    col = {name: i for i, name in enumerate(names)}
    out = np.empty((len(orders), len(names)))
    own = order_kernel(
        np.array([o.t_s for o in orders]),
        np.array([o.cents for o in orders]),
        spec,
        {v.name: np.array([o.numbers[v.name] for o in orders]) for v in spec.numeric},
    )
    for name, values in own.items():
        out[:, col[name]] = values
    for e in spec.entities:
        kind_states = states.get(e.kind, {})
        by_entity: dict[str, list[int]] = {}
        for i, o in enumerate(orders):
            by_entity.setdefault(o.ids[e.kind], []).append(i)
        group: list[int] = []
        t_s: list[int] = []
        cents: list[int] = []
        labels: list[int] = []
        cps: dict[str, list[str]] = {c: [] for c in e.counterparts}
        nums: dict[str, list[int]] = {v.name: [] for v in spec.numeric}
        where = np.empty(len(orders), dtype=np.int64)
        for g, (entity, members) in enumerate(by_entity.items()):
            state = kind_states.get(entity) or EntityState()
            n_hist = len(state)
            group += [g] * (n_hist + len(members))
            t_s += state.t_s + [orders[i].t_s for i in members]
            cents += state.cents + [orders[i].cents for i in members]
            labels += state.label_s + [orders[i].label_s for i in members]
            for c in e.counterparts:
                cps[c] += state.counterparts.get(c, []) + [orders[i].ids[c] for i in members]
            for v in nums:
                nums[v] += state.numbers.get(v, []) + [orders[i].numbers[v] for i in members]
            start = len(t_s) - len(members)
            for k, i in enumerate(members):
                where[i] = start + k
        feats = entity_kernel(
            spec,
            e.kind,
            np.array(group, dtype=np.int64),
            np.array(t_s, dtype=np.int64),
            np.array(cents, dtype=np.int64),
            {c: _codes(v) for c, v in cps.items()},
            np.array(labels, dtype=np.int64),
            {v: np.array(values, dtype=np.int64) for v, values in nums.items()},
        )
        for name, values in feats.items():
            out[:, col[name]] = values[where]
    return out
