"""A calibrated model over the service's HTTP API: every score equals the offline calibrated
score of the same features (`fraud_core.model.train.predict` with the card's calibration) to
1e-6, single and batch requests alike, and the decision follows the calibrated score."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from fraud_core.features.offline import advance
from fraud_core.features.spec import DEFAULT_SPEC
from fraud_core.model.artifact import ModelCard
from fraud_core.model.calibration import PLATT, fit_platt
from fraud_core.model.train import margins, predict

from .support import deploy, payload, small_orders, trained_booster

NAMES = DEFAULT_SPEC.feature_names


@pytest.fixture
def model(data_dir) -> ModelCard:
    """The test booster with a Platt calibration fitted on its own margins (offline features)."""
    booster = trained_booster()
    orders = small_orders()
    features, _ = advance({}, orders, int(orders["order_date"].max().timestamp()) + 1)
    calibration = fit_platt(margins(booster, features, NAMES), orders["is_fraud"].to_numpy())
    assert calibration.method == PLATT
    return deploy(data_dir / "models", booster, calibration=calibration.to_dict())


def test_served_scores_are_the_offline_calibrated_scores(client, model) -> None:
    orders = small_orders().tail(240)
    answers = {}
    rows = [payload(row) for _, row in orders.iterrows()]
    for body in rows[:40]:
        r = client.post("/v1/score?features=true", json=body)
        assert r.status_code == 200, r.text
        answers[body["order_id"]] = r.json()
    for i in range(40, len(rows), 50):
        r = client.post("/v1/score/batch?features=true", json={"orders": rows[i : i + 50]})
        assert r.status_code == 200, r.text
        answers.update({a["order_id"]: a for a in r.json()["results"]})
    ids = [body["order_id"] for body in rows]
    features = pd.DataFrame(
        [
            [np.nan if v is None else v for v in (answers[o]["features"][n] for n in NAMES)]
            for o in ids
        ],
        columns=NAMES,
    )
    served = np.array([answers[o]["score"] for o in ids])
    booster = trained_booster()
    offline = predict(booster, features, NAMES, model.calibrator())
    np.testing.assert_allclose(served, offline, rtol=0, atol=1e-6)
    raw = predict(booster, features, NAMES)
    assert np.max(np.abs(served - raw)) > 1e-3  # the calibration is applied, not the raw score
    assert [answers[o]["decision"] for o in ids] == [model.decision(s) for s in offline]
