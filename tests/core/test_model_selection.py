"""Prequential model selection on small data (2 settings x 2 folds): it finds a setting that
reaches a planted signal the baseline cannot, it never reads a day after its last assessment day
(and, nested in a backtest, never a day of the fold's assessment window), and a planted leaking
feature is caught while the honest features are not."""

from __future__ import annotations

from dataclasses import replace
from datetime import date, timedelta

import numpy as np
import pandas as pd
import pytest

from fraud_core.features.spec import DEFAULT_SPEC
from fraud_core.model.backtest import MODEL, SELECTED, BacktestConfig, run_backtest
from fraud_core.model.dataset import resample_negatives
from fraud_core.model.selection import (
    DEFAULTS,
    SelectionConfig,
    Setting,
    paired_difference,
    run_selection,
)
from fraud_core.model.train import TrainParams

from .model_data import CUTOFF, FAST, START, TRAINING, small_features, source

STUMPS = TrainParams(
    max_depth=1, learning_rate=0.3, num_boost_round=40, early_stopping_rounds=10, max_bin=64
)
DEEPER = Setting("deeper", (("max_depth", 4),))
LAST = CUTOFF - timedelta(days=1)
CONFIG = SelectionConfig(
    end=LAST - timedelta(days=10), train_days=25, delay_days=10, test_days=4, folds=2
)


def _planted(name_a: str, name_b: str, name_c: str):
    """The generated days with three features replaced by noise and the labels by an
    interaction of them: fraud when exactly one of a, b is above 0.5 and c above 0.8. A sum
    of one-feature trees cannot express "exactly one"; trees of depth 3 can."""
    rng = np.random.default_rng(5)
    days: dict[date, pd.DataFrame] = {}
    for day, frame in small_features().items():
        frame = frame.copy()
        a, b, c = (rng.random(len(frame)) for _ in range(3))
        frame[name_a], frame[name_b], frame[name_c] = a, b, c
        fraud = ((a > 0.5) != (b > 0.5)) & (c > 0.8)
        frame["is_fraud"] = fraud.astype(np.float64)
        frame["label_date"] = frame["order_date"].where(fraud) + pd.Timedelta(days=1)
        days[day] = frame
    return days.get


def test_selection_finds_the_setting_that_reaches_a_planted_interaction(dask_client) -> None:
    names = DEFAULT_SPEC.feature_names
    planted = _planted(names[-1], names[-2], names[-3])
    report = run_selection(
        dask_client,
        planted,
        replace(CONFIG, evidence=False),
        TRAINING,
        STUMPS,
        (Setting(DEFAULTS), DEEPER),
        first_day=START,
    )
    summary = report.summary()
    assert report.not_evaluated == []
    assert report.selected == "deeper", report.reason
    assert (
        summary["deeper"]["average_precision"][0] > summary[DEFAULTS]["average_precision"][0] + 0.2
    )
    assert report.selected_params()["max_depth"] == 4
    assert len(report.per_fold("deeper")) == 2
    gain = summary["deeper"]["ap_gain"]
    assert gain["n"] == 2 and gain["mean"] > 0.2
    assert "deeper" in report.to_markdown() and report.plot_png().startswith(b"\x89PNG")


def test_a_setting_no_better_than_the_defaults_is_not_selected(dask_client) -> None:
    report = run_selection(
        dask_client,
        source,
        replace(CONFIG, evidence=False),
        TRAINING,
        FAST,
        (Setting(DEFAULTS), Setting("same", (("seed", 0),))),
        first_day=START,
    )
    assert report.selected == DEFAULTS
    assert "defaults kept" in report.reason


def test_selection_reads_no_day_after_its_last_assessment_day_and_catches_a_planted_leak(
    dask_client,
) -> None:
    leak = DEFAULT_SPEC.feature_names[5]
    rng = np.random.default_rng(1)

    def leaking(day: date) -> pd.DataFrame | None:
        frame = source(day)
        if frame is None:
            return None
        frame = frame.copy()
        frame[leak] = frame["is_fraud"].fillna(0) + rng.normal(0, 0.05, len(frame))
        return frame

    report = run_selection(
        dask_client, leaking, CONFIG, TRAINING, FAST, (Setting(DEFAULTS), DEEPER), first_day=START
    )
    assert max(report.days_read) == CONFIG.end.isoformat()
    assert [x["feature"] for x in report.leaks] == [leak]
    assert report.evidence[leak]["alone_auc"] > 0.99
    assert report.evidence[leak]["permutation_ap_drop"] > 0
    # the honest features stay well below the leak threshold on these days
    others = [v["alone_auc"] for n, v in report.evidence.items() if n != leak]
    assert max(others) < CONFIG.leak_auc
    assert set(report.evidence) == set(DEFAULT_SPEC.feature_names)


def test_a_selection_nested_in_a_backtest_never_reads_the_folds_assessment_days(
    dask_client,
) -> None:
    read: list[date] = []

    def recording(day: date) -> pd.DataFrame | None:
        read.append(day)
        return source(day)

    config = BacktestConfig(end=LAST, train_days=25, delay_days=10, test_days=5, folds=2)
    nested = SelectionConfig(
        end=LAST, train_days=20, delay_days=5, test_days=4, folds=2, evidence=False
    )
    report = run_backtest(
        dask_client, recording, config, TRAINING, STUMPS, first_day=START, nested=nested
    )
    assert report.compared == "nested"
    for fold in report.folds:
        _, last_read = fold.selected["days_read"]
        assert last_read < fold.cutoff  # the cutoff is the first assessed day
        assert fold.selected["setting"] in (
            DEFAULTS,
            "shallow",
            "deep",
            "slow_and_long",
            "fewer_columns",
            "class_weight",
            "fewer_negatives",
        )
        assert SELECTED in fold.metrics and MODEL in fold.metrics
    gain = report.paired_ap()
    assert gain is not None and gain["n"] == 2
    assert "Selected (nested) minus default AP" in report.to_markdown()


def test_the_budget_stops_the_search_after_the_defaults(dask_client) -> None:
    report = run_selection(
        dask_client,
        source,
        replace(CONFIG, evidence=False, budget_seconds=0.001),
        TRAINING,
        FAST,
        (Setting(DEFAULTS), DEEPER, Setting("shallow", (("max_depth", 2),))),
        first_day=START,
    )
    assert report.not_evaluated == ["deeper", "shallow"] or report.not_evaluated == ["shallow"]
    assert {r["setting"] for r in report.results} <= {DEFAULTS, "deeper"}
    assert len(report.per_fold(DEFAULTS)) == 2
    assert "Not evaluated within the budget" in report.to_markdown()


def test_paired_difference_gives_a_t_interval() -> None:
    gain = paired_difference(np.array([0.5, 0.6, 0.7]), np.array([0.4, 0.5, 0.5]))
    assert gain["mean"] == pytest.approx(0.1333333)
    assert gain["se"] == pytest.approx(np.std([0.1, 0.1, 0.2], ddof=1) / np.sqrt(3))
    assert gain["low"] < gain["mean"] < gain["high"]
    assert gain["high"] - gain["mean"] == pytest.approx(4.302653 * gain["se"], rel=1e-5)


def test_resampling_negatives_keeps_a_subset_with_compensating_weights() -> None:
    frame = pd.DataFrame(
        {
            "order_id": [f"o{i}" for i in range(4000)],
            "label": np.r_[np.ones(100), np.zeros(3900)].astype(np.int8),
            "weight": np.r_[np.ones(100), np.full(3900, 4.0)].astype(np.float32),
        }
    )
    out = resample_negatives(frame, 0.1, 0.25, seed=0)
    assert (out["label"] == 1).sum() == 100
    kept = out["label"] == 0
    assert 0.07 * 3900 < kept.sum() < 0.13 * 3900
    assert set(out.loc[kept, "order_id"]) <= set(frame["order_id"])
    assert set(out.loc[kept, "weight"]) == {np.float32(10.0)}
    assert resample_negatives(frame, 0.5, 0.25, seed=0) is frame
