"""The promotion gate's statistics: a paired bootstrap decides "worse", not two point estimates."""

from __future__ import annotations

import numpy as np
import pytest

from fraud_core.model.evaluate import average_precision
from fraud_core.model.promotion import GatePolicy, ap_advantage_upper, decide


def _validation(n: int = 4_000, fraud_rate: float = 0.03, seed: int = 0):
    rng = np.random.default_rng(seed)
    labels = (rng.random(n) < fraud_rate).astype(int)
    signal = labels * 2.0 + rng.normal(0, 1, n)  # a decent model's margin
    return rng, labels, signal


def test_identical_models_have_zero_advantage() -> None:
    _, labels, scores = _validation()
    assert ap_advantage_upper(labels, scores, scores, rounds=50, confidence=0.95) == 0.0


def test_a_retrain_of_equal_quality_passes_even_when_its_point_estimate_trails() -> None:
    rng, labels, signal = _validation(seed=1)
    champion = signal + rng.normal(0, 0.6, len(labels))
    candidate = signal + rng.normal(0, 0.6, len(labels))  # same quality, other noise
    cand_ap, champ_ap = average_precision(labels, candidate), average_precision(labels, champion)
    policy = GatePolicy(min_average_precision=0.0, tolerance=0.005)
    upper = ap_advantage_upper(
        labels, candidate, champion, policy.bootstrap_rounds, policy.confidence
    )
    assert upper > -policy.tolerance
    assert decide("new", cand_ap, "old", champ_ap, policy, upper).passed
    # the old point comparison would have refused whenever the candidate trails by > tolerance
    if cand_ap < champ_ap - policy.tolerance:
        assert not decide("new", cand_ap, "old", champ_ap, policy).passed


def test_a_clearly_worse_model_is_refused_with_confidence() -> None:
    rng, labels, signal = _validation(seed=2)
    champion = signal
    candidate = signal + rng.normal(0, 3.0, len(labels))  # much noisier: real loss of signal
    policy = GatePolicy(min_average_precision=0.0, tolerance=0.005)
    upper = ap_advantage_upper(
        labels, candidate, champion, policy.bootstrap_rounds, policy.confidence
    )
    decision = decide(
        "new",
        average_precision(labels, candidate),
        "old",
        average_precision(labels, champion),
        policy,
        upper,
    )
    assert upper < -policy.tolerance
    assert not decision.passed and "worse than champion" in decision.summary
    assert "confidence" in decision.summary


def test_the_bootstrap_is_deterministic() -> None:
    rng, labels, signal = _validation(seed=3)
    other = signal + rng.normal(0, 1, len(labels))
    first = ap_advantage_upper(labels, other, signal, rounds=40, confidence=0.9)
    assert first == pytest.approx(
        ap_advantage_upper(labels, other, signal, rounds=40, confidence=0.9)
    )
