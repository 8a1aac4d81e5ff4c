"""The prequential backtest on small generated data: folds step back by the test length, metrics
are in range, the model beats a random ranking, and the result line parses."""

from __future__ import annotations

import re
from datetime import timedelta

import numpy as np
import pytest

from fraud_core.model.backtest import (
    MODEL,
    RULES,
    BacktestConfig,
    rules_score,
    run_backtest,
)

from .model_data import CUTOFF, FAST, START, TRAINING, small_features, source


@pytest.fixture(scope="module")
def report(dask_client):
    config = BacktestConfig(
        end=CUTOFF - timedelta(days=1), train_days=25, delay_days=10, test_days=5, folds=2
    )
    return run_backtest(dask_client, source, config, TRAINING, FAST, first_day=START)


def test_folds_step_back_by_the_test_length(report) -> None:
    assert [f.cutoff for f in report.folds] == ["2026-02-14", "2026-02-09"]
    assert [f.test for f in report.folds] == [
        "2026-02-14..2026-02-18",
        "2026-02-09..2026-02-13",
    ]
    for fold in report.folds:
        # training ends delay_days before the cutoff (the fold's first assessed day)
        validation_last = fold.validation.split("..")[1]
        assert validation_last < fold.cutoff
        assert fold.test_rows > 1_000 and fold.test_fraud > 10


def test_metrics_are_in_range_and_the_model_learns(report) -> None:
    for fold in report.folds:
        for system in (MODEL, RULES):
            m = fold.metrics[system]
            for key in ("average_precision", "roc_auc", "customer_precision_at_100"):
                assert 0.0 <= m[key] <= 1.0
            assert m["customer_precision_at_100"] <= fold.ceiling_cp + 1e-12
        model = fold.metrics[MODEL]
        assert model["average_precision"] > 5 * model["fraud_rate"]
        assert model["roc_auc"] > 0.8
    summary = report.summary()
    assert summary[MODEL]["average_precision"][0] > summary[RULES]["average_precision"][0]
    line = report.result_line()
    assert re.fullmatch(r"RESULT ap=0\.\d{4} auc=0\.\d{4} cp100=0\.\d{4}", line)
    assert "| model |" in report.to_markdown()


def test_rules_score_ranks_obvious_fraud_signals_higher() -> None:
    frame = next(iter(small_features().values())).head(5).copy()
    frame["order_amount"] = [10.0, 500.0, 10.0, 10.0, 10.0]
    frame["customer_id__first_seen"] = [0, 1, 0, 0, 0]
    scores = rules_score(frame)
    assert scores[1] == scores.max()
    assert np.all((scores >= 0) & (scores < 1))


def test_the_rules_baseline_is_written_over_the_contracts_features() -> None:
    from fraud_core.contract import SHIPPED, load_contract
    from fraud_core.features.offline import advance
    from fraud_core.model.backtest import baseline_rules, rules_text

    from .test_contract_features import contract_orders

    assert "3+ customers on the IP in 24 h" in rules_text()  # the built-in contract's own
    spec = load_contract(SHIPPED / "card_present.yaml").spec
    texts = [r.text for r in baseline_rules(spec)]
    assert "a card's first order" in texts and "a terminal never seen before" in texts
    assert not any("IP" in t or "e-mail" in t for t in texts)
    orders = contract_orders(spec, 200, 3, pool=5)
    features, _ = advance({}, orders, int(orders["order_date"].max().timestamp()) + 1, spec)
    frame = features.assign(order_amount=orders["order_amount"].to_numpy())
    scores = rules_score(frame, spec)
    assert np.all((scores >= 0) & (scores < 1))
    first = frame["card__first_seen"].to_numpy() == 1
    assert scores[first].mean() > scores[~first].mean()  # a first order scores a point more
