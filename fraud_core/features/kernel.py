"""The feature kernel: every entity feature of the spec for every row of a table of events sorted
by (entity, canonical order), compiled with numba: one linear pass over the rows per feature
family, each keeping its few pointers and counters in registers.

The same function serves both paths. Offline it runs over a whole range of days (tens of
thousands of entities at once, one Dask task per bucket); online the service runs it over one
entity's stored history plus the new order and keeps the last row. So the two paths cannot drift
apart: parity is structural, and the tests check it end to end anyway.

How each pass stays linear:
- times never decrease inside an entity, so every window start (velocity, distinct, risk) is a
  pointer that only moves forward;
- each row links to the previous and next row of its entity with the same counterpart value, so
  "how many rows of my window repeat a value seen earlier in it" is a running count updated in
  O(1) as the window's two ends move;
- a fraud label counts for a contiguous run of later rows (those whose risk window holds the
  order and whose time is after the label), found by binary search on time, so labels become
  +1/-1 updates at the run's ends, summed once per entity.

Compiled with `cache=True` (the machine code is kept next to this file, or in NUMBA_CACHE_DIR) and
`nogil=True` (Dask threads run kernels in parallel). The first call in a process loads or compiles
it; `warm_up()` does that at a moment of the caller's choosing (the scoring service's startup).
"""

from __future__ import annotations

import numba
import numpy as np

from fraud_core.features.spec import CENTS_PER_UNIT, DAY_S, DEFAULT_SPEC, FeatureSpec

NO_LABEL = np.iinfo(np.int64).max
"""`label_s` of an order with no known fraud label."""
_CENTS = float(CENTS_PER_UNIT)  # a constant in the compiled code


def _jit(fn):
    """Compile in nopython mode, releasing the GIL, with numpy's float semantics (x / 0 is inf or
    nan, never an exception: every division here is guarded anyway), cached on disk."""
    try:
        return numba.njit(cache=True, nogil=True, error_model="numpy")(fn)
    except RuntimeError:  # no writable cache location: still works, compiling once per process
        return numba.njit(nogil=True, error_model="numpy")(fn)


@_jit
def _bisect_left(a, x, lo, hi):
    """First index k in [lo, hi) with a[k] >= x (a non-decreasing there), else hi."""
    while lo < hi:
        mid = (lo + hi) >> 1
        if a[mid] < x:
            lo = mid + 1
        else:
            hi = mid
    return lo


@_jit
def _bisect_right(a, x, lo, hi):
    """First index k in [lo, hi) with a[k] > x (a non-decreasing there), else hi."""
    while lo < hi:
        mid = (lo + hi) >> 1
        if a[mid] <= x:
            lo = mid + 1
        else:
            hi = mid
    return lo


@_jit
def _group_starts(group, t_s):
    """Each row's entity start, or None when times decrease inside an entity."""
    n = t_s.shape[0]
    gs = np.empty(n, np.int64)
    g = 0
    for i in range(n):
        if i > 0:
            if group[i] != group[i - 1]:
                g = i
            elif t_s[i] < t_s[i - 1]:
                return None
        gs[i] = g
    return gs


@_jit
def _links(gs, codes, prev, nxt):
    """The previous and the next row of the same entity with the same code (or -1). Returns
    False when a code is negative."""
    n = codes.shape[0]
    m = 0
    for i in range(n):
        if codes[i] < 0:
            return False
        m = max(m, codes[i] + 1)
    last = np.full(m, -1, np.int64)
    for i in range(n):
        c = codes[i]
        p = last[c]
        if p >= gs[i]:
            prev[i] = p
            nxt[p] = i
        else:
            prev[i] = -1
        nxt[i] = -1  # until a later row links to it
        last[c] = i
    return True


@_jit
def _previous_pass(gs, t_s, first_seen, seconds_since_prev):
    for i in range(t_s.shape[0]):
        if gs[i] == i:
            first_seen[i] = 1.0
            seconds_since_prev[i] = np.nan
        else:
            first_seen[i] = 0.0
            seconds_since_prev[i] = float(t_s[i] - t_s[i - 1])


@_jit
def _window_pass(gs, t_s, csum, scale, window, count_out, sum_out, mean_out):
    """Orders, amount and mean amount of the rows of (t_i - window, t_i] before row i (amounts,
    or any numeric value, in whole units of 1 / scale)."""
    s = 0
    for i in range(t_s.shape[0]):
        if gs[i] == i:
            s = i
        lim = t_s[i] - window
        while s < i and t_s[s] <= lim:
            s += 1
        count = i - s
        total = (csum[i] - csum[s]) / scale
        count_out[i] = count
        sum_out[i] = total
        mean_out[i] = total / count if count > 0 else np.nan


@_jit
def _distinct_pass(gs, t_s, prev, nxt, window, last_n, out):
    """Distinct values among the rows of row i's window before it: the time window
    (t_i - window, t_i] when window > 0, else the last `last_n` rows. The window's rows minus
    its repeats, a repeat being a row whose previous same value is inside the window too; both
    ends only move forward, so the repeat count is kept up to date in O(1) per step."""
    ws = 0  # window start
    s = 0  # where the repeat count has been moved to
    repeats = 0
    for i in range(t_s.shape[0]):
        g = gs[i]
        if g == i:
            ws = i
            s = i
            repeats = 0
        elif prev[i - 1] >= s:  # row i-1 enters the window
            repeats += 1
        if window > 0:
            lim = t_s[i] - window
            while ws < i and t_s[ws] <= lim:
                ws += 1
        else:
            ws = max(g, i - last_n)
        while s < ws:  # row s leaves: its next same value, if inside, stops repeating
            q = nxt[s]
            if q >= 0 and q < i:
                repeats -= 1
            s += 1
        out[i] = i - s - repeats


@_jit
def _last_n_pass(
    gs, amount, csum, scale, last_n, sum_out, mean_out, std_out, min_out, max_out, rel_out
):
    """Amount (or numeric value) statistics of the last `last_n` rows, most recent first (the
    summation order is part of the definition)."""
    for i in range(amount.shape[0]):
        ls = max(gs[i], i - last_n)
        count = i - ls
        total = (csum[i] - csum[ls]) / scale
        sum_out[i] = total
        if count == 0:
            mean_out[i] = np.nan
            std_out[i] = np.nan
            min_out[i] = np.nan
            max_out[i] = np.nan
            rel_out[i] = np.nan
            continue
        mean = total / count
        lo = np.inf
        hi = -np.inf
        sq = 0.0
        for j in range(i - 1, ls - 1, -1):
            v = amount[j]
            lo = min(lo, v)
            hi = max(hi, v)
            dv = v - mean
            sq += dv * dv
        mean_out[i] = mean
        std_out[i] = np.sqrt(sq / count)
        min_out[i] = lo
        max_out[i] = hi
        rel_out[i] = amount[i] / mean if mean > 0 else np.nan


@_jit
def _match_pass(gs, codes, prev, last_n, same_out, seen_out):
    """Whether the value equals the previous row's, and whether it is among the last N rows'."""
    for i in range(codes.shape[0]):
        g = gs[i]
        same_out[i] = 1.0 if (i > g and codes[i] == codes[i - 1]) else 0.0
        seen_out[i] = 1.0 if prev[i] >= max(g, i - last_n) else 0.0


@_jit
def _share_pass(gs, prev, last_n, out):
    """Share of the last `last_n` rows before row i with row i's value (NaN without any): the
    same-value links walked back at most `last_n` steps."""
    for i in range(prev.shape[0]):
        lo = max(gs[i], i - last_n)
        if i == lo:
            out[i] = np.nan
            continue
        same = 0
        p = prev[i]
        while p >= lo:
            same += 1
            p = prev[p]
        out[i] = same / (i - lo)


@_jit
def _new_pass(gs, t_s, prev, window, out):
    """1 when no row of (t_i - window, t_i] before row i has row i's value: its previous same
    value, if any, is older than the window's start."""
    ws = 0
    for i in range(t_s.shape[0]):
        if gs[i] == i:
            ws = i
        lim = t_s[i] - window
        while ws < i and t_s[ws] <= lim:
            ws += 1
        out[i] = 0.0 if prev[i] >= ws else 1.0


@_jit
def _risk_pass(gs, t_s, label_s, no_label, delay, window, count_out, share_out):
    """Orders in (t_i - delay - window, t_i - delay] and the share of them labelled fraud by a
    label known before row i (label_j < t_i)."""
    n = t_s.shape[0]
    end = 0
    begin = 0
    any_fraud = False
    for i in range(n):
        if gs[i] == i:
            end = i
            begin = i
        lim = t_s[i] - delay
        while end < i and t_s[end] <= lim:
            end += 1
        lim -= window
        while begin < end and t_s[begin] <= lim:
            begin += 1
        count_out[i] = end - begin
        share_out[i] = 0.0
        if label_s[i] != no_label:
            any_fraud = True
    if not any_fraud:
        return
    # A fraud at row j is inside row i's window when i > j and t_j + delay <= t_i < t_j + delay
    # + window, and counts once its label is known: t_i > label_j. Times do not decrease, so
    # that is one run of rows [first, stop) of j's entity: +1/-1 at its ends (small integers,
    # exact in float64), summed up below.
    for j in range(n):
        label = label_s[j]
        if label == no_label:
            continue
        g0 = gs[j]
        g1 = _bisect_right(gs, g0, j, n)
        first = max(
            j + 1,
            _bisect_left(t_s, t_s[j] + delay, g0, g1),
            _bisect_right(t_s, label, g0, g1),
        )
        stop = _bisect_left(t_s, t_s[j] + delay + window, g0, g1)
        if first < stop:
            share_out[first] += 1.0
            if stop < g1:
                share_out[stop] -= 1.0
    frauds = 0.0
    for i in range(n):
        if gs[i] == i:
            frauds = 0.0
        frauds += share_out[i]
        count = count_out[i]
        share_out[i] = frauds / count if count > 0 else 0.0


@_jit
def _entity_pass(
    group,
    t_s,
    cents,
    numbers,
    number_scales,
    codes,
    categorical_idx,
    label_s,
    windows,
    distinct_idx,
    history_n,
    risk_delay,
    risk_windows,
    no_label,
    out,
):
    """Fill `out` (one row per feature, in `FeatureSpec.entity_features` order). `numbers` holds
    each numeric attribute in its whole units (`number_scales`: units per 1) as `cents` holds
    the amounts; `categorical_idx` says which rows of `codes` are categorical attributes. Returns
    an error message, or an empty string."""
    n = t_s.shape[0]
    nw = windows.shape[0]
    nd = distinct_idx.shape[0]
    ncp = codes.shape[0]
    ncat = categorical_idx.shape[0]
    nnum = numbers.shape[0]
    # compiled code does not check bounds: the block must have exactly the spec's rows
    rows = 2 + 3 * nw + ncp * nd + 6 + 3 * ncp + 2 * risk_windows.shape[0]
    rows += ncat * (1 + nd) + nnum * (2 * nw + 6)
    if out.shape[0] != rows:
        return "feature rows do not match the spec"
    if cents.shape[0] != n or numbers.shape[1] != n or codes.shape[1] != n or out.shape[1] != n:
        return "feature block and rows differ in length"
    if number_scales.shape[0] != nnum:
        return "one scale per numeric attribute"
    for k in range(ncat):
        if categorical_idx[k] < 0 or categorical_idx[k] >= ncp:
            return "categorical rows must be counterpart rows"
    gs = _group_starts(group, t_s)
    if gs is None:
        return "t_s must not decrease inside an entity (sort rows by entity, then time)"
    csum = np.zeros(n + 1, np.int64)
    amount = np.empty(n, np.float64)
    for i in range(n):
        csum[i + 1] = csum[i] + cents[i]
        amount[i] = cents[i] / _CENTS

    _previous_pass(gs, t_s, out[0], out[1])
    row = 2
    for a in range(nw):
        _window_pass(gs, t_s, csum, _CENTS, windows[a], out[row], out[row + 1], out[row + 2])
        row += 3
    prev = np.empty((ncp, n), np.int64)
    nxt = np.empty((ncp, n), np.int64)
    for k in range(ncp):
        if not _links(gs, codes[k], prev[k], nxt[k]):
            return "counterpart codes must be non-negative integers"
        for d in range(nd):
            _distinct_pass(gs, t_s, prev[k], nxt[k], windows[distinct_idx[d]], 0, out[row])
            row += 1
    _last_n_pass(
        gs, amount, csum, _CENTS, history_n, out[row], out[row + 1], out[row + 2],
        out[row + 3], out[row + 4], out[row + 5],
    )  # fmt: skip
    row += 6
    for k in range(ncp):
        _distinct_pass(gs, t_s, prev[k], nxt[k], 0, history_n, out[row])
        _match_pass(gs, codes[k], prev[k], history_n, out[row + 1], out[row + 2])
        row += 3
    for a in range(risk_windows.shape[0]):
        _risk_pass(gs, t_s, label_s, no_label, risk_delay, risk_windows[a], out[row], out[row + 1])
        row += 2
    if ncat:
        row = _categorical_passes(
            gs, t_s, prev, categorical_idx, windows, distinct_idx, history_n, out, row
        )
    if nnum:
        _numeric_passes(gs, t_s, numbers, number_scales, windows, history_n, csum, amount, out, row)
    return ""


@_jit
def _categorical_passes(gs, t_s, prev, categorical_idx, windows, distinct_idx, history_n, out, row):
    """A categorical attribute's own features, from its same-value links; the next free row."""
    for k in range(categorical_idx.shape[0]):
        c = categorical_idx[k]
        _share_pass(gs, prev[c], history_n, out[row])
        row += 1
        for d in range(distinct_idx.shape[0]):
            _new_pass(gs, t_s, prev[c], windows[distinct_idx[d]], out[row])
            row += 1
    return row


@_jit
def _numeric_passes(gs, t_s, numbers, scales, windows, history_n, csum, value, out, row):
    """A numeric attribute's aggregates, as the amount's over its own units (`csum` and `value`:
    scratch of the amount's sizes)."""
    n = t_s.shape[0]
    scratch = np.empty(n, np.float64)
    for v in range(numbers.shape[0]):
        scale = scales[v]
        for i in range(n):
            csum[i + 1] = csum[i] + numbers[v, i]
            value[i] = numbers[v, i] / scale
        for a in range(windows.shape[0]):
            _window_pass(gs, t_s, csum, scale, windows[a], scratch, out[row], out[row + 1])
            row += 2
        _last_n_pass(
            gs, value, csum, scale, history_n, out[row], out[row + 1], out[row + 2],
            out[row + 3], out[row + 4], out[row + 5],
        )  # fmt: skip
        row += 6
    return row


def _int64(values: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(values, dtype=np.int64)


def entity_block(
    spec: FeatureSpec,
    kind: str,
    group: np.ndarray,
    t_s: np.ndarray,
    cents: np.ndarray,
    counterparts: dict[str, np.ndarray],
    label_s: np.ndarray,
    numbers: dict[str, np.ndarray] | None = None,
) -> np.ndarray:
    """Features of entity kind `kind` for every row, as one (features x rows) float64 block whose
    rows follow `spec.entity_features(kind)`.

    Rows must be sorted by `group` (equal entities adjacent) and, inside a group, in the order
    the orders were accepted (time, then order id). `counterparts` maps each counterpart column
    of the kind to non-negative integer codes (equal codes = equal values; dense codes keep the
    kernel's lookup table small). `label_s` is the time a fraud label became known, or NO_LABEL.
    `numbers` maps each of the spec's numeric attributes to its values in whole units
    (`NumericSpec.scale` per 1).
    """
    e = spec.entity(kind)
    n = len(t_s)
    out = np.empty((len(spec.entity_features(kind)), n), dtype=np.float64)
    if n:
        window_names = list(spec.windows)
        codes = np.empty((len(e.counterparts), n), dtype=np.int64)
        for k, c in enumerate(e.counterparts):
            codes[k] = counterparts[c]
        values = np.empty((len(spec.numeric), n), dtype=np.int64)
        for k, v in enumerate(spec.numeric):
            values[k] = (numbers or {})[v.name]
        categorical = spec.categorical_of(kind)
        error = _entity_pass(
            _int64(group),
            _int64(t_s),
            _int64(cents),
            values,
            np.array([v.scale for v in spec.numeric], dtype=np.float64),
            codes,
            np.array([e.counterparts.index(c) for c in categorical], dtype=np.int64),
            _int64(label_s),
            np.array(list(spec.windows.values()), dtype=np.int64),
            np.array([window_names.index(w) for w in spec.distinct_windows], dtype=np.int64),
            spec.history_n,
            spec.risk_delay_s,
            np.array(list(spec.risk_windows.values()), dtype=np.int64),
            NO_LABEL,
            out,
        )
        if error:
            raise ValueError(error)
    return out


def entity_kernel(
    spec: FeatureSpec,
    kind: str,
    group: np.ndarray,
    t_s: np.ndarray,
    cents: np.ndarray,
    counterparts: dict[str, np.ndarray],
    label_s: np.ndarray,
    numbers: dict[str, np.ndarray] | None = None,
) -> dict[str, np.ndarray]:
    """`entity_block` as one column per feature name, in spec order (views of the block)."""
    block = entity_block(spec, kind, group, t_s, cents, counterparts, label_s, numbers)
    names = [f.name for f in spec.entity_features(kind)]
    return dict(zip(names, block, strict=True))


def order_kernel(
    t_s: np.ndarray,
    cents: np.ndarray,
    spec: FeatureSpec = DEFAULT_SPEC,
    numbers: dict[str, np.ndarray] | None = None,
) -> dict[str, np.ndarray]:
    """The order's own features (`numbers` as in `entity_block`)."""
    t_s = np.asarray(t_s, dtype=np.int64)
    out = {
        "order_amount": np.asarray(cents, dtype=np.int64) / _CENTS,
        "order_hour_utc": ((t_s % DAY_S) // 3_600).astype(np.float64),
    }
    for v in spec.numeric:
        out[f"order_{v.name}"] = np.asarray((numbers or {})[v.name], dtype=np.int64) / float(
            v.scale
        )
    return out


def warm_up(spec: FeatureSpec = DEFAULT_SPEC) -> None:
    """Load (or compile, on a machine's first run) the compiled kernel now rather than on the
    first order: one call over a tiny table with a label, which takes every branch's types."""
    for e in spec.entities:
        entity_kernel(
            spec,
            e.kind,
            np.zeros(2, dtype=np.int64),
            np.array([0, spec.risk_delay_s + 1], dtype=np.int64),
            np.array([100, 200], dtype=np.int64),
            {c: np.array([0, 1], dtype=np.int64) for c in e.counterparts},
            np.array([1, NO_LABEL], dtype=np.int64),
            {v.name: np.array([1, 2], dtype=np.int64) for v in spec.numeric},
        )
