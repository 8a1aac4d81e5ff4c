"""The compiled tree ensemble and the scorer: XGBoost's margins and probabilities, contributions
that add up to the margin and equal XGBoost's own (Saabas) decomposition, and models refused for
serving."""

from __future__ import annotations

import numpy as np
import pytest
import xgboost as xgb

from fraud_core.features.spec import DEFAULT_SPEC
from fraud_core.features.state import EntityState
from fraud_core.model.artifact import ModelCard, ModelIntegrityError
from fraud_core.scoring.entity import depends_on_order, entity_features_at
from fraud_core.scoring.scorer import Scorer
from fraud_core.scoring.trees import TreeEnsemble

F = len(DEFAULT_SPEC.feature_names)


def _data(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.lognormal(0, 1.5, size=(n, F))
    x[rng.random(x.shape) < 0.2] = np.nan
    y = (
        (np.nan_to_num(x[:, 0]) * np.nan_to_num(x[:, 5], nan=1.0)) + rng.normal(size=n) > 3
    ).astype(int)
    return x, y


@pytest.fixture(scope="module")
def booster() -> xgb.Booster:
    x, y = _data(3_000)
    params = {"max_depth": 5, "eta": 0.2, "objective": "binary:logistic", "nthread": 1, "seed": 1}
    return xgb.train(params, xgb.DMatrix(x, y), 40)


def _card(**overrides) -> ModelCard:
    fields = {
        "version": "v1",
        "feature_names": DEFAULT_SPEC.feature_names,
        "thresholds": {"review": 0.3, "decline": 0.7},
    }
    return ModelCard(**(fields | overrides))


def test_trees_reproduce_xgboost(booster) -> None:
    x, _ = _data(500, seed=3)
    x[0, :] = np.inf  # extremes take XGBoost's path too
    trees = TreeEnsemble.from_booster(booster)
    leaves = trees.leaves(x)
    np.testing.assert_allclose(  # the margins the served (calibrated) score is made from
        trees.margin(leaves), booster.inplace_predict(x, predict_type="margin"), rtol=0, atol=1e-6
    )
    contrib = trees.contributions(x, leaves)
    margin = booster.inplace_predict(x, predict_type="margin")
    base = margin - trees.leaf_sum(x)
    assert np.ptp(base) < 1e-4  # the same base score for every row
    np.testing.assert_allclose(contrib.sum(axis=1) + trees.root_value, trees.leaf_sum(x), atol=1e-9)
    theirs = booster.predict(xgb.DMatrix(x[1:41]), pred_contribs=True, approx_contribs=True)
    np.testing.assert_allclose(contrib[1:41], theirs[:, :F], atol=1e-5)


def test_scorer_scores_and_explains(booster) -> None:
    scorer = Scorer(booster, _card())
    assert scorer.exact_trees
    x, _ = _data(64, seed=4)
    batch = scorer.score(x)
    np.testing.assert_allclose(batch.scores, booster.inplace_predict(x), rtol=0, atol=1e-6)
    assert batch.decisions == [_card().decision(s) for s in batch.scores]
    for row, reasons in zip(x, batch.reasons, strict=True):
        assert 0 < len(reasons) <= 3
        sizes = [abs(r.contribution) for r in reasons]
        assert sizes == sorted(sizes, reverse=True)
        for r in reasons:
            j = DEFAULT_SPEC.feature_names.index(r.feature)
            assert (np.isnan(r.value) and np.isnan(row[j])) or r.value == row[j]


def test_a_model_for_other_features_is_refused(booster) -> None:
    names = list(DEFAULT_SPEC.feature_names)
    names[0], names[1] = names[1], names[0]
    with pytest.raises(ModelIntegrityError, match="feature spec"):
        Scorer(booster, _card(feature_names=names))
    with pytest.raises(ModelIntegrityError, match="threshold"):
        Scorer(booster, _card(thresholds={"review": 0.5}))


def test_entity_features_leave_out_what_depends_on_the_order() -> None:
    state = EntityState(
        t_s=[1_000, 2_000],
        cents=[500, 700],
        counterparts={"email": ["a@x", "b@x"], "ip_addr": ["1.1.1.1", "1.1.1.1"]},
        order_ids=["o1", "o2"],
        label_s=[np.iinfo(np.int64).max] * 2,
    )
    values = entity_features_at(state, "customer_id", 2_500)
    assert values["customer_id__order_count__1h"] == 2.0
    assert values["customer_id__seconds_since_prev"] == 500.0
    assert not any(depends_on_order(name) for name in values)
    assert "customer_id__amount_rel_mean__last10" not in values


def test_the_spec_declares_which_entity_features_depend_on_the_order() -> None:
    for entity in DEFAULT_SPEC.entities:
        kind, n = entity.kind, DEFAULT_SPEC.history_n
        declared = {f.name for f in DEFAULT_SPEC.entity_features(kind) if f.depends_on_order}
        assert declared == {
            f"{kind}__amount_rel_mean__last{n}",
            *(f"{kind}__same_{c}_as_last" for c in entity.counterparts),
            *(f"{kind}__{c}_seen_in_last{n}" for c in entity.counterparts),
        }
    assert all(f.depends_on_order for f in DEFAULT_SPEC.order_features)
