"""A slow, obviously-correct reference for the feature definitions (per-order Python loops),
used only to check the vectorised kernel."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from fraud_core.features.kernel import NO_LABEL
from fraud_core.features.offline import label_seconds, order_numbers, order_times
from fraud_core.features.spec import FeatureSpec


def reference_features(orders: pd.DataFrame, spec: FeatureSpec) -> pd.DataFrame:
    t_all, cents_all = order_times(orders)
    labels = label_seconds(orders)
    units = order_numbers(orders, spec)
    rows = []
    history: dict[tuple[str, str], list[int]] = {}
    for i in range(len(orders)):
        o = orders.iloc[i]
        t, cents = int(t_all[i]), int(cents_all[i])
        amount = cents / 100.0
        row = {
            "order_id": o["order_id"],
            "order_amount": amount,
            "order_hour_utc": float((t % 86400) // 3600),
        }
        for v in spec.numeric:
            row[f"order_{v.name}"] = int(units[v.name][i]) / v.scale
        for e in spec.entities:
            k = e.kind
            h = history.setdefault((k, o[k]), [])
            row[f"{k}__first_seen"] = float(not h)
            row[f"{k}__seconds_since_prev"] = float(t - t_all[h[-1]]) if h else math.nan
            for w, sec in spec.windows.items():
                win = [j for j in h if t_all[j] > t - sec]
                s = sum(int(cents_all[j]) for j in win) / 100.0
                row[f"{k}__order_count__{w}"] = float(len(win))
                row[f"{k}__amount_sum__{w}"] = s
                row[f"{k}__amount_mean__{w}"] = s / len(win) if win else math.nan
            for c in e.counterparts:
                for w in spec.distinct_windows:
                    sec = spec.windows[w]
                    row[f"{k}__distinct_{c}__{w}"] = float(
                        len({orders.iloc[j][c] for j in h if t_all[j] > t - sec})
                    )
            n = spec.history_n
            last = h[-n:]
            vals = [cents_all[j] / 100.0 for j in last]
            s = sum(int(cents_all[j]) for j in last) / 100.0
            mean = s / len(last) if last else math.nan
            row[f"{k}__amount_sum__last{n}"] = s
            row[f"{k}__amount_mean__last{n}"] = mean
            row[f"{k}__amount_std__last{n}"] = (
                math.sqrt(sum((v - mean) ** 2 for v in vals) / len(vals)) if vals else math.nan
            )
            row[f"{k}__amount_min__last{n}"] = min(vals) if vals else math.nan
            row[f"{k}__amount_max__last{n}"] = max(vals) if vals else math.nan
            row[f"{k}__amount_rel_mean__last{n}"] = amount / mean if last and mean > 0 else math.nan
            for c in e.counterparts:
                seen = [orders.iloc[j][c] for j in last]
                row[f"{k}__distinct_{c}__last{n}"] = float(len(set(seen)))
                row[f"{k}__same_{c}_as_last"] = float(bool(h) and orders.iloc[h[-1]][c] == o[c])
                row[f"{k}__{c}_seen_in_last{n}"] = float(o[c] in seen)
            for w, sec in spec.risk_windows.items():
                lo, hi = t - spec.risk_delay_s - sec, t - spec.risk_delay_s
                win = [j for j in h if lo < t_all[j] <= hi]
                frauds = [j for j in win if labels[j] != NO_LABEL and labels[j] < t]
                row[f"{k}__risk_order_count__{w}"] = float(len(win))
                row[f"{k}__risk_fraud_share__{w}"] = len(frauds) / len(win) if win else 0.0
            for c in spec.categorical_of(k):
                same = [j for j in last if orders.iloc[j][c] == o[c]]
                row[f"{k}__{c}_share__last{n}"] = len(same) / len(last) if last else math.nan
                for w in spec.distinct_windows:
                    sec = spec.windows[w]
                    recent = {orders.iloc[j][c] for j in h if t_all[j] > t - sec}
                    row[f"{k}__{c}_new__{w}"] = float(o[c] not in recent)
            for v in spec.numeric:
                x, col = v.name, units[v.name]
                for w, sec in spec.windows.items():
                    win = [j for j in h if t_all[j] > t - sec]
                    s = sum(int(col[j]) for j in win) / v.scale
                    row[f"{k}__{x}_sum__{w}"] = s
                    row[f"{k}__{x}_mean__{w}"] = s / len(win) if win else math.nan
                vals = [int(col[j]) / v.scale for j in last]
                s = sum(int(col[j]) for j in last) / v.scale
                mean = s / len(last) if last else math.nan
                row[f"{k}__{x}_sum__last{n}"] = s
                row[f"{k}__{x}_mean__last{n}"] = mean
                row[f"{k}__{x}_std__last{n}"] = (
                    math.sqrt(sum((u - mean) ** 2 for u in vals) / len(vals)) if vals else math.nan
                )
                row[f"{k}__{x}_min__last{n}"] = min(vals) if vals else math.nan
                row[f"{k}__{x}_max__last{n}"] = max(vals) if vals else math.nan
                own = int(col[i]) / v.scale
                row[f"{k}__{x}_rel_mean__last{n}"] = own / mean if last and mean > 0 else math.nan
            h.append(i)
        rows.append(row)
    return pd.DataFrame(rows)[["order_id", *spec.feature_names]]


def assert_frames_close(actual: pd.DataFrame, expected: pd.DataFrame, tol: float = 1e-9) -> None:
    assert list(actual.columns) == list(expected.columns)
    assert actual["order_id"].tolist() == expected["order_id"].tolist()
    for col in actual.columns[1:]:
        a = actual[col].to_numpy(dtype=np.float64)
        b = expected[col].to_numpy(dtype=np.float64)
        same_nan = np.isnan(a) == np.isnan(b)
        close = np.isclose(a, b, rtol=tol, atol=tol) | (np.isnan(a) & np.isnan(b))
        bad = np.flatnonzero(~(same_nan & close))
        assert not len(bad), f"{col}: rows {bad[:5].tolist()} differ: {a[bad[:5]]} vs {b[bad[:5]]}"
