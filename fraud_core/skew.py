"""Online/offline skew on real traffic (issue 16): the features the service served (the decision
log's vectors, `scored_orders`) against the same orders' features computed offline from the
landing data (`entity_features`, point in time as of each order's own time).

Both paths run one kernel, so on a consistent setup every served feature equals its offline value
(to 1e-9). A served order is compared when it also arrived in a landing file; otherwise it counts
as `never_arrived` (no truth to compare with). A compared order with any feature apart is a
mismatch, attributed to the first cause the platform can tell:

- `time_differs`: the service used another order time than the landing row says (it arrived late
  and was clamped to its entity's latest order, or the shop sent another time);
- `store_stale`: the online store it was read from was loaded from a snapshot older than the day
  before the order, so it lacked at least a day of history the offline path had;
- `feature_missing_offline`: the served model has features the offline definition lacks (the
  feature definition changed since the model was trained);
- `unexplained`: none of these; a feature computed differently online and offline.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import date, timedelta

import numpy as np
import pandas as pd

from fraud_core.online_keys import namespace_snapshot_day

TOLERANCE = 1e-9
CAUSES = ("time_differs", "store_stale", "feature_missing_offline", "unexplained")


@dataclass
class SkewReport:
    served: int
    compared: int
    never_arrived: int
    mismatched: int
    share: float | None  # mismatched / compared
    features: dict[str, dict[str, float | None]] = field(default_factory=dict)  # apart only
    causes: dict[str, int] = field(default_factory=dict)
    examples: list[dict[str, object]] = field(default_factory=list)

    def to_dict(self) -> dict:
        return asdict(self)

    def worst(self, n: int = 5) -> list[str]:
        """The features that mismatch most often."""
        ranked = sorted(self.features.items(), key=lambda kv: (-kv[1]["mismatch_rate"], kv[0]))
        return [name for name, _ in ranked[:n]]


def compare(
    served: pd.DataFrame,
    offline: pd.DataFrame | None,
    feature_names_of: Callable[[str], list[str]],
    day: date,
) -> SkewReport:
    """`served`: one served day's `scored_orders` (order_id, t_s, namespace, model_version,
    features); `offline`: that day's `entity_features` rows (order_id, order_date, features), or
    None when the day has none yet; `feature_names_of(version)`: a model's feature order."""
    n = len(served)
    if offline is None or not len(offline) or not n:
        return SkewReport(n, 0, n, 0, None)
    where = pd.Index(offline["order_id"].astype(str)).get_indexer(served["order_id"].astype(str))
    found = where >= 0
    offline_t = np.full(n, -1, dtype=np.int64)
    stamps = offline["order_date"].astype("datetime64[us, UTC]").to_numpy(dtype="datetime64[us]")
    offline_t[found] = stamps[where[found]].astype(np.int64) // 1_000_000
    time_differs = found & (offline_t != served["t_s"].to_numpy())
    stale_before = day - timedelta(days=1)
    stale = np.array(
        [
            (s := namespace_snapshot_day(ns)) is not None and s < stale_before
            for ns in served["namespace"]
        ]
    )
    mismatch = np.zeros(n, dtype=bool)
    missing_offline = np.zeros(n, dtype=bool)
    diffs: dict[str, list[tuple[int, float]]] = {}  # feature -> [(one-sided NaNs, max diff)]
    counts: dict[str, int] = {}
    vectors = served["features"].to_numpy()
    for version in served["model_version"].unique():
        rows = np.flatnonzero(found & (served["model_version"] == version).to_numpy())
        if not len(rows):
            continue
        names = feature_names_of(version)
        known = [i for i, name in enumerate(names) if name in offline.columns]
        absent = [name for name in names if name not in offline.columns]
        if absent:
            missing_offline[rows] = True
            for name in absent:
                counts[name] = counts.get(name, 0) + len(rows)
                diffs.setdefault(name, []).append((0, float("nan")))
        online = np.stack([np.asarray(vectors[r], dtype=np.float64) for r in rows])[:, known]
        columns = [names[i] for i in known]
        truth = offline[columns].to_numpy(dtype=np.float64)[where[rows]]
        both_nan = np.isnan(online) & np.isnan(truth)
        gap = np.where(both_nan, 0.0, np.abs(online - truth))
        # apart: beyond the tolerance, or a value on one side only (a NaN gap)
        bad = ~(gap <= TOLERANCE * np.fmax(1.0, np.abs(truth)))
        mismatch[rows] |= bad.any(axis=1)
        for j, name in enumerate(columns):
            k = int(bad[:, j].sum())
            if k:
                counts[name] = counts.get(name, 0) + k
                one_sided = int(np.isnan(gap[:, j]).sum())
                numeric = gap[:, j][bad[:, j] & ~np.isnan(gap[:, j])]
                worst = float(numeric.max()) if len(numeric) else float("nan")
                diffs.setdefault(name, []).append((one_sided, worst))
    mismatch |= missing_offline
    compared = int(found.sum())
    features = {
        name: {
            "mismatch_rate": counts[name] / compared,
            # the largest gap between two numbers (None: every mismatch had a value on one
            # side only, counted in `one_sided`)
            "max_abs_diff": max((d for _, d in parts if d == d), default=None),
            "one_sided": sum(n for n, _ in parts),
        }
        for name, parts in diffs.items()
    }
    cause = np.full(n, "", dtype=object)
    for label, flag in (
        ("time_differs", time_differs),
        ("store_stale", stale),
        ("feature_missing_offline", missing_offline),
    ):
        cause[mismatch & (cause == "") & flag] = label
    cause[mismatch & (cause == "")] = "unexplained"
    examples = [
        {"order_id": str(served["order_id"].iat[i]), "cause": str(cause[i])}
        for i in np.flatnonzero(mismatch)[:10]
    ]
    return SkewReport(
        served=n,
        compared=compared,
        never_arrived=n - compared,
        mismatched=int(mismatch.sum()),
        share=float(mismatch.sum()) / compared if compared else None,
        features=features,
        causes={c: int((cause == c).sum()) for c in CAUSES if (cause == c).any()},
        examples=examples,
    )
