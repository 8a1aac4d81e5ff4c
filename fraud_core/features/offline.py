"""Offline path: features for a table of orders, carried over from an end-of-day entity state.

`advance_kind` is the incremental step of the `entity_features` asset. Given the state that an
entity kind had before some orders (its retained events) and those orders, it returns each order's
features and the state after them. Running it day by day gives exactly what one run over the whole
history gives, because the state keeps every event any later order can still look at (see
`FeatureSpec.horizon_s`): the last `history_n` events of each entity and everything younger than
the horizon.

It also owns the units the kernel counts in, for a table of orders (`order_times`, this path) and
for one order (`epoch_seconds`, `amount_cents`, the online path's): side by side, on the same
constants and the same rounding, so the two paths cannot drift apart.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd

from fraud_core.features.kernel import NO_LABEL, entity_block, order_kernel
from fraud_core.features.spec import (
    CENTS_PER_UNIT,
    DEFAULT_SPEC,
    NO_VALUE,
    FeatureSpec,
    NumericSpec,
)

# An order's time is whole seconds since the epoch (UTC, floored: 12:00:00.9 is 12:00:00) and its
# amount whole cents, `amount * 100` rounded half to even on that very double.
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_SECOND = timedelta(seconds=1)
_US_PER_S = _SECOND // timedelta(microseconds=1)


def state_columns(spec: FeatureSpec, kind: str) -> list[str]:
    """Columns of a kind's state table: one row per retained event."""
    return [
        "entity",
        "t_s",
        "cents",
        *spec.entity(kind).counterparts,
        *number_columns(spec),
        "order_id",
        "label_s",
    ]


def number_columns(spec: FeatureSpec) -> list[str]:
    """The numeric attributes a state keeps per event (in whole units, see `order_numbers`)."""
    return [v.name for v in spec.numeric]


def series_epoch_seconds(ts: pd.Series) -> np.ndarray:
    us = ts.astype("datetime64[us, UTC]").to_numpy(dtype="datetime64[us]").astype(np.int64)
    return np.floor_divide(us, _US_PER_S)


def _rounded_cents(amount: np.ndarray | float) -> np.ndarray:
    """`amount * 100` rounded half to even (0.125 is 12 cents): the one rounding of both paths."""
    return np.rint(amount * CENTS_PER_UNIT)


def order_times(orders: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """(t_s, cents) of orders in the schema: whole seconds and whole cents."""
    t_s = series_epoch_seconds(orders["order_date"])
    cents = _rounded_cents(orders["order_amount"].to_numpy(dtype=np.float64)).astype(np.int64)
    return t_s, cents


def epoch_seconds(moment: datetime) -> int:
    """One moment (time zone aware) in whole seconds since the epoch, floored as `order_times`
    floors a column."""
    return (moment - _EPOCH) // _SECOND


def amount_cents(amount: float) -> int:
    """One amount in whole cents, rounded as `order_times` rounds a column."""
    return int(_rounded_cents(amount))


def order_numbers(orders: pd.DataFrame, spec: FeatureSpec) -> dict[str, np.ndarray]:
    """The spec's numeric attributes of orders in whole units: `value * scale` rounded half to
    even, as amounts become cents."""
    return {
        v.name: np.rint(orders[v.name].to_numpy(dtype=np.float64) * v.scale).astype(np.int64)
        for v in spec.numeric
    }


def number_units(value: float, v: NumericSpec) -> int:
    """One numeric attribute value in whole units, rounded as `order_numbers` rounds a column."""
    return int(np.rint(np.float64(value) * v.scale))


def label_seconds(orders: pd.DataFrame) -> np.ndarray:
    """When each order's fraud label became known, or NO_LABEL (not fraud, or no label yet)."""
    n = len(orders)
    if "is_fraud" not in orders or "label_date" not in orders:
        return np.full(n, NO_LABEL, dtype=np.int64)
    fraud = orders["is_fraud"].fillna(0).to_numpy(dtype=np.int64) == 1
    known = orders["label_date"].notna().to_numpy()
    out = np.full(n, NO_LABEL, dtype=np.int64)
    mask = fraud & known
    if mask.any():
        out[mask] = series_epoch_seconds(orders["label_date"][mask])
    return out


def events_from_orders(
    orders: pd.DataFrame, kind: str, spec: FeatureSpec = DEFAULT_SPEC
) -> pd.DataFrame:
    """Orders (in the schema) as state events of one entity kind."""
    t_s, cents = order_times(orders)
    data: dict[str, object] = {
        "entity": orders[kind].reset_index(drop=True),
        "t_s": t_s,
        "cents": cents,
    }
    for c in spec.entity(kind).counterparts:  # an attribute's missing value counts as NO_VALUE
        data[c] = orders[c].reset_index(drop=True).fillna(NO_VALUE)
    data.update(order_numbers(orders, spec))
    data["order_id"] = orders["order_id"].reset_index(drop=True)
    data["label_s"] = label_seconds(orders)
    return pd.DataFrame(data)


def empty_state(spec: FeatureSpec, kind: str) -> pd.DataFrame:
    cols = state_columns(spec, kind)
    ints = {"t_s", "cents", "label_s", *number_columns(spec)}
    return pd.DataFrame({c: pd.Series([], dtype=np.int64 if c in ints else "str") for c in cols})


def _codes(values: pd.Series) -> np.ndarray:
    return pd.factorize(values, use_na_sentinel=False)[0].astype(np.int64, copy=False)


def _advance_sorted(
    state: pd.DataFrame | None, orders: pd.DataFrame, kind: str, end_s: int, spec: FeatureSpec
) -> tuple[np.ndarray, np.ndarray, pd.DataFrame]:
    """The kernel over state + orders in kernel (entity) order. Returns (for each order, its row
    in the kernel's order; the kernel's (features x rows) block; the new state)."""
    new = events_from_orders(orders, kind, spec)
    n_old = 0 if state is None else len(state)
    events = pd.concat([state[state_columns(spec, kind)], new], ignore_index=True) if n_old else new

    group = _codes(events["entity"])
    order = np.argsort(group, kind="stable")  # keeps accepted order inside each entity
    sorted_group = group[order]
    t_sorted = events["t_s"].to_numpy()[order]
    counterparts = {c: _codes(events[c])[order] for c in spec.entity(kind).counterparts}
    block = entity_block(
        spec,
        kind,
        sorted_group,
        t_sorted,
        events["cents"].to_numpy()[order],
        counterparts,
        events["label_s"].to_numpy()[order],
        {c: events[c].to_numpy()[order] for c in number_columns(spec)},
    )

    # retention: the last history_n events of each entity, and all events inside the horizon
    n = len(order)
    is_last = np.ones(n, dtype=bool)
    is_last[:-1] = sorted_group[1:] != sorted_group[:-1]
    group_end = np.minimum.accumulate(np.where(is_last, np.arange(n), n)[::-1])[::-1]
    from_end = group_end - np.arange(n)
    keep_sorted = (from_end < spec.history_n) | (t_sorted > end_s - spec.horizon_s)
    new_state = events.take(np.sort(order[keep_sorted])).reset_index(drop=True)
    inverse = np.empty_like(order)
    inverse[order] = np.arange(n)
    return inverse[n_old:], block, new_state


def advance_kind(
    state: pd.DataFrame | None,
    orders: pd.DataFrame,
    kind: str,
    end_s: int,
    spec: FeatureSpec = DEFAULT_SPEC,
) -> tuple[np.ndarray, pd.DataFrame]:
    """Features of `kind` for `orders` and the state after them.

    `state` holds events that came before every order in `orders`; `orders` are in accepted order
    (order_date, then order_id) inside each entity. `end_s` is the time the new state is taken at
    (end of the day): events older than `end_s - horizon` are dropped unless they are among an
    entity's last `history_n`. Returns (a (features x orders) block, rows in
    `spec.entity_features(kind)` order and orders in input order; the new state).
    """
    rows, block, new_state = _advance_sorted(state, orders, kind, end_s, spec)
    return np.take(block, rows, axis=1), new_state


def advance(
    states: dict[str, pd.DataFrame | None],
    orders: pd.DataFrame,
    end_s: int,
    spec: FeatureSpec = DEFAULT_SPEC,
) -> tuple[pd.DataFrame, dict[str, pd.DataFrame]]:
    """All features (`order_id` first, then spec order) for `orders`, and every kind's new state."""
    names = spec.feature_names
    index = {name: i for i, name in enumerate(names)}
    # one (features x orders) block: a DataFrame over its transpose costs no copy
    block = np.empty((len(names), len(orders)), dtype=np.float64)
    t_s, cents = order_times(orders)
    for name, col in order_kernel(t_s, cents, spec, order_numbers(orders, spec)).items():
        block[index[name]] = col
    new_states: dict[str, pd.DataFrame] = {}
    for e in spec.entities:
        first = index[spec.entity_features(e.kind)[0].name]
        kind_block, new_states[e.kind] = advance_kind(
            states.get(e.kind), orders, e.kind, end_s, spec
        )
        block[first : first + len(kind_block)] = kind_block
    frame = pd.DataFrame(block.T, columns=names, copy=False)
    frame.insert(0, "order_id", orders["order_id"].reset_index(drop=True))
    return frame, new_states


def canonical_order(orders: pd.DataFrame) -> pd.DataFrame:
    """Orders in accepted order: by order_date, then order_id (the order features assume)."""
    return orders.sort_values(["order_date", "order_id"], kind="stable").reset_index(drop=True)
