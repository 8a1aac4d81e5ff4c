"""The promotion gate: a candidate model replaces the deployed champion only when it is good enough
on its own (an average-precision floor) and not worse than the champion on the same validation
orders (within a tolerance). Both models are scored here on the candidate's validation days, so
the comparison never rests on numbers measured on different data.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd
import xgboost as xgb

from fraud_core.model.artifact import (
    ModelCard,
    ModelIntegrityError,
    current_version,
    load_version,
    set_current,
)
from fraud_core.model.evaluate import average_precision
from fraud_core.model.train import predict
from fraud_core.storage import atomic_path

CANDIDATE_FILE = "candidate.json"
GATE_FILE = "gate.json"


@dataclass(frozen=True)
class GatePolicy:
    min_average_precision: float = 0.2  # far above a random model (AP = fraud rate, ~1 %)
    tolerance: float = 0.005  # the candidate may trail the champion's AP by this much

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
) -> GateDecision:
    """The gate on numbers already measured on the same validation orders."""
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
    elif not math.isnan(candidate_ap) and candidate_ap < champion_ap - policy.tolerance:
        passed = False
        reasons.append(
            f"candidate AP {candidate_ap:.4f} is worse than champion {champion_version}'s "
            f"{champion_ap:.4f} (tolerance {policy.tolerance})"
        )
    else:
        reasons.append(
            f"candidate AP {candidate_ap:.4f} vs champion {champion_version}'s {champion_ap:.4f} "
            f"(tolerance {policy.tolerance})"
        )
    return GateDecision(
        passed,
        candidate_version,
        candidate_ap,
        champion_version,
        champion_ap,
        reasons,
        policy=policy.to_dict(),
    )


def score_version(
    booster: xgb.Booster, card: ModelCard, validation: pd.DataFrame, label: str = "label"
) -> float:
    """A model's AP on labelled rows; NaN when the rows lack one of its features."""
    if any(name not in validation.columns for name in card.feature_names):
        return float("nan")
    scores = predict(booster, validation, card.feature_names)
    return average_precision(validation[label].to_numpy(), scores)


def gate_candidate(
    registry: Path, candidate: str, validation: pd.DataFrame, policy: GatePolicy
) -> GateDecision:
    """Score the candidate and the current champion on `validation` and decide. A champion
    whose files no longer verify counts as no comparison (and is said so in the reasons)."""
    booster, card = load_version(registry, candidate)
    candidate_ap = score_version(booster, card, validation)
    champion = current_version(registry)
    champion_ap: float | None = None
    if champion is not None and champion != candidate:
        try:
            champion_booster, champion_card = load_version(registry, champion)
            champion_ap = score_version(champion_booster, champion_card, validation)
        except (ModelIntegrityError, FileNotFoundError):
            champion_ap = None
    elif champion == candidate:
        champion_ap = candidate_ap
    return decide(candidate, candidate_ap, champion, champion_ap, policy)


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
        Path(registry) / CANDIDATE_FILE,
        {"version": version, "since": datetime.now(UTC).isoformat(timespec="seconds")},
    )


def candidate_version(registry: Path) -> str | None:
    try:
        return json.loads((Path(registry) / CANDIDATE_FILE).read_text())["version"]
    except FileNotFoundError:
        return None


def record_decision(registry: Path, decision: GateDecision) -> None:
    """Keep the gate's verdict beside the version it judged (`fraud model list` shows it)."""
    _write_json(Path(registry) / decision.candidate_version / GATE_FILE, decision.to_dict())


def read_decision(registry: Path, version: str) -> GateDecision | None:
    path = Path(registry) / version / GATE_FILE
    if not path.exists():
        return None
    return GateDecision.from_dict(json.loads(path.read_text()))
