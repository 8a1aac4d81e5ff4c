"""The registry's integrity rules: a card edited after training is refused, versions are names and
never paths, and decision thresholds are probabilities in order, when written and when loaded."""

from __future__ import annotations

import json
import math
import shutil

import numpy as np
import pytest
import xgboost as xgb

from fraud_core.model.artifact import (
    CARD_FILE,
    CURRENT_FILE,
    ModelCard,
    ModelIntegrityError,
    current_version,
    load_version,
    read_card,
    save_version,
    set_current,
)

NAMES = ["amount", "orders_24h", "emails_7d"]
THRESHOLDS = {"review": 0.3, "decline": 0.8}


@pytest.fixture(scope="module")
def booster() -> xgb.Booster:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(200, len(NAMES)))
    y = (x[:, 0] + rng.normal(size=200) > 1).astype(int)
    params = {"max_depth": 2, "objective": "binary:logistic", "nthread": 1, "seed": 0}
    return xgb.train(params, xgb.DMatrix(x, y, feature_names=NAMES), 5)


def _card(thresholds: dict | None = None, version: str = "") -> ModelCard:
    return ModelCard(
        version=version,
        feature_names=list(NAMES),
        thresholds=dict(THRESHOLDS if thresholds is None else thresholds),
        metrics={"validation": {"average_precision": 0.5, "roc_auc": float("nan")}},
    )


def _edit_card(registry, version: str, **changes) -> None:
    path = registry / version / CARD_FILE
    data = json.loads(path.read_text())
    data.update(changes)
    path.write_text(json.dumps(data, indent=2))


def test_a_saved_version_round_trips(tmp_path, booster) -> None:
    card = save_version(tmp_path, booster, _card())
    _, loaded = load_version(tmp_path, card.version)
    assert loaded.thresholds == THRESHOLDS and loaded.version == card.version
    assert read_card(tmp_path, card.version).version == card.version


@pytest.mark.parametrize(
    "changes",
    [
        {"thresholds": {"review": 0.0, "decline": 0.0}},  # declines every order
        {"feature_names": ["amount", "orders_24h", "emails_30d"]},
        {"notes": "edited by hand"},
        {"metrics": {"validation": {"average_precision": 0.99}}},
        {"extra": "a field the card never had"},
    ],
    ids=["thresholds", "features", "notes", "metrics", "new-field"],
)
def test_a_card_edited_after_training_is_refused_naming_the_file(
    tmp_path, booster, changes
) -> None:
    card = save_version(tmp_path, booster, _card())
    _edit_card(tmp_path, card.version, **changes)
    card_path = tmp_path / card.version / CARD_FILE
    with pytest.raises(ModelIntegrityError, match="edited after training") as err:
        load_version(tmp_path, card.version)
    assert str(card_path) in str(err.value)
    with pytest.raises(ModelIntegrityError, match="edited after training"):
        read_card(tmp_path, card.version)


def test_a_card_from_before_card_checksums_is_refused_with_a_retrain_hint(
    tmp_path, booster
) -> None:
    card = save_version(tmp_path, booster, _card())
    path = tmp_path / card.version / CARD_FILE
    data = json.loads(path.read_text())
    data.pop("card_sha256", None)  # what the code before card checksums wrote
    path.write_text(json.dumps(data, indent=2, sort_keys=True))
    with pytest.raises(ModelIntegrityError, match=r"no card checksum.*train") as err:
        load_version(tmp_path, card.version)
    assert str(path) in str(err.value)


def test_a_version_copied_under_another_name_is_refused(tmp_path, booster) -> None:
    card = save_version(tmp_path, booster, _card())
    other = "0123456789abcdef"
    shutil.copytree(tmp_path / card.version, tmp_path / other)
    with pytest.raises(ModelIntegrityError, match=f"card of {card.version}"):
        load_version(tmp_path, other)


BAD_VERSIONS = [
    "../outside",
    "..",
    "a/b",
    "/etc",
    "",
    "0123456789ABCDEF",  # upper case: the registry writes lower-case hex
    "0123456789abcde",  # 15 digits
    "0123456789abcdef0",  # 17 digits
    "0123456789abcdeg",
    "0123456789abcdef\n",
]


def test_a_current_pointer_outside_the_registry_is_refused(tmp_path, booster) -> None:
    registry, outside = tmp_path / "models", tmp_path / "outside"
    served = save_version(registry, booster, _card())
    set_current(registry, served.version)
    stray = save_version(outside, booster, _card({"review": 0.0, "decline": 0.0}))
    (registry / CURRENT_FILE).write_text(json.dumps({"version": f"../outside/{stray.version}"}))
    with pytest.raises(ModelIntegrityError, match="not a registry version"):
        current_version(registry)


@pytest.mark.parametrize("pointer", [*BAD_VERSIONS, 7, None, ["a"]], ids=repr)
def test_a_current_pointer_that_is_not_a_version_name_is_refused(tmp_path, pointer) -> None:
    (tmp_path / CURRENT_FILE).write_text(json.dumps({"version": pointer}))
    with pytest.raises(ModelIntegrityError, match="not a registry version"):
        current_version(tmp_path)


@pytest.mark.parametrize("version", BAD_VERSIONS, ids=repr)
def test_a_version_that_is_not_a_name_is_refused_for_load_and_rollback(
    tmp_path, booster, version
) -> None:
    registry, outside = tmp_path / "models", tmp_path / "outside"
    stray = save_version(outside, booster, _card())
    served = save_version(registry, booster, _card())
    set_current(registry, served.version)
    if version == "../outside":  # make the path one that would load
        version = f"../outside/{stray.version}"
    with pytest.raises(ModelIntegrityError, match="not a registry version"):
        load_version(registry, version)
    with pytest.raises(ModelIntegrityError, match="not a registry version"):
        read_card(registry, version)
    with pytest.raises(ModelIntegrityError, match="not a registry version"):
        set_current(registry, version, reason="rollback")
    assert current_version(registry) == served.version
    if version:  # an empty version asks save_version to name it
        with pytest.raises(ModelIntegrityError, match="not a registry version"):
            save_version(registry, booster, _card(version=version))


BAD_THRESHOLDS = [
    {"review": -0.1, "decline": 0.5},
    {"review": 0.3, "decline": 1.5},
    {"review": 0.9, "decline": 0.5},  # review above decline
    {"review": math.nan, "decline": 0.5},
    {"review": 0.3, "decline": math.nan},
    {"review": 0.3, "decline": math.inf},
    {"review": 0.3},
    {"review": 0.3, "decline": 0.7, "block": 0.9},
    {"review": "0.3", "decline": 0.7},
    {"review": True, "decline": True},
]


@pytest.mark.parametrize("thresholds", BAD_THRESHOLDS, ids=repr)
def test_bad_thresholds_are_refused_when_a_card_is_written(tmp_path, booster, thresholds) -> None:
    with pytest.raises(ValueError, match="threshold"):
        save_version(tmp_path, booster, _card(thresholds))
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    "thresholds",
    [
        {"review": 0.0, "decline": 0.0},
        {"review": 0.5, "decline": 0.5},
        {"review": 0.1, "decline": 1},
    ],
    ids=repr,
)
def test_thresholds_at_the_edges_are_accepted(tmp_path, booster, thresholds) -> None:
    card = save_version(tmp_path, booster, _card(thresholds))
    assert load_version(tmp_path, card.version)[1].thresholds == thresholds


@pytest.mark.parametrize("thresholds", BAD_THRESHOLDS[:6], ids=repr)
def test_bad_thresholds_are_refused_when_a_card_is_loaded(tmp_path, booster, thresholds) -> None:
    """Even when the card's checksum is recomputed, as a careful forger would."""
    from fraud_core.model.artifact import card_sha256

    card = save_version(tmp_path, booster, _card())
    path = tmp_path / card.version / CARD_FILE
    data = json.loads(path.read_text())
    data["thresholds"] = thresholds
    data["card_sha256"] = card_sha256(data)
    path.write_text(json.dumps(data))
    with pytest.raises(ModelIntegrityError, match="threshold") as err:
        load_version(tmp_path, card.version)
    assert str(path) in str(err.value)


def test_a_pointer_or_card_that_is_not_utf8_is_refused_not_a_traceback(tmp_path, booster) -> None:
    card = save_version(tmp_path, booster, _card())
    (tmp_path / CURRENT_FILE).write_bytes(b'{"version": "\xff\xfe"}')
    with pytest.raises(ModelIntegrityError, match=CURRENT_FILE):
        current_version(tmp_path)
    (tmp_path / card.version / CARD_FILE).write_bytes(b"\xff not a card")
    with pytest.raises(ModelIntegrityError, match=CARD_FILE):
        read_card(tmp_path, card.version)


def test_a_model_records_its_contract_and_another_contract_refuses_it(tmp_path, booster) -> None:
    from fraud_core.contract import SHIPPED, contract_from_text, load_contract

    builtin = load_contract(SHIPPED / "ecommerce.yaml")
    card = _card()
    card.contract = builtin.record()
    saved = save_version(tmp_path, booster, card)
    assert read_card(tmp_path, saved.version).contract["digest"] == builtin.digest

    # a contract that only renames the landing columns serves the same models
    export = load_contract(SHIPPED / "ecommerce_export.yaml")
    assert load_version(tmp_path, saved.version, export)[1].version == saved.version

    text = (SHIPPED / "ecommerce.yaml").read_text()
    other = contract_from_text(
        text.replace("name: ecommerce", "name: shorter").replace("history_n: 10", "history_n: 5")
    )
    with pytest.raises(
        ModelIntegrityError,
        match=rf"model {saved.version} was trained under contract 'ecommerce', this platform "
        r"runs 'shorter': they differ in features\.history_n$",
    ):
        load_version(tmp_path, saved.version, other)

    # cards from before contracts were recorded still load
    legacy = save_version(tmp_path / "legacy", booster, _card())
    assert load_version(tmp_path / "legacy", legacy.version, other)[1].contract == {}
