"""`feature_drift`: for each day, how far every feature's distribution (and the deployed model's
score) has moved from what the model knows, as a population stability index (PSI), and a check
that warns when a value passes the threshold.

The reference is the deployed model's training window (from its model card) when a model is
deployed, else the 28 days before the day; either way only days past the features' warm-up (the
first weeks of data, whose windows still reach back before the data) count, and a day inside the
warm-up has no PSI (`fraud_core.drift.plan_reference`). Reference days are sampled to a fixed
number of rows, evenly over each day, so the cost of a day does not grow with the window.
"""

# No `from __future__ import annotations` here: Dagster 1.13 checks the `context` annotation
# of decorated functions at definition time and rejects a string.
import os
from datetime import date

import numpy as np
import pandas as pd
from dagster import (
    AssetCheckExecutionContext,
    AssetCheckSeverity,
    AssetCheckSpec,
    AssetExecutionContext,
    BackfillPolicy,
    Config,
    Failure,
    MaterializeResult,
    MetadataValue,
    asset,
    multi_asset_check,
)
from pydantic import Field

from fraud_assets.assets.entity_features import entity_features
from fraud_assets.lib.images import png_markdown
from fraud_assets.lib.range_checks import DayResult, range_check_result
from fraud_assets.partitions import daily_partitions, partition_days
from fraud_assets.resources import DataLayoutResource
from fraud_core.drift import (
    DEFAULT_BINS,
    DEFAULT_THRESHOLD,
    SCORE,
    TRAILING,
    TRAINING_WINDOW,
    DriftReport,
    ReferenceBins,
    SlidingBins,
    plan_reference,
    psi_plot_png,
    read_reference,
    read_report,
    reference_key,
    stride_sample,
    summary_markdown,
    window_days,
    write_reference,
    write_report,
)
from fraud_core.model.artifact import ModelCard, ModelIntegrityError, current_version, load_version
from fraud_core.model.dataset import feature_days_on_disk, read_feature_day
from fraud_core.model.train import predict
from fraud_core.storage import DataLayout

PSI_BELOW_THRESHOLD = "psi_below_threshold"
THRESHOLD_ENV = "FRAUD_PSI_THRESHOLD"
NO_MODEL = "no model yet"


def resolve_threshold(value: float | None) -> float:
    if value is not None:
        return value
    return float(os.environ.get(THRESHOLD_ENV, DEFAULT_THRESHOLD))


class FeatureDriftConfig(Config):
    threshold: float | None = Field(
        default=None,
        description=f"PSI above which a feature counts as drifted; empty: ${THRESHOLD_ENV}, "
        f"else {DEFAULT_THRESHOLD}.",
    )
    reference_days: int = Field(
        default=28, ge=1, description="Trailing reference window when no model is deployed."
    )
    min_reference_days: int = Field(
        default=7,
        ge=1,
        description="Fewer trailing reference days (past the features' warm-up) than this: no "
        "PSI for the day.",
    )
    reference_rows: int = Field(
        default=50_000, ge=100, description="Rows sampled from the reference days, at most."
    )
    warmup_days: int | None = Field(
        default=None,
        ge=0,
        description="Days after the first day of data whose features are still filling (their "
        "windows reach back before the data): no PSI for them, and never a reference day. "
        "Empty: the contract's feature horizon.",
    )
    bins: int = Field(default=DEFAULT_BINS, ge=2, description="Equal-frequency bins per feature.")


class _Reference:
    """The reference bins of each day's comparison, for one run. Each reference day is read
    once and sampled to `rows_per_day` rows, with the deployed model's score of those rows; a
    `SlidingBins` bins the window, so a trailing window that moves on a day costs that day's
    values, and a model's training window is binned once. A training window's bins are also
    kept on disk (`fraud_core.drift.write_reference`): the next runs (a daily run, each with
    the same model) read one small file instead of the window's days."""

    def __init__(
        self, data: DataLayout, columns: list[str], rows_per_day: int, bins: int, model
    ) -> None:
        self.data, self.features, self.rows_per_day, self.model = data, columns, rows_per_day, model
        self.columns = columns + ([SCORE] if model is not None else [])
        self.bins_per_column = bins
        self.sliding = SlidingBins(self.columns, bins)
        self._days: dict[date, dict[str, np.ndarray]] = {}
        # the training window's bins, once per run: every day of a range compares with them
        self._window: tuple[tuple[date, ...], tuple[ReferenceBins, int]] | None = None

    def day_values(self, day: date, frame: pd.DataFrame | None = None) -> dict[str, np.ndarray]:
        """A reference day's sampled values per column (`frame`: the day's features when the
        caller has read them already)."""
        if day not in self._days:
            if frame is None:
                frame = read_feature_day(self.data, day, self.features)
            sample = stride_sample(frame, self.rows_per_day)
            values = {c: sample[c].to_numpy(np.float64) for c in self.features}
            if self.model is not None:
                booster, card = self.model
                values[SCORE] = predict(booster, sample, card.feature_names, card.calibrator())
            self._days[day] = values
        return self._days[day]

    def bins(self, days: list[date], kind: str) -> tuple[ReferenceBins, int]:
        """(bins, rows) of the reference `days`."""
        key = None
        if kind == TRAINING_WINDOW and self.model is not None:
            if self._window is not None and self._window[0] == tuple(days):
                return self._window[1]
            settings = {
                "model": self.model[1].version,
                "columns": self.columns,
                "bins": self.bins_per_column,
                "rows_per_day": self.rows_per_day,
            }
            key = reference_key(self.data, days, settings)
            kept = read_reference(self.data, key)
            if kept is not None:
                self._window = (tuple(days), kept)
                return kept
        found = self.sliding.move(days, self.day_values)
        for old in [d for d in self._days if d < days[0]]:
            del self._days[old]  # a trailing window moved on: memory stays the window's
        if key is not None:
            write_reference(self.data, key, found, self.sliding.rows)
            self._window = (tuple(days), (found, self.sliding.rows))
        return found, self.sliding.rows


def _deployed(context: AssetExecutionContext, data: DataLayout):
    """(booster, card) of the served model, or None."""
    try:
        version = current_version(data.models)
        if version is None:
            return None
        return load_version(data.models, version)
    except (ModelIntegrityError, FileNotFoundError) as err:
        context.log.warning(f"the deployed model cannot be loaded ({err}): no score PSI")
        return None


@asset(
    partitions_def=daily_partitions,
    backfill_policy=BackfillPolicy.single_run(),
    deps=[entity_features],
    group_name="monitoring",
    kinds={"numpy", "json"},
    description=(
        "How far each day's features have moved from what the model was trained on: the "
        "population stability index (PSI) of every feature, and of the model's fraud score when "
        "a model is deployed, against the model's training window (or, before the first model, "
        "the 28 days before). The first weeks of data are the features' warm-up (their windows "
        "still reach back before the data): those days get no PSI and are never a reference. "
        "Below 0.1 is stable, above 0.2 worth a look: the check `psi_below_threshold` warns "
        "then. The plot shows the largest values."
    ),
)
def feature_drift(
    context: AssetExecutionContext, config: FeatureDriftConfig, layout: DataLayoutResource
) -> MaterializeResult:
    data = layout.layout()
    days = partition_days(context)
    threshold = resolve_threshold(config.threshold)
    available = feature_days_on_disk(data)
    spec = layout.contract().spec
    names = list(spec.feature_names)
    warmup_days = spec.warmup_days if config.warmup_days is None else config.warmup_days
    model = _deployed(context, data)
    card: ModelCard | None = model[1] if model else None
    training = window_days(card.training_window, available) if card else []
    window = len(training) if training else config.reference_days
    rows_per_day = max(1, config.reference_rows // max(window, 1))
    reference = _Reference(data, names, rows_per_day, config.bins, model)
    report = None
    for day in days:
        current = read_feature_day(data, day, names)
        if current is None:
            raise Failure(f"no entity_features for {day}: materialize entity_features first")
        plan = plan_reference(
            day,
            available,
            training,
            warmup_days=warmup_days,
            trailing_days=config.reference_days,
            min_days=config.min_reference_days,
        )
        ref_days, kind = plan.days, plan.kind
        if kind == TRAILING:
            reference.day_values(day, current)  # a later day's trailing reference: read once
        report = DriftReport(
            day=day.isoformat(),
            threshold=threshold,
            reference={
                "kind": kind,
                "days": [d.isoformat() for d in ref_days],
                "rows": 0,
                "features_complete_from": plan.complete_from.isoformat(),
            },
            rows=len(current),
            model_version=card.version if card else None,
            note=plan.note,
        )
        if ref_days:
            bins, report.reference["rows"] = reference.bins(ref_days, kind)
            report.psi = bins.psi(current)
            if model is not None:
                booster, card = model
                scores = pd.DataFrame(
                    {SCORE: predict(booster, current, card.feature_names, card.calibrator())}
                )
                report.score_psi = bins.psi(scores).get(SCORE, float("nan"))
        if model is None:
            report.note = (report.note + "; " if report.note else "") + f"score PSI: {NO_MODEL}"
        path = write_report(data, report)
        metadata = {
            "max_psi": MetadataValue.float(report.max_psi),
            "drifted_count": len(report.drifted),
            "drifted": MetadataValue.json({k: round(v, 4) for k, v in report.drifted.items()}),
            "score_psi": MetadataValue.float(report.score_psi)
            if report.score_psi is not None
            else NO_MODEL,
            "model_version": report.model_version or NO_MODEL,
            "reference": f"{kind}: {len(ref_days)} day(s)"
            + (f" {ref_days[0]}..{ref_days[-1]}" if ref_days else ""),
            "threshold": MetadataValue.float(threshold),
            "path": MetadataValue.path(str(path)),
        }
        if report.note:
            metadata["note"] = report.note
        if day == days[-1] and report.judged:  # the plot for the newest day only: it is big
            metadata["psi_top"] = MetadataValue.md(summary_markdown(report))
            metadata["psi_plot"] = png_markdown(f"PSI on {day}", psi_plot_png(report))
        context.add_asset_metadata(metadata, partition_key=day.isoformat())
    if report is not None and report.drifted:
        context.log.warning(f"{days[-1]}: drifted {list(report.drifted)[:10]}")
    return MaterializeResult()


class FeatureDriftCheckConfig(Config):
    threshold: float | None = Field(
        default=None,
        description=f"PSI that warns; empty: ${THRESHOLD_ENV}, else {DEFAULT_THRESHOLD}.",
    )


def check_drift_day(data: DataLayout, day: date, threshold: float) -> DayResult:
    path = data.feature_drift_report(day)
    if not path.exists():
        return DayResult(False, {"path": str(path)}, f"{path} does not exist")
    report = read_report(data, day)
    report.threshold = threshold
    drifted = report.drifted
    metadata = {
        "max_psi": MetadataValue.float(report.max_psi),
        "threshold": MetadataValue.float(threshold),
        "drifted": MetadataValue.json({k: round(v, 4) for k, v in drifted.items()}),
    }
    if not report.judged:
        return DayResult(True, metadata, report.note or "nothing to compare")
    text = (
        f"{len(drifted)} above {threshold:g}: {', '.join(list(drifted)[:5])}" if drifted else None
    )
    return DayResult(not drifted, metadata, text)


@multi_asset_check(
    specs=[
        AssetCheckSpec(
            PSI_BELOW_THRESHOLD,
            asset=feature_drift,
            blocking=False,
            description="No feature (nor the model's score) has a PSI above the threshold "
            f"(${THRESHOLD_ENV}, default {DEFAULT_THRESHOLD}). Warns; does not stop anything.",
        )
    ],
    name="feature_drift_checks",
)
def feature_drift_checks(
    context: AssetCheckExecutionContext,
    config: FeatureDriftCheckConfig,
    layout: DataLayoutResource,
):
    data = layout.layout()
    threshold = resolve_threshold(config.threshold)
    results = {d.isoformat(): check_drift_day(data, d, threshold) for d in partition_days(context)}
    yield range_check_result(PSI_BELOW_THRESHOLD, results, severity=AssetCheckSeverity.WARN)
