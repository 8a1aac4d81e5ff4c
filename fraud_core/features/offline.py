"""Offline path: features for a table of orders, carried over from an end-of-day entity state.

`advance_kind` is the incremental step of the `entity_features` asset. Given the state that an
entity kind had before some orders (its retained events) and those orders, it returns each order's
features and the state after them. Running it day by day gives exactly what one run over the whole
history gives, because the state keeps every event any later order can still look at (see
`FeatureSpec.horizon_s`): the last `history_n` events of each entity and everything younger than
the horizon.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from fraud_core.features.kernel import NO_LABEL, entity_kernel, order_kernel
from fraud_core.features.spec import DEFAULT_SPEC, FeatureSpec

_US_PER_S = 1_000_000


def state_columns(spec: FeatureSpec, kind: str) -> list[str]:
    """Columns of a kind's state table: one row per retained event."""
    return ["entity", "t_s", "cents", *spec.entity(kind).counterparts, "order_id", "label_s"]


def _epoch_seconds(ts: pd.Series) -> np.ndarray:
    us = ts.astype("datetime64[us, UTC]").to_numpy(dtype="datetime64[us]").astype(np.int64)
    return np.floor_divide(us, _US_PER_S)


def order_times(orders: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """(t_s, cents) of orders in the schema: whole seconds and whole cents."""
    t_s = _epoch_seconds(orders["order_date"])
    cents = np.rint(orders["order_amount"].to_numpy(dtype=np.float64) * 100).astype(np.int64)
    return t_s, cents


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
        out[mask] = _epoch_seconds(orders["label_date"][mask])
    return out


def events_from_orders(
    orders: pd.DataFrame, kind: str, spec: FeatureSpec = DEFAULT_SPEC
) -> pd.DataFrame:
    """Orders (in the schema) as state events of one entity kind."""
    t_s, cents = order_times(orders)
    data = {"entity": orders[kind].to_numpy(dtype=object), "t_s": t_s, "cents": cents}
    for c in spec.entity(kind).counterparts:
        data[c] = orders[c].to_numpy(dtype=object)
    data["order_id"] = orders["order_id"].to_numpy(dtype=object)
    data["label_s"] = label_seconds(orders)
    return pd.DataFrame(data)


def empty_state(spec: FeatureSpec, kind: str) -> pd.DataFrame:
    cols = state_columns(spec, kind)
    return pd.DataFrame(
        {
            c: pd.Series([], dtype=np.int64 if c in ("t_s", "cents", "label_s") else object)
            for c in cols
        }
    )


def _codes(values: np.ndarray) -> np.ndarray:
    return pd.factorize(values, use_na_sentinel=False)[0].astype(np.int64, copy=False)


def advance_kind(
    state: pd.DataFrame | None,
    orders: pd.DataFrame,
    kind: str,
    end_s: int,
    spec: FeatureSpec = DEFAULT_SPEC,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Features of `kind` for `orders` and the state after them.

    `state` holds events that came before every order in `orders`; `orders` are in accepted order
    (order_date, then order_id). `end_s` is the time the new state is taken at (end of the day):
    events older than `end_s - horizon` are dropped unless they are among an entity's last
    `history_n`. Returns (features with one row per order, in the input order, and an `order_id`
    column; new state).
    """
    new = events_from_orders(orders, kind, spec)
    state = empty_state(spec, kind) if state is None else state[state_columns(spec, kind)]
    events = pd.concat([state, new], ignore_index=True) if len(state) else new
    n_old = len(state)

    group = _codes(events["entity"].to_numpy())
    order = np.argsort(group, kind="stable")  # keeps accepted order inside each entity
    sorted_group = group[order]
    counterparts = {c: _codes(events[c].to_numpy())[order] for c in spec.entity(kind).counterparts}
    feats = entity_kernel(
        spec,
        kind,
        sorted_group,
        events["t_s"].to_numpy()[order],
        events["cents"].to_numpy()[order],
        counterparts,
        events["label_s"].to_numpy()[order],
    )

    # back to input order, new orders only
    inverse = np.empty_like(order)
    inverse[order] = np.arange(len(order))
    rows = inverse[n_old:]
    features = pd.DataFrame({name: col[rows] for name, col in feats.items()})
    features.insert(0, "order_id", new["order_id"].to_numpy())

    # retention: the last history_n events of each entity, and all events inside the horizon
    n = len(order)
    is_last = np.ones(n, dtype=bool)
    is_last[:-1] = sorted_group[1:] != sorted_group[:-1]
    group_end = np.minimum.accumulate(np.where(is_last, np.arange(n), n)[::-1])[::-1]
    from_end = group_end - np.arange(n)
    t_sorted = events["t_s"].to_numpy()[order]
    keep_sorted = (from_end < spec.history_n) | (t_sorted > end_s - spec.horizon_s)
    new_state = events.iloc[np.sort(order[keep_sorted])].reset_index(drop=True)
    return features, new_state


def advance(
    states: dict[str, pd.DataFrame | None],
    orders: pd.DataFrame,
    end_s: int,
    spec: FeatureSpec = DEFAULT_SPEC,
) -> tuple[pd.DataFrame, dict[str, pd.DataFrame]]:
    """All features (spec order, plus `order_id` first) for `orders`, and every kind's new state."""
    t_s, cents = order_times(orders)
    cols: dict[str, np.ndarray] = {"order_id": orders["order_id"].to_numpy(dtype=object)}
    cols.update(order_kernel(t_s, cents))
    new_states: dict[str, pd.DataFrame] = {}
    for e in spec.entities:
        feats, new_states[e.kind] = advance_kind(states.get(e.kind), orders, e.kind, end_s, spec)
        for name in feats.columns[1:]:
            cols[name] = feats[name].to_numpy()
    frame = pd.DataFrame(cols)
    return frame[["order_id", *spec.feature_names]], new_states


def canonical_order(orders: pd.DataFrame) -> pd.DataFrame:
    """Orders in accepted order: by order_date, then order_id (the order features assume)."""
    return orders.sort_values(["order_date", "order_id"], kind="stable").reset_index(drop=True)
