"""training_set -> fraud_model -> gate -> deployed_model through Dagster `materialize` on generated
data and an in-process Dask cluster: the first model is deployed; a model trained on shuffled
labels is refused by the blocking gate and the champion keeps serving; rollback re-points
`current` from Dagster config and from the CLI."""

from __future__ import annotations

import dataclasses
from datetime import timedelta

import numpy as np
import pandas as pd
import pytest
from dagster import materialize

from fraud_assets.assets.deployed_model import (
    CANDIDATE_NOT_WORSE,
    DEPLOYED_MODEL_CHECKS,
    PromotionGate,
    deployed_model,
    fraud_model_not_worse_than_champion,
)
from fraud_assets.assets.fraud_model import FraudModelConfig, fraud_model
from fraud_assets.assets.training_set import (
    TRAINING_SET_CHECKS,
    read_latest_manifest,
    training_set,
)
from fraud_cli.main import main as fraud_cli
from fraud_core import audit
from fraud_core.model.artifact import (
    CHALLENGER_FILE,
    current_version,
    list_versions,
    load_version,
)
from fraud_core.model.dataset import TRAIN, VALIDATION, time_rule_violations
from fraud_core.model.decisions import ThresholdTargets
from fraud_core.model.promotion import candidate_version, read_decision
from fraud_core.model.settings import describe
from fraud_core.model.train import TrainParams
from fraud_core.storage import write_parquet

from ..configs import MODEL_DATA as DATA
from ..configs import START, TRAINING_OPS, feature_resources

RUN_CONFIG = {"ops": TRAINING_OPS}


FIGURES = [
    "average_precision",
    "roc_auc",
    "customer_precision_at_100",
    *(
        f"{d}_{w}"
        for d in ("decline", "review")
        for w in ("threshold", "precision", "recall", "share")
    ),
]


def _resources(floor: float = 0.2) -> dict:
    # the data folder is $FRAUD_DATA_DIR, set by `data_dir`
    return feature_resources(gate=PromotionGate(min_average_precision=floor, tolerance=0.01))


def _metadata(result, asset: str) -> dict:
    [event] = [e for e in result.get_asset_materialization_events() if e.asset_key.path == [asset]]
    return {k: v.value for k, v in event.materialization.metadata.items()}


def test_train_gate_deploy_and_rollback(features_on_disk, capsys) -> None:
    layout = features_on_disk
    registry = layout.models

    # 1. the first model: trained, checked, deployed
    first = materialize(
        [training_set, fraud_model, deployed_model, *TRAINING_SET_CHECKS, *DEPLOYED_MODEL_CHECKS],
        resources=_resources(),
        run_config=RUN_CONFIG,
    )
    assert first.success
    checks = {c.check_name: c.passed for c in first.get_asset_check_evaluations()}
    assert checks == {
        "labels_known_at_cutoff": True,
        "both_classes_in_train_and_validation": True,
        CANDIDATE_NOT_WORSE: True,
        "deployed_model_verifies": True,
    }
    ts = _metadata(first, "training_set")
    assert ts["cutoff"] == str(START + timedelta(days=DATA.days))
    assert ts["validation_days"] == "2026-01-28..2026-02-03"  # the last 7 days 8+ days old
    # 42 days are too short to skip the features' 37-day warm-up: it is cut short so that 14
    # training days remain (not the 22 days from 2026-01-05 the window alone would give)
    assert ts["train_days"] == "2026-01-13..2026-01-26"
    assert ts["warmup_skipped"] is False and "too short" in ts["warmup"]
    model = _metadata(first, "fraud_model")
    assert model["average_precision"] > 0.4
    assert 0.5 < model["roc_auc"] <= 1.0
    assert model["decline_threshold"] >= model["review_threshold"]
    assert "**AP " in model["summary"] and len(model["summary"]) <= 1_000
    assert model["average_precision"] == round(model["average_precision"], 4)
    assert "data:image/png;base64," in model["pr_curve_plot"]
    assert "data:image/png;base64," in model["feature_importance_plot"]
    champion = model["version"]
    assert current_version(registry) == champion
    deployed = _metadata(first, "deployed_model")
    assert deployed["action"] == "promoted"
    # the served model's quality in the UI: the same rounded figures as fraud_model's
    for key in FIGURES:
        assert deployed[key] == pytest.approx(model[key], nan_ok=True), key
        assert np.isnan(deployed[key]) or deployed[key] == round(deployed[key], 4), key
    for key in ("train_days", "validation_days", "cutoff"):
        assert deployed[key] == model[key] == ts[key], key
    summary = deployed["summary"]
    assert len(summary) <= 1_000
    assert summary.startswith(f"**Serving `{champion[:8]}`** · promoted")
    assert "Gate **passed**" in summary and "no champion yet" in summary
    assert f"| same validation orders | candidate `{champion[:8]}` |" in summary
    assert f"| AP | {model['average_precision']:.3f} |" in summary
    assert "Top features: `" in summary
    _, card = load_version(registry, champion)
    assert card.training_window["cutoff"] == ts["cutoff"]
    assert card.training_window["train_first"] == "2026-01-13"  # the drift reference's start
    assert card.data_versions["training_set"]["fingerprint"] == ts["fingerprint"]
    assert set(card.thresholds) == {"review", "decline"}
    assert card.contract["name"] == "ecommerce"  # the contract it was trained under
    assert card.contract["terms"]["features"]["history_n"] == 10
    assert time_rule_violations(read_latest_manifest(layout)) == {
        "label_after_cutoff": 0,
        "label_without_date": 0,
        "order_after_maturity": 0,
    }

    # 2. a model trained on shuffled labels: refused, the champion keeps serving
    manifest = read_latest_manifest(layout)
    rng = np.random.default_rng(1)
    for path in manifest.files[TRAIN]:
        frame = pd.read_parquet(path)
        frame["label"] = rng.permutation(frame["label"].to_numpy())
        write_parquet(frame, path)
    second = materialize(
        [fraud_model, deployed_model, fraud_model_not_worse_than_champion],
        resources=_resources(floor=0.0),  # refused for being worse, not for the floor
        run_config={"ops": {"fraud_model": RUN_CONFIG["ops"]["fraud_model"]}},
        raise_on_error=False,
    )
    [gate] = second.get_asset_check_evaluations()
    assert not gate.passed
    assert "worse than champion" in gate.description
    materialized = {e.asset_key.path[0] for e in second.get_asset_materialization_events()}
    assert materialized == {"fraud_model"}  # deployed_model was blocked
    refused = candidate_version(registry)
    assert refused != champion
    assert current_version(registry) == champion
    assert read_decision(registry, refused).passed is False
    assert {c.version for c in list_versions(registry)} == {champion, refused}

    # deployed_model on its own does not slip the refused model through either
    alone = materialize([deployed_model], resources=_resources(floor=0.0))
    kept = _metadata(alone, "deployed_model")
    assert kept["action"] == "refused"
    assert current_version(registry) == champion
    # the refused candidate is scored in shadow beside the champion from now on, audited
    assert current_version(registry, CHALLENGER_FILE) == refused
    [moved] = audit.read(layout.audit, action="model.challenger")
    assert moved["after"] == refused and moved["before"] is None and "shadow" in moved["reason"]
    promoted = audit.read(layout.audit, action="model.promote")
    assert [r["after"] for r in promoted] == [champion]
    # the candidate and the champion side by side, on the same validation orders
    summary = kept["summary"]
    assert len(summary) <= 1_000 and "Gate **refused**" in summary and "vs the champion" in summary
    header = f"| same validation orders | candidate `{refused[:8]}` | champion `{champion[:8]}` |"
    assert header in summary
    assert all(
        line.count("|") == 4
        for line in summary.splitlines()
        if line.startswith(("| AP |", "| ROC AUC |", "| decline", "| review"))
    )
    assert kept["version"] == champion and kept["average_precision"] == model["average_precision"]

    # 3. rollback (here: to any version) from Dagster config, then back from the CLI
    pinned = materialize(
        [deployed_model],
        resources=_resources(),
        run_config={"ops": {"deployed_model": {"config": {"version": refused, "reason": "test"}}}},
    )
    rollback = _metadata(pinned, "deployed_model")
    assert rollback["action"] == "rollback"
    assert rollback["summary"].startswith(f"**Serving `{refused[:8]}`** · rollback")
    assert "| own validation days |" in rollback["summary"]
    assert len(rollback["summary"]) <= 1_000
    assert current_version(registry) == refused
    assert fraud_cli(["model", "rollback", champion, "--reason", "back"]) == 0
    assert current_version(registry) == champion
    assert fraud_cli(["model", "list"]) == 0
    out = capsys.readouterr().out
    assert f"* {champion}" in out and "refused" in out
    assert fraud_cli(["model", "rollback", "no-such-version"]) == 2


def test_a_training_set_that_breaks_a_blocking_rule_never_becomes_the_latest(
    features_on_disk,
) -> None:
    """Issue 12, finding 2 (training inputs): `fraud_model` reads the latest training set, which
    moved before the blocking checks ran; a set without fraud in validation must not."""
    layout = features_on_disk
    training_only = {"ops": {"training_set": RUN_CONFIG["ops"]["training_set"]}}
    good = materialize(
        [training_set, *TRAINING_SET_CHECKS], resources=_resources(), run_config=training_only
    )
    assert good.success
    latest = read_latest_manifest(layout)
    # The validation days lose their fraud labels (a broken label export, say).
    for day in latest.training_window.days(VALIDATION):
        frame = pd.read_parquet(layout.entity_features(day))
        frame["is_fraud"] = 0
        write_parquet(frame, layout.entity_features(day))

    bad = materialize(
        [training_set, *TRAINING_SET_CHECKS],
        resources=_resources(),
        run_config=training_only,
        raise_on_error=False,
    )

    assert not bad.success
    assert read_latest_manifest(layout).folder == latest.folder


def test_the_config_is_train_params_and_threshold_targets_declared_once() -> None:
    """Every hyperparameter and target shows in the Launchpad with fraud_core's default and
    description; a run's config reaches training unchanged."""
    fields = fraud_model.op.config_schema.config_type.fields
    for cls in (TrainParams, ThresholdTargets):
        for f in dataclasses.fields(cls):
            assert fields[f.name].default_value == f.default, f.name
            assert fields[f.name].description == describe(f) and describe(f), f.name
    assert set(fields) == {
        f.name for cls in (TrainParams, ThresholdTargets) for f in dataclasses.fields(cls)
    } | {"hyperparameters"}  # selected (model_selection's) or pinned (these fields)
    assert fields["hyperparameters"].default_value == "selected"
    assert FraudModelConfig().params() == TrainParams()
    assert FraudModelConfig().targets() == ThresholdTargets()
    config = FraudModelConfig(**RUN_CONFIG["ops"]["fraud_model"]["config"], review_share=0.02)
    assert config.params() == TrainParams(**RUN_CONFIG["ops"]["fraud_model"]["config"])
    assert config.targets() == ThresholdTargets(review_share=0.02)
