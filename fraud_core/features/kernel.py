"""The vectorised feature kernel: every entity feature of the spec for every row of a table of
events sorted by (entity, canonical order), with numpy only and no per-row Python.

The same function serves both paths. Offline it runs over a whole range of days (tens of
thousands of entities at once); online the service runs it over one entity's stored history plus
the new order and keeps the last row. So the two paths cannot drift apart: parity is structural,
and the tests check it end to end anyway.

How the windowed quantities stay vectorised:
- a composite key `group << 32 | (t - t0)` is sorted, so `searchsorted(key, key - W)` gives each
  row's window start inside its own entity;
- window starts never decrease along the table, so "how many earlier rows in my window repeat a
  value seen earlier in that window" and "how many fraud labels in my risk window were known
  before me" become interval updates on a difference array (one cumsum).
"""

from __future__ import annotations

import numpy as np

from fraud_core.features.spec import DAY_S, FeatureSpec

NO_LABEL = np.iinfo(np.int64).max
"""`label_s` of an order with no known fraud label."""

_KEY_SPAN = 1 << 32


def _searchsorted_right(key: np.ndarray, values: np.ndarray) -> np.ndarray:
    return np.searchsorted(key, values, side="right")


def _interval_count(n: int, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """How many of the intervals [lo_k, hi_k) cover each position 0..n-1."""
    keep = hi > lo
    diff = np.bincount(lo[keep], minlength=n + 1) - np.bincount(hi[keep], minlength=n + 1)
    return np.cumsum(diff[:n])


def previous_same(group: np.ndarray, codes: np.ndarray) -> np.ndarray:
    """Index of the previous row with the same (group, code), or -1. `group` is a dense ordinal
    below 2**31 and codes are below 2**32."""
    n = len(codes)
    order = np.argsort((group << 32) | codes, kind="stable")  # stable: row order inside a pair
    pair = ((group << 32) | codes)[order]
    prev_sorted = np.full(n, -1, dtype=np.int64)
    same = pair[1:] == pair[:-1]
    prev_sorted[1:][same] = order[:-1][same]
    prev = np.empty(n, dtype=np.int64)
    prev[order] = prev_sorted
    return prev


def distinct_in_window(pos: np.ndarray, start: np.ndarray, prev: np.ndarray) -> np.ndarray:
    """Distinct values among rows [start_i, i) for each row i, where `prev` links each row to the
    previous row with the same value in its group. `start` must be non-decreasing.

    Row j repeats a value inside row i's window exactly when j < i and prev_j >= start_i; those
    rows i form the interval (j, first i with start_i > prev_j).
    """
    n = len(pos)
    has_prev = prev >= 0
    j = pos[has_prev]
    end = np.searchsorted(start, prev[has_prev], side="right")
    repeats = _interval_count(n, j + 1, end)
    return (pos - start) - repeats


def entity_kernel(
    spec: FeatureSpec,
    kind: str,
    group: np.ndarray,
    t_s: np.ndarray,
    cents: np.ndarray,
    counterparts: dict[str, np.ndarray],
    label_s: np.ndarray,
) -> dict[str, np.ndarray]:
    """Features of entity kind `kind` for every row.

    Rows must be sorted by `group` (a non-decreasing entity ordinal) and, inside a group, in the
    order the orders were accepted (time, then order id). `counterparts` maps each counterpart
    column of the kind to integer codes (equal codes = equal values). `label_s` is the time a fraud
    label became known, or NO_LABEL.
    """
    e = spec.entity(kind)
    n = len(t_s)
    out: dict[str, np.ndarray] = {}
    if n == 0:
        return {f.name: np.empty(0) for f in spec.entity_features(kind)}
    group = np.asarray(group, dtype=np.int64)
    t_s = np.asarray(t_s, dtype=np.int64)
    cents = np.asarray(cents, dtype=np.int64)
    pos = np.arange(n, dtype=np.int64)

    new_group = np.ones(n, dtype=bool)
    new_group[1:] = group[1:] != group[:-1]
    gstart = np.maximum.accumulate(np.where(new_group, pos, 0))
    ordinal = np.cumsum(new_group) - 1
    t0 = int(t_s.min()) - spec.horizon_s - 1
    rel = t_s - t0
    if int(rel.max()) >= _KEY_SPAN or int(ordinal[-1]) >= (1 << 30):
        raise ValueError("time span or entity count too large for one kernel call")
    key = (ordinal << 32) | rel

    cum_cents = np.concatenate(([0], np.cumsum(cents)))
    amount = cents / 100.0
    has_prev = pos > gstart
    prev_idx = np.maximum(pos - 1, 0)

    out[f"{kind}__first_seen"] = (~has_prev).astype(np.float64)
    out[f"{kind}__seconds_since_prev"] = np.where(
        has_prev, (t_s - t_s[prev_idx]).astype(np.float64), np.nan
    )

    starts: dict[str, np.ndarray] = {}
    for w, seconds in spec.windows.items():
        start = _searchsorted_right(key, key - seconds)
        starts[w] = start
        count = pos - start
        total = (cum_cents[pos] - cum_cents[start]) / 100.0
        out[f"{kind}__order_count__{w}"] = count.astype(np.float64)
        out[f"{kind}__amount_sum__{w}"] = total
        with np.errstate(invalid="ignore", divide="ignore"):
            out[f"{kind}__amount_mean__{w}"] = np.where(count > 0, total / count, np.nan)

    prevs = {
        c: previous_same(ordinal, np.asarray(codes, dtype=np.int64))
        for c, codes in counterparts.items()
    }
    for c in e.counterparts:
        for w in spec.distinct_windows:
            out[f"{kind}__distinct_{c}__{w}"] = distinct_in_window(pos, starts[w], prevs[c]).astype(
                np.float64
            )

    # Last-N block: one pass per lag (most recent first) over plain 1-d arrays.
    hn = spec.history_n
    last_start = np.maximum(gstart, pos - hn)
    cnt = pos - last_start
    has_hist = cnt > 0
    total = (cum_cents[pos] - cum_cents[last_start]) / 100.0
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.where(has_hist, total / cnt, np.nan)
    lo = np.full(n, np.inf)
    hi = np.full(n, -np.inf)
    sq = np.zeros(n)
    for lag in range(1, min(hn, n) + 1):
        valid = cnt >= lag
        v = amount[np.maximum(pos - lag, 0)]
        np.minimum(lo, np.where(valid, v, np.inf), out=lo)
        np.maximum(hi, np.where(valid, v, -np.inf), out=hi)
        d = np.where(valid, v - mean, 0.0)
        sq += d * d
    with np.errstate(invalid="ignore", divide="ignore"):
        std = np.where(has_hist, np.sqrt(sq / cnt), np.nan)
        rel_mean = np.where(mean > 0, amount / mean, np.nan)
    out[f"{kind}__amount_sum__last{hn}"] = total
    out[f"{kind}__amount_mean__last{hn}"] = mean
    out[f"{kind}__amount_std__last{hn}"] = std
    out[f"{kind}__amount_min__last{hn}"] = np.where(has_hist, lo, np.nan)
    out[f"{kind}__amount_max__last{hn}"] = np.where(has_hist, hi, np.nan)
    out[f"{kind}__amount_rel_mean__last{hn}"] = rel_mean
    for c in e.counterparts:
        codes = np.asarray(counterparts[c], dtype=np.int64)
        out[f"{kind}__distinct_{c}__last{hn}"] = distinct_in_window(
            pos, last_start, prevs[c]
        ).astype(np.float64)
        out[f"{kind}__same_{c}_as_last"] = (has_prev & (codes == codes[prev_idx])).astype(
            np.float64
        )
        out[f"{kind}__{c}_seen_in_last{hn}"] = (prevs[c] >= last_start).astype(np.float64)

    # Delayed-label risk: orders in (t - delay - W, t - delay], and among them those whose fraud
    # label was known strictly before this order's time.
    label_s = np.asarray(label_s, dtype=np.int64)
    fraud = np.flatnonzero(label_s != NO_LABEL)
    if len(fraud):
        label_key = (ordinal[fraud] << 32) | np.minimum(label_s[fraud] - t0, _KEY_SPAN - 1)
        known_from = _searchsorted_right(key, label_key)  # first row of the group after the label
    delay = spec.risk_delay_s
    end = np.minimum(_searchsorted_right(key, key - delay), pos)
    for w, seconds in spec.risk_windows.items():
        begin = np.minimum(_searchsorted_right(key, key - delay - seconds), end)
        count = end - begin
        if len(fraud):
            # fraud row j counts for rows i with begin_i <= j < end_i and t_i > label_j
            lo = np.maximum(np.searchsorted(end, fraud, side="right"), known_from)
            hi = np.searchsorted(begin, fraud, side="right")
            frauds = _interval_count(n, lo, hi)
        else:
            frauds = np.zeros(n, dtype=np.int64)
        out[f"{kind}__risk_order_count__{w}"] = count.astype(np.float64)
        with np.errstate(invalid="ignore", divide="ignore"):
            out[f"{kind}__risk_fraud_share__{w}"] = np.where(
                count > 0, frauds / np.maximum(count, 1), 0.0
            )
    return out


def order_kernel(t_s: np.ndarray, cents: np.ndarray) -> dict[str, np.ndarray]:
    """The order's own features."""
    t_s = np.asarray(t_s, dtype=np.int64)
    return {
        "order_amount": np.asarray(cents, dtype=np.int64) / 100.0,
        "order_hour_utc": ((t_s % DAY_S) // 3_600).astype(np.float64),
    }
