"""A candidate model from a written training set: trained on whatever Dask cluster the caller's
client points at, its decision thresholds chosen and its quality measured on the validation days,
and its model card. `fraud_model` is the thin Dagster adapter around `train_candidate` and
`register_candidate`; nothing here knows Dagster.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import dask.dataframe as dd
import numpy as np
import pandas as pd

from fraud_core.contract import applied_contract
from fraud_core.model.artifact import ModelCard, save_version
from fraud_core.model.calibration import (
    Calibration,
    brier_score,
    fit_platt,
    reliability,
    reliability_png,
)
from fraud_core.model.dataset import (
    LABEL,
    TRAIN,
    VALIDATION,
    WEIGHT,
    Manifest,
    resample_negatives,
)
from fraud_core.model.decisions import ThresholdChoice, ThresholdTargets, pick_thresholds
from fraud_core.model.evaluate import (
    DEFAULT_K,
    clean,
    evaluate_scores,
    feature_importance,
    feature_importance_png,
    mean_contributions,
    pr_curve_png,
    score_distribution_png,
)
from fraud_core.model.promotion import set_candidate
from fraud_core.model.summary import summary_markdown, threshold_note
from fraud_core.model.train import TrainParams, TrainResult, margins, train_model

if TYPE_CHECKING:  # xgboost (and the sklearn it pulls in) loads where a model is trained
    import xgboost as xgb

TOP_FEATURES_IN_CARD = 10


@dataclass
class Candidate:
    """A trained model with everything the registry and the UI need. `card.version` is empty
    until `register_candidate` saves it."""

    card: ModelCard
    result: TrainResult
    targets: ThresholdTargets
    choice: ThresholdChoice  # the thresholds and the rule that set them
    metrics: dict[str, float | None]  # on the validation days, NaN as None
    importance: dict[str, float]  # feature -> share of total gain, largest first
    contributions: dict[str, float]  # feature -> mean |SHAP| on the validation days
    labels: np.ndarray  # validation labels (known at the cutoff)
    scores: np.ndarray  # the model's validation scores (calibrated)
    raw_scores: np.ndarray  # the same before calibration
    calibration: Calibration
    withheld_labels: int | None = None  # validation frauds without a label at the cutoff
    k: int = DEFAULT_K
    selection: dict[str, Any] = field(default_factory=dict)  # where the params came from

    @property
    def booster(self) -> xgb.Booster:
        return self.result.booster

    @property
    def thresholds(self) -> dict[str, float]:
        return self.card.thresholds

    @property
    def note(self) -> str | None:
        """How the decline threshold was found when not by the target, or why it says little;
        None when it meets the target and catches enough fraud."""
        return threshold_note(
            self.metrics, self.thresholds, self.targets, self.choice, self.withheld_labels
        )

    def summary(self) -> str:
        """The Markdown an analyst reads first (under 1,000 characters)."""
        return summary_markdown(
            self.metrics,
            self.thresholds,
            self.card.training_window,
            self.importance,
            self.targets,
            self.k,
            self.choice,
            self.withheld_labels,
        )

    def plots(self) -> dict[str, tuple[str, bytes]]:
        """key -> (title, PNG bytes): the PR curve and score distribution with the thresholds,
        and the feature importance."""
        return {
            "pr_curve": (
                "Precision-recall",
                pr_curve_png(self.labels, self.scores, self.thresholds),
            ),
            "score_distribution": (
                "Score distribution",
                score_distribution_png(self.labels, self.scores, self.thresholds),
            ),
            "feature_importance": ("Feature importance", feature_importance_png(self.booster)),
            "reliability": (
                "Reliability",
                reliability_png(self.labels, self.raw_scores, self.scores),
            ),
        }


def decide(
    booster: xgb.Booster,
    validation: pd.DataFrame,
    names: list[str],
    targets: ThresholdTargets | None = None,
) -> tuple[np.ndarray, Calibration, np.ndarray, ThresholdChoice]:
    """What a trained model's validation days set: its Platt calibration of the margins and,
    on the calibrated scores, its decision thresholds. Returns (margins, calibration, scores,
    threshold choice); the backtest's fold models are decided the same way."""
    labels = validation[LABEL].to_numpy()
    raw = margins(booster, validation, names)
    calibration = fit_platt(raw, labels)
    scores = calibration.apply(raw)
    return raw, calibration, scores, pick_thresholds(labels, scores, targets)


def spec_hash(names: list[str]) -> str:
    """A short hash of the feature names in order: models with the same one read the same
    columns."""
    return hashlib.sha256("\n".join(names).encode()).hexdigest()[:16]


def train_candidate(
    client: Any,
    manifest: Manifest,
    params: TrainParams | None = None,
    targets: ThresholdTargets | None = None,
    *,
    k: int = DEFAULT_K,
    lineage: Mapping[str, str] | None = None,
    selection: Mapping[str, Any] | None = None,
    negative_rate: float | None = None,
) -> Candidate:
    """Train on the training set `manifest` describes (its training files read by the Dask
    workers, never through this process), choose the thresholds on its validation days, evaluate
    there and write the card. The served score is Platt-calibrated on the validation days
    (`fraud_core.model.calibration`) and the thresholds are chosen on it. `client` is a
    `distributed.Client`; `lineage` adds entries to the card's `data_versions` (e.g. the
    orchestrator's run id); `selection` says where `params` came from (the card records it);
    `negative_rate` below the training set's keeps fewer non-fraud training rows (a selected
    setting's, `fraud_core.model.dataset.resample_negatives`; one above it changes nothing: the
    set holds no more rows)."""
    params = params or TrainParams()
    targets = targets or ThresholdTargets()
    names = list(manifest.feature_names)
    validation = manifest.read_role(VALIDATION)
    config = manifest.config
    resample = negative_rate is not None and negative_rate < config["negative_rate"]
    # numeric columns only (no string conversion to worry about), but the order ids that
    # decide which non-fraud rows a lower negative rate keeps
    columns = [*names, LABEL, WEIGHT] + (["order_id"] if resample else [])
    train = dd.read_parquet(manifest.files[TRAIN], columns=columns)
    if resample:
        train = train.map_partitions(
            resample_negatives, negative_rate, config["negative_rate"], config["seed"]
        )
    switched_off = tuple(n for n in applied_contract().spec.switched_off if n in names)
    result = train_model(client, train, validation, names, params, switched_off)
    labels = validation[LABEL].to_numpy()
    raw_margins, calibration, scores, choice = decide(result.booster, validation, names, targets)
    raw_scores = Calibration().apply(raw_margins)
    known = manifest.known_fraud_since()
    metrics = clean(
        {
            **evaluate_scores(
                validation, scores, choice.thresholds, k, known, entity=manifest.primary
            ),
            "brier": brier_score(labels, scores),
            "brier_raw": brier_score(labels, raw_scores),
        }
    )
    importance = feature_importance(result.booster)
    contributions = mean_contributions(result.booster, validation, names)
    candidate = Candidate(
        card=ModelCard(version="", feature_names=names, thresholds=choice.thresholds),
        result=result,
        targets=targets,
        choice=choice,
        metrics=metrics,
        importance=importance,
        contributions=contributions,
        labels=labels,
        scores=scores,
        raw_scores=raw_scores,
        calibration=calibration,
        withheld_labels=withheld_labels(manifest),
        k=k,
        selection=dict(selection or {}),
    )
    candidate.card = _card(manifest, params, candidate, lineage)
    return candidate


def withheld_labels(manifest: Manifest) -> int | None:
    """Validation frauds whose label arrived after the cutoff (a 0 in the training set)."""
    validation = manifest.summary.get(VALIDATION)
    return validation.get("withheld_labels") if isinstance(validation, dict) else None


def _card(
    manifest: Manifest,
    params: TrainParams,
    candidate: Candidate,
    lineage: Mapping[str, str] | None,
) -> ModelCard:
    window = manifest.window
    names = list(manifest.feature_names)
    result, importance = candidate.result, candidate.importance
    note = candidate.note
    return ModelCard(
        version="",
        feature_names=names,
        thresholds=candidate.choice.thresholds,
        contract=applied_contract().record(),
        calibration=candidate.calibration.to_dict(),
        training_window=window,
        params={
            **params.to_dict(),
            "xgboost": params.xgb_params(),
            "best_iteration": result.best_iteration,
            "rounds_run": result.rounds,
            "threshold_targets": candidate.targets.to_dict(),
            "threshold_choice": candidate.choice.to_dict(),
            "training_set": manifest.config,
            "selection": candidate.selection,
            "switched_off": list(applied_contract().spec.switched_off),
        },
        metrics={
            "validation": candidate.metrics,
            "validation_withheld_labels": candidate.withheld_labels,
            "reliability": reliability(candidate.labels, candidate.scores),
            "train_rows": result.n_train,
            "train_seconds": round(result.train_seconds, 2),
            "top_features": dict(list(importance.items())[:TOP_FEATURES_IN_CARD]),
            "top_contributions": dict(list(candidate.contributions.items())[:TOP_FEATURES_IN_CARD]),
        },
        data_versions={
            "training_set": {"path": manifest.folder, "fingerprint": manifest.fingerprint},
            "entity_features": {
                "days": f"{window['train_first']}..{window['validation_last']}",
                "files": len(manifest.inputs),
                "fingerprint": hashlib.sha256(
                    repr(sorted(manifest.inputs.items())).encode()
                ).hexdigest()[:16],
            },
            "feature_spec": spec_hash(names),
            **(lineage or {}),
        },
        notes=(
            f"trained {datetime.now(UTC):%Y-%m-%d %H:%M} UTC on labels known at "
            f"{window['cutoff']}; evaluated on validation days "
            f"{window['validation_first']}..{window['validation_last']}"
            + (f". {note}" if note else "")
        ),
    )


def register_candidate(registry: Path, candidate: Candidate) -> ModelCard:
    """Save the candidate as a registry version and make it the one the promotion gate judges
    next (it serves only once promoted). Returns the completed card (version, checksums)."""
    card = save_version(registry, candidate.booster, candidate.card)
    set_candidate(registry, card.version)
    return card
