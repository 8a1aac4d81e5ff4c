"""Training with xgboost.dask on a real (in-process) Dask cluster, the model artifact round trip,
and the promotion gate refusing a model that learned nothing."""

from __future__ import annotations

import json

import numpy as np
import pytest

from fraud_core.features.spec import DEFAULT_SPEC
from fraud_core.model.artifact import (
    MODEL_FILE,
    ModelCard,
    ModelIntegrityError,
    current_version,
    load_version,
    save_version,
    set_current,
)
from fraud_core.model.dataset import build_training_set, plan_window
from fraud_core.model.evaluate import average_precision, feature_importance
from fraud_core.model.promotion import (
    GatePolicy,
    gate_candidate,
    promote,
    read_decision,
    record_decision,
)
from fraud_core.model.train import predict, train_model

from .model_data import CUTOFF, FAST, START, TRAINING, source

NAMES = DEFAULT_SPEC.feature_names


@pytest.fixture(scope="module")
def training_set():
    return build_training_set(source, plan_window(CUTOFF, TRAINING, first_day=START), TRAINING)


@pytest.fixture(scope="module")
def trained(dask_client, training_set):
    return train_model(dask_client, training_set.train, training_set.validation, NAMES, FAST)


def _card(result, ts) -> ModelCard:
    scores = predict(result.booster, ts.validation, NAMES)
    ap = average_precision(ts.validation["label"].to_numpy(), scores)
    return ModelCard(
        version="",
        feature_names=NAMES,
        thresholds={"review": 0.3, "decline": 0.9},
        training_window=ts.window.to_dict(),
        metrics={"validation": {"average_precision": ap}},
    )


def test_training_learns_fraud_on_small_data(trained, training_set) -> None:
    validation = training_set.validation
    scores = predict(trained.booster, validation, NAMES)
    base_rate = validation["label"].mean()
    ap = average_precision(validation["label"].to_numpy(), scores)
    assert ap > max(0.4, 10 * base_rate)
    assert trained.booster.num_features() == len(NAMES)
    assert trained.booster.feature_names == NAMES
    # cut at the best iteration: the saved model is the early-stopped one
    assert trained.booster.num_boosted_rounds() == trained.best_iteration + 1
    assert trained.rounds <= FAST.num_boost_round
    assert trained.n_train == len(training_set.train)
    assert set(trained.history) == {"aucpr"}


def test_model_and_card_round_trip_without_pickle(tmp_path, trained, training_set) -> None:
    card = save_version(tmp_path, trained.booster, _card(trained, training_set))
    folder = tmp_path / card.version
    assert sorted(p.name for p in folder.iterdir()) == ["card.json", MODEL_FILE]
    raw = (folder / MODEL_FILE).read_bytes()
    assert raw[:1] == b"{"  # UBJSON object, not a pickle stream (b"\x80")
    assert json.loads((folder / "card.json").read_text())["feature_names"] == NAMES

    booster, loaded = load_version(tmp_path, card.version)
    assert loaded == card
    validation = training_set.validation
    assert np.array_equal(
        predict(booster, validation, NAMES), predict(trained.booster, validation, NAMES)
    )

    tampered = bytearray(raw)
    tampered[len(tampered) // 2] ^= 0x01
    (folder / MODEL_FILE).write_bytes(bytes(tampered))
    with pytest.raises(ModelIntegrityError, match="checksum"):
        load_version(tmp_path, card.version)


def test_gate_refuses_a_model_trained_on_shuffled_labels(
    tmp_path, dask_client, trained, training_set
) -> None:
    registry = tmp_path / "models"
    champion = save_version(registry, trained.booster, _card(trained, training_set))
    set_current(registry, champion.version, reason="first model")

    shuffled = training_set.train.copy()
    shuffled["label"] = np.random.default_rng(0).permutation(shuffled["label"].to_numpy())
    noise = train_model(dask_client, shuffled, training_set.validation, NAMES, FAST)
    candidate = save_version(registry, noise.booster, _card(noise, training_set))
    assert candidate.version != champion.version

    # floor off: refused because it is worse than the champion on the same orders
    decision = gate_candidate(
        registry, candidate.version, training_set.validation, GatePolicy(0.0, 0.01)
    )
    assert not decision.passed
    assert decision.champion_version == champion.version
    assert decision.champion_ap > decision.candidate_ap + 0.2
    assert decision.ap_advantage_upper is not None and decision.ap_advantage_upper < -0.1
    assert "worse than champion" in decision.summary
    # both models' figures on the same orders, each at its own thresholds, for the UI
    figures = decision.comparison
    assert set(figures) == {"candidate", "champion"}
    assert figures["champion"]["average_precision"] == pytest.approx(decision.champion_ap)
    assert figures["candidate"]["average_precision"] == pytest.approx(decision.candidate_ap)
    assert (
        figures["champion"]["orders"]
        == figures["candidate"]["orders"]
        == len(training_set.validation)
    )
    assert figures["champion"]["decline_threshold"] == champion.thresholds["decline"]
    assert {"roc_auc", "customer_precision_at_100", "review_share"} <= set(figures["champion"])
    record_decision(registry, decision)
    assert promote(registry, decision) == champion.version
    assert current_version(registry) == champion.version
    assert read_decision(registry, candidate.version).passed is False
    assert read_decision(registry, candidate.version).comparison == figures

    # with the default floor it is refused on its own merits too
    alone = gate_candidate(registry, candidate.version, training_set.validation, GatePolicy())
    assert not alone.passed and "below the floor" in alone.summary

    # the champion judged against itself passes and stays
    same = gate_candidate(registry, champion.version, training_set.validation, GatePolicy())
    assert same.passed
    assert promote(registry, same) == champion.version


def test_switched_off_features_are_never_split_on(dask_client, training_set) -> None:
    """The contract's switched-off features are blanked for training: the model keeps every
    column but no tree uses them (the strongest ones here, so the test can fail)."""
    strongest = list(feature_importance(trained_on(dask_client, training_set, ())).keys())[:2]
    result = trained_on(dask_client, training_set, tuple(strongest))
    used = set(result.get_score(importance_type="total_gain"))
    assert used and not used & set(strongest)
    assert result.feature_names == NAMES


def trained_on(dask_client, ts, switched_off):
    return train_model(dask_client, ts.train, ts.validation, NAMES, FAST, switched_off).booster
