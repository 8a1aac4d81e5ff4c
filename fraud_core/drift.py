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

import io
import json
import math
from collections.abc import Mapping
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
