"""A loaded model ready to score batches: the calibrated probability plus the top reasons.

`Scorer` is what the scoring service holds and hot-swaps. Building one validates the model for
serving: its card must list exactly the spec's features in the spec's order (the service builds
feature rows in that order), and the compiled trees must reproduce XGBoost's margins on probe rows,
so the reasons explain the returned score. A model that fails is refused with
`ModelIntegrityError` and the service keeps the one it has. When the compiled trees' margins
also give XGBoost's calibrated scores (to 1e-6, checked on 2,000 probe rows) they score the batch
themselves, which saves XGBoost's fixed cost per call; otherwise XGBoost computes the margins.
Either way the card's calibration turns margins into the served probability.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from fraud_core.contract import Contract, applied_contract
from fraud_core.features.spec import DEFAULT_SPEC, FeatureSpec
from fraud_core.model.artifact import ModelCard, ModelIntegrityError, load_version
from fraud_core.scoring.trees import TreeEnsemble

if TYPE_CHECKING:  # xgboost (and the sklearn it pulls in) loads where a model is used
    import xgboost as xgb

DEFAULT_TOP_REASONS = 3
_MARGIN_TOLERANCE = 1e-3  # float32 accumulation in XGBoost vs float64 here, over all trees


@dataclass(frozen=True)
class Reason:
    """One feature's push on the score: `contribution` is in log-odds (> 0 towards fraud)."""

    feature: str
    value: float  # NaN when the feature is empty
    contribution: float


@dataclass(frozen=True)
class BatchScores:
    scores: np.ndarray  # (rows,) calibrated fraud probability (offline's within 1e-6)
    decisions: list[str]
    reasons: list[list[Reason]]


class Scorer:
    """A verified model version: `score(features)` for a (rows, features) matrix in spec order."""

    def __init__(
        self,
        booster: xgb.Booster,
        card: ModelCard,
        spec: FeatureSpec = DEFAULT_SPEC,
        top_reasons: int = DEFAULT_TOP_REASONS,
    ) -> None:
        if list(card.feature_names) != spec.feature_names:
            missing = sorted(set(spec.feature_names) - set(card.feature_names))
            extra = sorted(set(card.feature_names) - set(spec.feature_names))
            raise ModelIntegrityError(
                f"model {card.version}: its features are not the feature spec's "
                f"(missing {missing[:5]}, unknown {extra[:5]}, or another order)"
            )
        for name in ("review", "decline"):
            if name not in card.thresholds:
                raise ModelIntegrityError(
                    f"model {card.version}: no {name!r} threshold in its card"
                )
        try:
            self.calibration = card.calibrator()
        except (ValueError, KeyError, TypeError) as exc:
            raise ModelIntegrityError(f"model {card.version}: bad calibration: {exc}") from exc
        booster.set_param({"nthread": 1})  # one request batch at a time; threads only add latency
        self.booster = booster
        self.card = card
        self.feature_names = list(spec.feature_names)
        self.top_reasons = top_reasons
        try:
            self.trees = TreeEnsemble.from_booster(booster)
        except ValueError as exc:
            raise ModelIntegrityError(f"model {card.version}: {exc}") from exc
        self._check_trees(spec)
        self.exact_trees = self._trees_predict_like_xgboost(spec)

    @property
    def version(self) -> str:
        return self.card.version

    def _check_trees(self, spec: FeatureSpec) -> None:
        """The compiled trees must land where XGBoost does: margin minus leaf sum (the base
        score) is the same for every probe row."""
        probe = self._probe(64, spec)
        margin = self.booster.inplace_predict(probe, predict_type="margin")
        leaf_sum = self.trees.leaf_sum(probe)
        base = np.asarray(margin, dtype=np.float64) - leaf_sum
        # the contributions add up to the leaves (this also compiles their kernel now, not on
        # the first order)
        explained = self.trees.contributions(probe).sum(axis=1) + self.trees.root_value
        if (
            not np.all(np.isfinite(base))
            or np.ptp(base) > _MARGIN_TOLERANCE
            or not np.allclose(explained, leaf_sum, rtol=0, atol=_MARGIN_TOLERANCE)
        ):
            raise ModelIntegrityError(
                f"model {self.card.version}: its trees cannot be read for explanations"
            )

    def _probe(self, n: int, spec: FeatureSpec) -> np.ndarray:
        rng = np.random.default_rng(n)
        probe = rng.lognormal(0.0, 2.0, size=(n, len(spec.feature_names)))
        probe[rng.random(probe.shape) < 0.3] = np.nan
        probe[:, :2] = rng.integers(0, 24, size=(n, 2))
        return probe

    def _trees_predict_like_xgboost(self, spec: FeatureSpec) -> bool:
        """Whether the compiled trees give XGBoost's scores (the calibrated margins, to 1e-6)
        on probe rows: then scoring skips XGBoost's per-call overhead (~150 us), else it calls
        XGBoost."""
        if self.trees.base_margin is None:
            return False
        probe = self._probe(2_000, spec)
        ours = self.calibration.apply(self.trees.margin(self.trees.leaves(probe)))
        theirs = self.calibration.apply(self.booster.inplace_predict(probe, predict_type="margin"))
        return bool(np.max(np.abs(ours - theirs)) <= 1e-6)

    def predict(self, features: np.ndarray, leaves: np.ndarray | None = None) -> np.ndarray:
        """Fraud probabilities: the card's calibration of XGBoost's margins (within 1e-6 of
        `fraud_core.model.train.predict` on the same rows)."""
        if self.exact_trees:
            leaves = self.trees.leaves(features) if leaves is None else leaves
            margin = self.trees.margin(leaves)
        else:
            margin = self.booster.inplace_predict(features, predict_type="margin")
        return self.calibration.apply(margin)

    def score(self, features: np.ndarray) -> BatchScores:
        """Probabilities, decisions and the features that moved each score most."""
        features = np.asarray(features, dtype=np.float64)
        leaves = self.trees.leaves(features)
        scores = self.predict(features, leaves)
        contrib = self.trees.contributions(features, leaves)
        k = min(self.top_reasons, contrib.shape[1])
        top = np.argsort(-np.abs(contrib), axis=1, kind="stable")[:, :k]
        rows = np.arange(len(features))[:, None]
        names = self.feature_names
        reasons = [
            [Reason(names[j], v, c) for j, v, c in zip(js, vs, cs, strict=True) if c != 0.0]
            for js, vs, cs in zip(
                top.tolist(), features[rows, top].tolist(), contrib[rows, top].tolist(), strict=True
            )
        ]
        decisions = [self.card.decision(float(s)) for s in scores]
        return BatchScores(scores=scores, decisions=decisions, reasons=reasons)


def load_scorer(registry: Path, version: str, contract: Contract | None = None) -> Scorer:
    """Load, verify (checksum, contract, features, trees) and compile a registry version for
    `contract` (default the one in use)."""
    contract = contract or applied_contract()
    booster, card = load_version(registry, version, contract)
    return Scorer(booster, card, contract.spec)
