"""Calibration: Platt scaling recovers a known miscalibration, lowers the Brier score and keeps
the ranking; a card's calibration is validated; the scorer (what the service serves) gives the
offline calibrated score to 1e-6, through the compiled trees and through XGBoost."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import xgboost as xgb

from fraud_core.features.spec import DEFAULT_SPEC
from fraud_core.model.artifact import ModelCard, read_card, save_version
from fraud_core.model.calibration import (
    IDENTITY,
    PLATT,
    Calibration,
    brier_score,
    fit_platt,
    reliability,
)
from fraud_core.model.train import predict
from fraud_core.scoring.scorer import Scorer

NAMES = DEFAULT_SPEC.feature_names


def _miscalibrated(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Margins whose true log-odds are 0.5 * margin - 2: the raw sigmoid is overconfident."""
    rng = np.random.default_rng(seed)
    margin = rng.normal(0, 4, n)
    truth = 1 / (1 + np.exp(-(0.5 * margin - 2)))
    return margin, (rng.random(n) < truth).astype(int)


def test_platt_recovers_a_known_miscalibration_and_keeps_the_ranking() -> None:
    margin, labels = _miscalibrated(50_000)
    calibration = fit_platt(margin, labels)
    assert calibration.method == PLATT
    assert calibration.slope == pytest.approx(0.5, abs=0.03)
    assert calibration.intercept == pytest.approx(-2.0, abs=0.1)
    raw = Calibration().apply(margin)
    calibrated = calibration.apply(margin)
    assert brier_score(labels, calibrated) < brier_score(labels, raw) - 0.01
    np.testing.assert_array_equal(
        np.argsort(margin, kind="stable"), np.argsort(calibrated, kind="stable")
    )
    # every band with enough orders predicts close to what it observes
    for band in reliability(labels, calibrated):
        if band["orders"] >= 1_000:
            assert abs(band["predicted"] - band["observed"]) < 0.03, band


def test_one_class_or_a_reversing_fit_gives_the_identity() -> None:
    assert fit_platt(np.array([1.0, 2.0]), np.array([0, 0])) == Calibration()
    # labels that fall as the margin rises would need a negative slope: refused
    margin = np.linspace(-5, 5, 1000)
    assert fit_platt(margin, (margin < 0).astype(int)).method == IDENTITY


@pytest.mark.parametrize(
    "bad",
    [
        {"method": "platt", "slope": -1.0, "intercept": 0.0},
        {"method": "platt", "slope": float("nan"), "intercept": 0.0},
        {"method": "isotonic", "slope": 1.0, "intercept": 0.0},
    ],
)
def test_a_card_with_a_bad_calibration_is_refused(tmp_path, bad) -> None:
    booster = xgb.train({"objective": "binary:logistic"}, xgb.DMatrix(np.eye(4), [0, 1, 0, 1]), 2)
    card = ModelCard("", ["a", "b", "c", "d"], {"review": 0.3, "decline": 0.7}, calibration=bad)
    with pytest.raises(ValueError):
        save_version(tmp_path, booster, card)


def test_a_saved_calibration_reads_back(tmp_path) -> None:
    booster = xgb.train({"objective": "binary:logistic"}, xgb.DMatrix(np.eye(4), [0, 1, 0, 1]), 2)
    calibration = Calibration(PLATT, 0.7, -1.25)
    card = ModelCard(
        "", ["a", "b", "c", "d"], {"review": 0.3, "decline": 0.7}, calibration=calibration.to_dict()
    )
    saved = save_version(tmp_path, booster, card)
    assert read_card(tmp_path, saved.version).calibrator() == calibration
    # an older card without a calibration serves the raw probability
    assert ModelCard("v", [], {"review": 0.3, "decline": 0.7}).calibrator() == Calibration()


@pytest.fixture(scope="module")
def booster() -> xgb.Booster:
    rng = np.random.default_rng(0)
    x = rng.lognormal(0, 1.5, size=(3_000, len(NAMES)))
    x[rng.random(x.shape) < 0.2] = np.nan
    y = (np.nan_to_num(x[:, 0]) + rng.normal(size=len(x)) > 3).astype(int)
    params = {"max_depth": 5, "eta": 0.2, "objective": "binary:logistic", "nthread": 1, "seed": 1}
    return xgb.train(params, xgb.DMatrix(x, y), 40)


@pytest.mark.parametrize("exact_trees", [True, False])
def test_the_scorer_serves_the_offline_calibrated_score(booster, exact_trees) -> None:
    calibration = Calibration(PLATT, 0.6, -1.7)
    card = ModelCard(
        "v1", NAMES, {"review": 0.05, "decline": 0.5}, calibration=calibration.to_dict()
    )
    scorer = Scorer(booster, card)
    assert scorer.exact_trees
    scorer.exact_trees = exact_trees  # both serving paths
    rng = np.random.default_rng(9)
    x = rng.lognormal(0, 1.5, size=(500, len(NAMES)))
    x[rng.random(x.shape) < 0.2] = np.nan
    served = scorer.score(x).scores
    offline = predict(booster, pd.DataFrame(x, columns=NAMES), NAMES, calibration)
    np.testing.assert_allclose(served, offline, rtol=0, atol=1e-6)
    raw = booster.inplace_predict(x)
    assert np.max(np.abs(served - raw)) > 0.05  # the calibration is really applied
    assert scorer.score(x).decisions == [card.decision(s) for s in served]
