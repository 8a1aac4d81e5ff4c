"""Population stability index (PSI): how far a day's distribution of a feature (or of the model's
score) has moved from a reference sample.

PSI = sum over bins of (current share - reference share) * ln(current share / reference share),
with bins at the reference's deciles (equal-frequency bins) plus one bin for empty values, so a
feature that suddenly comes empty more often drifts too. Shares are floored at `EPSILON` so an
empty bin does not give an infinite index. Rules of thumb: below 0.1 stable, 0.1-0.2 a moderate
shift, above 0.2 a shift worth a look (`DEFAULT_THRESHOLD`).

What a day is compared with (`plan_reference`): the deployed model's training days, else the
days before it. Either way only days past the features' warm-up count: during the first
`warmup_days` after the first day of data (the feature spec's horizon) some feature windows still
reach back before the data, so their counts grow day by day and would drift against anything.
A day inside the warm-up has no PSI; a trailing reference needs `min_days` days past it.
"""

from __future__ import annotations

import hashlib
import io
import json
import math
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from datetime import date, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from fraud_core.features.spec import DEFAULT_SPEC
from fraud_core.storage import DataLayout, atomic_path

DEFAULT_BINS = 10
DEFAULT_THRESHOLD = 0.2
DEFAULT_WARMUP_DAYS = DEFAULT_SPEC.warmup_days
TRAILING = "trailing"
TRAINING_WINDOW = "training_window"
EPSILON = 1e-4
SCORE = "model_score"


def quantile_edges(reference: np.ndarray, bins: int = DEFAULT_BINS) -> np.ndarray:
    """Inner bin edges at the reference's quantiles 1/bins .. (bins-1)/bins, duplicates removed
    (a discrete feature gets fewer bins). Empty (NaN) values are ignored here."""
    values = np.asarray(reference, dtype=np.float64)
    values = values[~np.isnan(values)]
    if not len(values):
        return np.empty(0)
    return np.unique(np.quantile(values, np.arange(1, bins) / bins))


def bin_shares(values: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """Share of `values` in each bin (-inf, e1], (e1, e2], ..., (ek, inf) and, last, empty."""
    values = np.asarray(values, dtype=np.float64)
    empty = np.isnan(values)
    counts = np.bincount(
        np.searchsorted(edges, values[~empty], side="left"), minlength=len(edges) + 1
    )
    counts = np.append(counts, empty.sum())
    return counts / max(len(values), 1)


def psi(
    reference: np.ndarray,
    current: np.ndarray,
    bins: int = DEFAULT_BINS,
    epsilon: float = EPSILON,
) -> float:
    """PSI of `current` against `reference`; NaN when either has no values at all."""
    reference = np.asarray(reference, dtype=np.float64)
    current = np.asarray(current, dtype=np.float64)
    if not len(reference) or not len(current):
        return float("nan")
    edges = quantile_edges(reference, bins)
    expected = np.maximum(bin_shares(reference, edges), epsilon)
    actual = np.maximum(bin_shares(current, edges), epsilon)
    return float(np.sum((actual - expected) * np.log(actual / expected)))


@dataclass(frozen=True)
class ReferenceBins:
    """A reference sample reduced to what PSI needs of it: per column its bin edges and its
    (floored) shares. Computed once per reference and reused for every day compared with it
    (a model's training window serves a whole backfill); `psi` of each day then only bins the
    day's values. Same figures as `psi` column by column."""

    edges: Mapping[str, np.ndarray]
    expected: Mapping[str, np.ndarray]  # None-free; a column without reference rows is absent

    @classmethod
    def of(
        cls,
        reference: pd.DataFrame,
        columns: list[str],
        bins: int = DEFAULT_BINS,
        epsilon: float = EPSILON,
    ) -> ReferenceBins:
        present = [c for c in columns if c in reference.columns] if len(reference) else []

        def one(column: str) -> tuple[str, np.ndarray, np.ndarray]:
            values = reference[column].to_numpy(np.float64)
            edges = quantile_edges(values, bins)
            return column, edges, np.maximum(bin_shares(values, edges), epsilon)

        # numpy's partition and searchsorted release the GIL: columns in parallel
        with ThreadPoolExecutor(max_workers=2) as pool:
            done = list(pool.map(one, present))
        return cls({c: e for c, e, _ in done}, {c: x for c, _, x in done})

    def psi(self, current: pd.DataFrame, epsilon: float = EPSILON) -> dict[str, float]:
        """PSI of each reference column present in `current`, in the reference's order."""
        out: dict[str, float] = {}
        for column, edges in self.edges.items():
            if column not in current.columns:
                continue
            if not len(current):
                out[column] = float("nan")
                continue
            expected = self.expected[column]
            actual = np.maximum(bin_shares(current[column].to_numpy(np.float64), edges), epsilon)
            out[column] = float(np.sum((actual - expected) * np.log(actual / expected)))
        return out

    def to_dict(self) -> dict[str, dict[str, list[float]]]:
        """Exact in JSON: Python writes floats in their shortest round trip (+-inf as
        Infinity)."""
        return {
            "edges": {c: e.tolist() for c, e in self.edges.items()},
            "expected": {c: x.tolist() for c, x in self.expected.items()},
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Mapping[str, list[float]]]) -> ReferenceBins:
        return cls(
            {c: np.asarray(e, dtype=np.float64) for c, e in data["edges"].items()},
            {c: np.asarray(x, dtype=np.float64) for c, x in data["expected"].items()},
        )


class SlidingBins:
    """`ReferenceBins` of a window of days that moves on a day at a time, as a trailing
    reference does over a backfill: per column the window's values are kept sorted, and moving
    the window takes the departed days' values out and merges the new days' in, instead of
    finding every day's quantiles over the whole window again. Same figures as
    `ReferenceBins.of` over the window's rows (quantiles depend on the values, not their order;
    shares are counted from the sorted values)."""

    def __init__(self, columns: list[str], bins: int = DEFAULT_BINS, epsilon: float = EPSILON):
        self.columns, self.bins, self.epsilon = columns, bins, epsilon
        self._days: list[date] = []
        self._sorted: dict[str, np.ndarray] = {}
        self._empty: dict[str, int] = {}
        self._rows = 0
        self._current: ReferenceBins | None = None

    def move(
        self, days: list[date], day_values: Callable[[date], Mapping[str, np.ndarray]]
    ) -> ReferenceBins:
        """The bins of `days`; `day_values(day)` gives a day's values per column (each day's
        the same whenever asked: it is taken out again with them)."""
        if days == self._days and self._current is not None:
            return self._current
        kept = set(days)
        gone = [d for d in self._days if d not in kept]
        new = [d for d in days if d not in set(self._days)]
        if len(gone) + len(new) >= len(days) or not self._days:  # anew: one sort per column
            every = [day_values(d) for d in days]
            self._sorted, self._empty = {}, {}
            for column in self.columns:
                values = np.concatenate([np.asarray(v[column], np.float64) for v in every] or [[]])
                empty = np.isnan(values)
                self._sorted[column] = np.sort(values[~empty])
                self._empty[column] = int(empty.sum())
            self._rows = sum(len(next(iter(v.values()), ())) for v in every)
            gone, new = [], []
        for day, sign in [(d, -1) for d in gone] + [(d, 1) for d in new]:
            values = day_values(day)
            change = _remove_sorted if sign < 0 else _merge_sorted
            for column in self.columns:
                column_values = np.asarray(values[column], dtype=np.float64)
                empty = np.isnan(column_values)
                self._sorted[column] = change(self._sorted[column], np.sort(column_values[~empty]))
                self._empty[column] += sign * int(empty.sum())
            self._rows += sign * len(next(iter(values.values()), ()))
        self._days = list(days)
        self._current = self._bins()
        return self._current

    @property
    def rows(self) -> int:
        """Rows in the window the last `move` went to."""
        return self._rows

    def _bins(self) -> ReferenceBins:
        if self._rows <= 0:
            return ReferenceBins({}, {})
        quantiles = np.arange(1, self.bins) / self.bins
        edges, expected = {}, {}
        for column in self.columns:
            values = self._sorted[column]
            found = np.unique(_sorted_quantiles(values, quantiles)) if len(values) else np.empty(0)
            below = np.searchsorted(values, found, side="right")  # values <= each edge
            counts = np.diff(np.concatenate([[0], below, [len(values)]]))
            counts = np.append(counts, self._empty[column])
            edges[column] = found
            expected[column] = np.maximum(counts / self._rows, self.epsilon)
        return ReferenceBins(edges, expected)


def _sorted_quantiles(values: np.ndarray, quantiles: np.ndarray) -> np.ndarray:
    """`np.quantile(values, quantiles)` (its default, linear method) of sorted `values` without
    NaN, read off by index instead of partitioning the values again: numpy's own arithmetic
    (virtual index (n - 1) q, and its lerp that computes from the upper value when the weight is
    0.5 or more), so the same floats (the tests compare them)."""
    n = len(values)
    virtual = (n - 1) * quantiles
    previous = np.floor(virtual)
    gamma = virtual - previous
    below = previous.astype(np.intp)
    above = np.minimum(below + 1, n - 1)
    past = virtual >= n - 1  # numpy takes the last value twice there
    below[past], above[past] = n - 1, n - 1
    lower, upper = values[below], values[above]
    with np.errstate(invalid="ignore"):  # inf - inf: NaN, as in numpy
        diff = upper - lower
        out = lower + diff * gamma
        np.subtract(upper, diff * (1 - gamma), out=out, where=gamma >= 0.5)
    return out


def _merge_sorted(window: np.ndarray, values: np.ndarray) -> np.ndarray:
    return np.insert(window, np.searchsorted(window, values), values)


def _remove_sorted(window: np.ndarray, values: np.ndarray) -> np.ndarray:
    """`window` without one occurrence of each of `values` (sorted, all of them in `window`)."""
    if not len(values):
        return window
    first = np.searchsorted(window, values, side="left")
    rank = np.arange(len(values)) - np.searchsorted(values, values, side="left")  # among equals
    return np.delete(window, first + rank)


def psi_by_column(
    reference: pd.DataFrame,
    current: pd.DataFrame,
    columns: list[str],
    bins: int = DEFAULT_BINS,
) -> dict[str, float]:
    """PSI of each column present in both frames, in the order of `columns`."""
    found = ReferenceBins.of(reference, columns, bins).psi(current)
    if not len(reference):  # nothing to compare with: NaN, as `psi` says
        return {c: float("nan") for c in columns if c in reference.columns and c in current}
    return found


@dataclass
class DriftReport:
    """One day's drift: PSI per feature (and of the model's score when a model is deployed)
    against the reference it names."""

    day: str
    threshold: float
    reference: dict[str, object]  # {"kind": "trailing" | "training_window", "days": [...], "rows"}
    rows: int
    psi: dict[str, float] = field(default_factory=dict)
    score_psi: float | None = None
    model_version: str | None = None
    note: str = ""

    @property
    def judged(self) -> dict[str, float]:
        """The finite PSI values (features without values on either side have none)."""
        values = {**self.psi, **({SCORE: self.score_psi} if self.score_psi is not None else {})}
        return {k: v for k, v in values.items() if v is not None and math.isfinite(v)}

    @property
    def drifted(self) -> dict[str, float]:
        """Features (and the score) whose PSI is above the threshold, largest first."""
        over = {k: v for k, v in self.judged.items() if v > self.threshold}
        return dict(sorted(over.items(), key=lambda kv: -kv[1]))

    @property
    def max_psi(self) -> float:
        return max(self.judged.values(), default=float("nan"))

    def to_json(self) -> str:
        def plain(v: object) -> object:
            return None if isinstance(v, float) and not math.isfinite(v) else v

        data = asdict(self)
        data["psi"] = {k: plain(v) for k, v in self.psi.items()}
        data["score_psi"] = plain(self.score_psi)
        return json.dumps(data, indent=1, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> DriftReport:
        data = json.loads(text)
        data["psi"] = {k: float("nan") if v is None else v for k, v in data["psi"].items()}
        return cls(**data)


def write_report(layout: DataLayout, report: DriftReport) -> Path:
    path = layout.feature_drift_report(report.day)
    with atomic_path(path) as tmp:
        tmp.write_text(report.to_json())
    return path


def read_report(layout: DataLayout, day: date | str) -> DriftReport:
    return DriftReport.from_json(layout.feature_drift_report(day).read_text())


KEPT_REFERENCES = 8
"""Reference bin files kept in `DataLayout.feature_drift_references` (the newest)."""


def reference_key(layout: DataLayout, days: list[date], settings: Mapping[str, object]) -> str:
    """Names one reference's bins: its days' feature files as they are now (a day materialized
    again is another reference) and whatever else shaped the bins (`settings`: the model, the
    columns, bins and rows per day)."""
    files = []
    for day in days:
        st = layout.entity_features(day).stat()
        files.append([day.isoformat(), st.st_mtime_ns, st.st_size])
    blob = json.dumps({"settings": settings, "files": files}, sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:24]


def read_reference(layout: DataLayout, key: str) -> tuple[ReferenceBins, int] | None:
    """(bins, reference rows) kept under `key`, or None (none kept, or unreadable)."""
    path = layout.feature_drift_references / f"{key}.json"
    try:
        data = json.loads(path.read_text())
        return ReferenceBins.from_dict(data["bins"]), int(data["rows"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def write_reference(layout: DataLayout, key: str, bins: ReferenceBins, rows: int) -> None:
    """Keep `bins` under `key`; only the newest `KEPT_REFERENCES` files stay."""
    folder = layout.feature_drift_references
    with atomic_path(folder / f"{key}.json") as tmp:
        tmp.write_text(json.dumps({"rows": rows, "bins": bins.to_dict()}))
    kept = sorted(folder.glob("*.json"), key=lambda p: p.stat().st_mtime_ns, reverse=True)
    for old in kept[KEPT_REFERENCES:]:
        old.unlink(missing_ok=True)


def stride_sample(frame: pd.DataFrame, max_rows: int) -> pd.DataFrame:
    """Every k-th row so that at most `max_rows` remain: deterministic, spread over the day."""
    if len(frame) <= max_rows:
        return frame
    step = math.ceil(len(frame) / max_rows)
    return frame.iloc[::step]


def psi_plot_png(report: DriftReport, top: int = 20) -> bytes:
    """Horizontal bars of the largest PSI values (the score's first), the threshold as a line."""
    values = report.judged
    names = sorted(values, key=lambda k: (k != SCORE, -values[k]))[:top][::-1]
    height = 1.2 + 0.28 * max(len(names), 1)
    figure = Figure(figsize=(8, height), dpi=100)
    FigureCanvasAgg(figure)
    ax = figure.add_subplot(1, 1, 1)
    colors = ["#c0392b" if values[n] > report.threshold else "#2e86c1" for n in names]
    ax.barh(range(len(names)), [values[n] for n in names], color=colors)
    ax.set_yticks(range(len(names)), names, fontsize=7)
    ax.axvline(report.threshold, color="#555555", linestyle="--", linewidth=1)
    ax.set_xlabel(f"PSI (threshold {report.threshold:g})")
    ax.set_title(
        f"Drift on {report.day} vs {report.reference.get('kind', 'reference')}", fontsize=9
    )
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    return buffer.getvalue()


def summary_markdown(report: DriftReport, top: int = 10) -> str:
    values = report.judged
    rows = ["| feature | PSI |", "|---|---|"]
    for name in sorted(values, key=lambda k: -values[k])[:top]:
        rows.append(f"| `{name}` | {values[name]:.3f} |")
    return "\n".join(rows)


def reference_days(day: date, available: list[date], window: int) -> list[date]:
    """The up-to-`window` available days right before `day` (the trailing reference)."""
    earlier = [d for d in available if d < day and (day - d).days <= window]
    return sorted(earlier)


def window_days(window: Mapping[str, str], available: list[date]) -> list[date]:
    """The available days of a model card's training window (train days; the whole window when
    the card names only a start and an end)."""
    first = window.get("train_first") or window.get("start")
    last = window.get("train_last") or window.get("end")
    if not first or not last:
        return []
    lo, hi = date.fromisoformat(str(first)[:10]), date.fromisoformat(str(last)[:10])
    return [d for d in available if lo <= d <= hi]


@dataclass(frozen=True)
class ReferencePlan:
    """What one day is compared with: `days` of `kind` (TRAILING or TRAINING_WINDOW). No days:
    no PSI for the day, and `note` says why; otherwise `note` says what to know, if anything."""

    kind: str
    days: list[date]
    complete_from: date  # the first day whose features' windows lie wholly inside the data
    note: str = ""


def plan_reference(
    day: date,
    available: list[date],
    training_days: list[date],
    warmup_days: int = DEFAULT_WARMUP_DAYS,
    trailing_days: int = 28,
    min_days: int = 7,
) -> ReferencePlan:
    """The reference of `day` given the days with features (`available`, whose first is the
    first day of data) and the deployed model's training days on disk (empty: no model, or its
    days are gone). See the module docstring for the rules."""
    first = available[0] if available else day
    complete = first + timedelta(days=warmup_days)
    warm_up = f"the features' warm-up ({warmup_days} days from the first data day {first})"
    if training_days:
        if day < complete:
            return ReferencePlan(
                TRAINING_WINDOW, [], complete, f"{day} is inside {warm_up}: no PSI"
            )
        warm = [d for d in training_days if d >= complete]
        if not warm:
            return ReferencePlan(
                TRAINING_WINDOW,
                list(training_days),
                complete,
                f"every training day of the model is inside {warm_up}: the reference all "
                "the same, expect its windowed counts to drift",
            )
        left_out = len(training_days) - len(warm)
        note = f"{left_out} training day(s) inside {warm_up} left out" if left_out else ""
        return ReferencePlan(TRAINING_WINDOW, warm, complete, note)
    trailing = [d for d in reference_days(day, available, trailing_days) if d >= complete]
    if len(trailing) < min_days:
        return ReferencePlan(
            TRAILING,
            [],
            complete,
            f"only {len(trailing)} reference day(s) past {warm_up}: no PSI before {min_days}",
        )
    return ReferencePlan(TRAILING, trailing, complete)
