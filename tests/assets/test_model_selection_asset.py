"""model_selection -> training_set -> fraud_model through Dagster `materialize` (2 settings x 2
folds on six weeks of generated features, an in-process Dask cluster): the selection is written
and shown, the model trains with the selected setting (or the pinned one) and is calibrated, and a
planted leak fails the blocking check so that no model trains on it."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
from dagster import materialize

from fraud_assets.assets.backtest_report import backtest_report
from fraud_assets.assets.fraud_model import fraud_model
from fraud_assets.assets.model_selection import NO_LIKELY_LEAKS, model_selection
from fraud_assets.assets.training_set import TRAINING_SET_CHECKS, training_set
from fraud_core.features.spec import DEFAULT_SPEC
from fraud_core.model.artifact import load_version
from fraud_core.model.calibration import PLATT
from fraud_core.model.selection import DEFAULTS, read_selection
from fraud_core.storage import write_parquet

from ..configs import TRAINING_OPS, feature_resources

SELECTION = {
    "train_days": 20,
    "delay_days": 8,
    "test_days": 4,
    "folds": 2,
    "settings": [DEFAULTS, "shallow"],
}


BACKTEST = {"train_days": 20, "delay_days": 8, "test_days": 4, "folds": 2}


def _run_config(hyperparameters: str = "selected") -> dict:
    model = {**TRAINING_OPS["fraud_model"]["config"], "hyperparameters": hyperparameters}
    return {
        "ops": {
            "model_selection": {"config": SELECTION},
            "training_set": TRAINING_OPS["training_set"],
            "fraud_model": {"config": model},
        }
    }


def _metadata(result, asset: str) -> dict:
    [event] = [e for e in result.get_asset_materialization_events() if e.asset_key.path == [asset]]
    return {k: v.value for k, v in event.materialization.metadata.items()}


def test_the_model_trains_with_the_selected_setting(features_on_disk) -> None:
    layout = features_on_disk
    result = materialize(
        [model_selection, training_set, fraud_model, *TRAINING_SET_CHECKS],
        resources=feature_resources(),
        run_config=_run_config(),
    )
    assert result.success
    checks = {c.check_name: c.passed for c in result.get_asset_check_evaluations()}
    assert checks[NO_LIKELY_LEAKS] is True
    meta = _metadata(result, "model_selection")
    report = read_selection(layout.model_selection())
    assert report is not None and meta["selected"] == report.selected
    assert [f["test"] for f in report.folds] == ["2026-01-31..2026-02-03", "2026-01-27..2026-01-30"]
    assert report.evaluated() == [DEFAULTS, "shallow"]
    assert len(report.results) == 4  # 2 settings x 2 folds
    assert max(report.days_read) == "2026-02-03"  # the newest day less the label delay
    assert set(report.evidence) == set(DEFAULT_SPEC.feature_names)
    assert "data:image/png;base64," in meta["ap_by_setting_plot"]
    assert f"{DEFAULTS}_ap" in meta and "shallow_ap_std" in meta
    assert "| setting |" in layout.model_selection("md").read_text()

    model = _metadata(result, "fraud_model")
    assert model["hyperparameters"] == "selected"
    _, card = load_version(layout.models, model["version"])
    selection = card.params["selection"]
    assert selection["source"] == "selected" and selection["setting"] == report.selected
    assert selection["why"] == report.reason
    assert card.params["max_depth"] == report.selected_params()["max_depth"]
    # the served score is a calibrated probability, and the card says how
    assert card.calibration["method"] == PLATT and card.calibration["slope"] > 0
    assert 0 <= model["brier"] <= 0.25 and "brier_raw" in model
    assert "data:image/png;base64," in model["reliability_plot"]
    assert len(card.metrics["reliability"]) == 10
    contributions = model["mean_abs_contribution"]  # pred_contribs on the validation days
    assert len(contributions) == 20 and max(contributions.values()) > 0
    assert set(card.metrics["top_contributions"]) <= set(DEFAULT_SPEC.feature_names)

    pinned = materialize(
        [fraud_model],
        resources=feature_resources(),
        run_config={"ops": {"fraud_model": _run_config("pinned")["ops"]["fraud_model"]}},
    )
    _, card = load_version(layout.models, _metadata(pinned, "fraud_model")["version"])
    assert card.params["selection"]["source"] == "pinned"
    assert card.params["max_depth"] == TRAINING_OPS["fraud_model"]["config"]["max_depth"]

    # the backtest trains the selected setting beside the defaults in the same folds
    backtest = materialize(
        [backtest_report],
        resources=feature_resources(),
        run_config={"ops": {"backtest_report": {"config": {**BACKTEST, "compare": "selected"}}}},
    )
    meta = _metadata(backtest, "backtest_report")
    assert "selected_average_precision" in meta and "model_average_precision" in meta
    assert meta["selected_minus_default_ap"]["n"] == 2
    saved = json.loads(layout.backtest_report("json").read_text())
    assert saved["compared"] == "given"
    assert all(f["selected"]["setting"] == report.selected for f in saved["folds"])


def test_a_planted_leak_fails_the_check_and_no_model_trains_on_it(features_on_disk) -> None:
    layout = features_on_disk
    leak = DEFAULT_SPEC.feature_names[3]
    rng = np.random.default_rng(0)
    for day in layout.entity_features_days():
        path = layout.entity_features(day)
        frame = pd.read_parquet(path)
        frame[leak] = frame["is_fraud"].fillna(0) * 5 + rng.normal(0, 0.1, len(frame))
        write_parquet(frame, path)
    result = materialize(
        [model_selection, training_set, fraud_model],
        resources=feature_resources(),
        run_config=_run_config(),
        raise_on_error=False,
    )
    [check] = result.get_asset_check_evaluations()
    assert check.check_name == NO_LIKELY_LEAKS and not check.passed
    assert leak in check.description
    assert json.loads(json.dumps(check.metadata["leaks"].value))[0]["feature"] == leak
    materialized = {e.asset_key.path[0] for e in result.get_asset_materialization_events()}
    assert "fraud_model" not in materialized  # blocked by the failed check
