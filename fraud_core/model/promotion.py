"""The promotion gate: a candidate model replaces the deployed champion only when it is good enough
on its own (an average-precision floor) and not worse than the champion on the same validation
orders (within a tolerance). Both models are scored here on the candidate's validation days, so
the comparison never rests on numbers measured on different data.

"Worse" is judged with a paired bootstrap over those orders, not on two point estimates: a few
hundred frauds give an AP that moves by about +/-0.02 between two honest retrainings, so a point
comparison with a tolerance of 0.005 would refuse good models at random. The candidate is refused
when even the optimistic end (the `confidence` quantile) of its AP advantage over the champion is
below -tolerance, that is, when it is worse beyond the tolerance with that confidence.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from fraud_core.model.artifact import (
    ModelCard,
    ModelIntegrityError,
    current_version,
    load_version,
    set_current,
)
from fraud_core.model.evaluate import (
    DEFAULT_K,
    PRIMARY,
    average_precision,
    clean,
    evaluate_scores,
)
from fraud_core.model.train import predict
from fraud_core.storage import as_path, atomic_path

if TYPE_CHECKING:  # xgboost (and the sklearn it pulls in) loads where a model is used
    import xgboost as xgb

CANDIDATE_FILE = "candidate.json"
GATE_FILE = "gate.json"


@dataclass(frozen=True)
class GatePolicy:
    min_average_precision: float = 0.2  # far above a random model (AP = fraud rate, ~1 %)
    tolerance: float = 0.005  # the candidate may trail the champion's AP by this much
    confidence: float = 0.95  # how sure "worse beyond the tolerance" must be to refuse
    bootstrap_rounds: int = 200  # paired resamples of the validation orders (fixed seed)

    def to_dict(self) -> dict[str, float]:
        return asdict(self)


@dataclass
class GateDecision:
    passed: bool
    candidate_version: str
    candidate_ap: float
    champion_version: str | None = None
    champion_ap: float | None = None
    reasons: list[str] = field(default_factory=list)
    # optimistic bound of (candidate AP - champion AP) over paired bootstrap resamples
    ap_advantage_upper: float | None = None
    # "candidate" / "champion" -> its figures on the candidate's validation orders at its own
    # thresholds (evaluate_scores' keys plus decline_threshold / review_threshold)
    comparison: dict[str, dict[str, float | None]] = field(default_factory=dict)

    policy: dict[str, float] = field(default_factory=dict)
    decided_at: str = field(default_factory=lambda: datetime.now(UTC).isoformat(timespec="seconds"))

    def to_dict(self) -> dict[str, object]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> GateDecision:
        known = set(cls.__dataclass_fields__)
        return cls(**{k: v for k, v in data.items() if k in known})

    @property
    def summary(self) -> str:
        return "; ".join(self.reasons)


def decide(
    candidate_version: str,
    candidate_ap: float,
    champion_version: str | None,
    champion_ap: float | None,
    policy: GatePolicy,
    advantage_upper: float | None = None,
) -> GateDecision:
    """The gate on numbers already measured on the same validation orders. `advantage_upper` is
    the bootstrap's optimistic bound of (candidate AP - champion AP); without it the two point
    estimates are compared."""
    reasons: list[str] = []
    passed = True
    if math.isnan(candidate_ap):
        passed = False
        reasons.append("candidate AP is undefined (validation holds a single class)")
    elif candidate_ap < policy.min_average_precision:
        passed = False
        reasons.append(
            f"candidate AP {candidate_ap:.4f} is below the floor {policy.min_average_precision:.4f}"
        )
    else:
        reasons.append(
            f"candidate AP {candidate_ap:.4f} >= floor {policy.min_average_precision:.4f}"
        )
    if champion_version is None:
        reasons.append("no champion deployed yet")
    elif champion_version == candidate_version:
        reasons.append("the candidate is the deployed champion")
    elif champion_ap is None or math.isnan(champion_ap):
        reasons.append(f"champion {champion_version} could not be scored on this data")
    else:
        advantage = candidate_ap - champion_ap
        bound = advantage if advantage_upper is None else advantage_upper
        judged = (
            f"AP advantage {advantage:+.4f}"
            if advantage_upper is None
            else f"AP advantage {advantage:+.4f}, at most {advantage_upper:+.4f} "
            f"with {policy.confidence:.0%} confidence"
        )
        if not math.isnan(candidate_ap) and bound < -policy.tolerance:
            passed = False
            reasons.append(
                f"candidate AP {candidate_ap:.4f} is worse than champion {champion_version}'s "
                f"{champion_ap:.4f} ({judged}; tolerance {policy.tolerance})"
            )
        else:
            reasons.append(
                f"candidate AP {candidate_ap:.4f} vs champion {champion_version}'s "
                f"{champion_ap:.4f} ({judged}; tolerance {policy.tolerance})"
            )
    return GateDecision(
        passed,
        candidate_version,
        candidate_ap,
        champion_version,
        champion_ap,
        reasons,
        policy=policy.to_dict(),
        ap_advantage_upper=advantage_upper,
    )


def version_scores(
    booster: xgb.Booster, card: ModelCard, validation: pd.DataFrame
) -> np.ndarray | None:
    """A model's scores on the rows; None when the rows lack one of its features."""
    if any(name not in validation.columns for name in card.feature_names):
        return None
    return predict(booster, validation, card.feature_names, card.calibrator())


def score_version(
    booster: xgb.Booster, card: ModelCard, validation: pd.DataFrame, label: str = "label"
) -> float:
    """A model's AP on labelled rows; NaN when the rows lack one of its features."""
    scores = version_scores(booster, card, validation)
    if scores is None:
        return float("nan")
    return average_precision(validation[label].to_numpy(), scores)


def ap_advantage_upper(
    labels: np.ndarray,
    candidate: np.ndarray,
    champion: np.ndarray,
    rounds: int,
    confidence: float,
    seed: int = 0,
) -> float:
    """The `confidence` quantile of AP(candidate) - AP(champion) over paired bootstrap resamples
    of the rows (both models judged on the same resampled orders). Resamples with a single class
    are skipped; NaN when none is usable."""
    labels = np.asarray(labels)
    rng = np.random.default_rng(seed)
    n = len(labels)
    diffs = []
    for _ in range(rounds):
        idx = rng.integers(0, n, n)
        y = labels[idx]
        if y.min() == y.max():
            continue
        diffs.append(average_precision(y, candidate[idx]) - average_precision(y, champion[idx]))
    return float(np.quantile(diffs, confidence)) if diffs else float("nan")


def figures(
    frame: pd.DataFrame,
    scores: np.ndarray,
    card: ModelCard,
    known_fraud_since: pd.Series | None = None,
    k: int = DEFAULT_K,
    label: str = "label",
    entity: str = PRIMARY,
) -> dict[str, float | None]:
    """A model's figures on labelled rows at its own thresholds, JSON-ready (NaN as None)."""
    metrics = evaluate_scores(frame, scores, card.thresholds, k, known_fraud_since, label, entity)
    thresholds = {f"{name}_threshold": float(v) for name, v in card.thresholds.items()}
    return clean({**metrics, **thresholds})


def gate_candidate(
    registry: Path,
    candidate: str,
    validation: pd.DataFrame,
    policy: GatePolicy,
    label: str = "label",
    known_fraud_since: pd.Series | None = None,
    k: int = DEFAULT_K,
    entity: str = PRIMARY,
) -> GateDecision:
    """Score the candidate and the current champion on `validation` and decide. A champion
    whose files no longer verify counts as no comparison (and is said so in the reasons).

    The decision also holds both models' figures on those orders, each at its own thresholds
    (`comparison`), for the side-by-side view; `known_fraud_since`, `k` and `entity` (the
    primary entity's column) are for customer precision@k there."""
    labels = validation[label].to_numpy()
    booster, card = load_version(registry, candidate)
    candidate_scores = version_scores(booster, card, validation)
    candidate_ap = (
        float("nan") if candidate_scores is None else average_precision(labels, candidate_scores)
    )
    comparison = {}
    if candidate_scores is not None:
        comparison["candidate"] = figures(
            validation, candidate_scores, card, known_fraud_since, k, label, entity
        )
    champion = current_version(registry)
    champion_ap: float | None = None
    upper: float | None = None
    if champion is not None and champion != candidate:
        try:
            champion_booster, champion_card = load_version(registry, champion)
            champion_scores = version_scores(champion_booster, champion_card, validation)
        except (ModelIntegrityError, FileNotFoundError):
            champion_scores = None
        if champion_scores is not None:
            champion_ap = average_precision(labels, champion_scores)
            comparison["champion"] = figures(
                validation, champion_scores, champion_card, known_fraud_since, k, label, entity
            )
            if candidate_scores is not None and policy.bootstrap_rounds > 0:
                upper = ap_advantage_upper(
                    labels,
                    candidate_scores,
                    champion_scores,
                    policy.bootstrap_rounds,
                    policy.confidence,
                )
                upper = None if math.isnan(upper) else upper
    elif champion == candidate:
        champion_ap = candidate_ap
    decision = decide(candidate, candidate_ap, champion, champion_ap, policy, upper)
    decision.comparison = comparison
    return decision


def promote(registry: Path, decision: GateDecision) -> str | None:
    """Point `current` at the candidate when the gate passed; return the version now served."""
    if decision.passed and decision.champion_version != decision.candidate_version:
        set_current(registry, decision.candidate_version, reason=f"promoted: {decision.summary}")
    return current_version(registry)


# ---------------------------------------------------------------------------------------------
# Registry bookkeeping beside `current`: the newest trained model and each gate verdict.


def _write_json(path: Path, data: dict) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(data, indent=2, default=str))


def set_candidate(registry: Path, version: str) -> None:
    """Mark `version` as the newest trained model, the one the gate judges next."""
    _write_json(
        as_path(registry) / CANDIDATE_FILE,
        {"version": version, "since": datetime.now(UTC).isoformat(timespec="seconds")},
    )


def candidate_version(registry: Path) -> str | None:
    try:
        return json.loads((as_path(registry) / CANDIDATE_FILE).read_text())["version"]
    except FileNotFoundError:
        return None


def record_decision(registry: Path, decision: GateDecision) -> None:
    """Keep the gate's verdict beside the version it judged (`fraud model list` shows it)."""
    _write_json(as_path(registry) / decision.candidate_version / GATE_FILE, decision.to_dict())


def read_decision(registry: Path, version: str) -> GateDecision | None:
    path = as_path(registry) / version / GATE_FILE
    if not path.exists():
        return None
    return GateDecision.from_dict(json.loads(path.read_text()))
