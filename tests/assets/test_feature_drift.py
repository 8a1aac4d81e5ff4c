"""`feature_drift` through Dagster: PSI against the trailing window before any model, a WARN (not
a failure) when a day's amounts jump, and the deployed model's training window and score once a
model is in the registry."""

from __future__ import annotations

from datetime import timedelta

import numpy as np
import pandas as pd
import pytest
import xgboost as xgb
from dagster import AssetCheckSeverity

from fraud_assets.assets.entity_features import entity_features
from fraud_assets.assets.feature_drift import (
    NO_MODEL,
    PSI_BELOW_THRESHOLD,
    feature_drift,
    feature_drift_checks,
)
from fraud_assets.assets.orders_by_entity import orders_by_entity
from fraud_assets.assets.raw_orders import raw_orders
from fraud_core.drift import SCORE, psi_by_column, read_report, stride_sample
from fraud_core.features.spec import DEFAULT_SPEC
from fraud_core.generator import GeneratorConfig, iter_daily_orders, write_landing_files
from fraud_core.model.artifact import ModelCard, save_version, set_current
from fraud_core.model.dataset import read_feature_day
from fraud_core.model.replay import feature_days
from fraud_core.storage import DataLayout, write_parquet

from ..checks import verdicts
from ..configs import NO_WARMUP, START

# Ten days lie inside the features' warm-up (37 days), which has no PSI: the tests of PSI
# itself on these ten days switch the warm-up off (NO_WARMUP).
DAYS = [START + timedelta(days=i) for i in range(10)]


@pytest.fixture
def ten_days(data_dir, materialize_range) -> DataLayout:
    cfg = GeneratorConfig(
        n_customers=300, n_emails=300, n_ips=300, orders_per_day=150, days=10, start=START, seed=9
    )
    write_landing_files(cfg, data_dir.landing)
    # the last day's amounts jump tenfold: a drift the check must see
    last = data_dir.landing / f"orders_{DAYS[-1].isoformat()}.parquet"
    orders = pd.read_parquet(last)
    orders["order_amount"] = orders["order_amount"] * 10
    write_parquet(orders, last)
    assert materialize_range(
        [raw_orders, orders_by_entity, entity_features], DAYS[0], DAYS[-1]
    ).success
    return data_dir


def _checks(result) -> dict[str, object]:
    return {day: v for (name, day), v in verdicts(result).items() if name == PSI_BELOW_THRESHOLD}


def test_trailing_window_before_any_model_and_a_warning_on_drift(ten_days, materialize_range):
    result = materialize_range(
        [feature_drift, feature_drift_checks], DAYS[-3], DAYS[-1], run_config={"ops": NO_WARMUP}
    )
    assert result.success  # a drift warns, it does not fail the run
    checks = _checks(result)
    assert set(checks) == {d.isoformat() for d in DAYS[-3:]}
    jumped = checks[DAYS[-1].isoformat()]
    assert not jumped.passed and jumped.severity == AssetCheckSeverity.WARN
    report = read_report(ten_days, DAYS[-1])
    assert report.reference["kind"] == "trailing"
    assert report.reference["days"] == [d.isoformat() for d in DAYS[:-1]]
    assert report.psi["order_amount"] > 1.0 and "order_amount" in report.drifted
    assert report.score_psi is None and NO_MODEL in report.note
    # the day before, same generator, same amounts: the amount is stable
    assert read_report(ten_days, DAYS[-2]).psi["order_amount"] < 0.2

    metadata = {
        m.partition: m.materialization.metadata for m in result.get_asset_materialization_events()
    }
    last = metadata[DAYS[-1].isoformat()]
    assert last["score_psi"].value == NO_MODEL
    assert "data:image/png;base64," in last["psi_plot"].value
    assert "psi_plot" not in metadata[DAYS[-2].isoformat()]  # the plot for the newest day only

    # the threshold is configurable: a lenient one lets the day pass
    lenient = {"ops": {**NO_WARMUP, "feature_drift_checks": {"config": {"threshold": 1000.0}}}}
    again = materialize_range(
        [feature_drift, feature_drift_checks], DAYS[-1], DAYS[-1], run_config=lenient
    )
    assert _checks(again)[DAYS[-1].isoformat()].passed


def _same(found: dict[str, float], expected: dict[str, float]) -> bool:
    return set(found) == set(expected) and all(
        found[k] == expected[k] or (np.isnan(found[k]) and np.isnan(expected[k])) for k in found
    )


def test_a_range_run_moves_its_trailing_reference_with_the_same_figures(
    ten_days, materialize_range
):
    """Each day of a range run is compared with the day's own trailing sample, as if the window
    had been read and binned afresh (the run moves one set of sorted values along)."""
    config = {"warmup_days": 0, "reference_days": 4, "min_reference_days": 2, "reference_rows": 200}
    run_config = {"ops": {"feature_drift": {"config": config}}}
    assert materialize_range([feature_drift], DAYS[2], DAYS[-1], run_config=run_config).success
    names = list(DEFAULT_SPEC.feature_names)
    for day in DAYS[2:]:
        report = read_report(ten_days, day)
        ref_days = [d for d in DAYS if d.isoformat() in report.reference["days"]]
        assert ref_days == DAYS[max(0, DAYS.index(day) - 4) : DAYS.index(day)]
        reference = pd.concat(
            [stride_sample(read_feature_day(ten_days, d, names), 50) for d in ref_days],
            ignore_index=True,
        )
        assert report.reference["rows"] == len(reference) < 150 * len(ref_days)
        expected = psi_by_column(reference, read_feature_day(ten_days, day, names), names)
        assert _same(report.psi, expected), day


def test_too_little_history_gives_no_psi_and_no_warning(ten_days, materialize_range):
    result = materialize_range([feature_drift, feature_drift_checks], DAYS[0], DAYS[2])
    assert result.success
    assert all(e.passed for e in result.get_asset_check_evaluations())
    assert "reference day" in read_report(ten_days, DAYS[2]).note


def test_with_a_deployed_model_the_reference_is_its_training_window(ten_days, materialize_range):
    names = list(DEFAULT_SPEC.feature_names)
    train = pd.concat([pd.read_parquet(ten_days.entity_features(d)) for d in DAYS[2:7]])
    booster = xgb.train(
        {"max_depth": 2, "objective": "binary:logistic", "nthread": 1},
        xgb.DMatrix(
            train[names].to_numpy(np.float32), label=train["is_fraud"], feature_names=names
        ),
        num_boost_round=5,
    )
    card = save_version(
        ten_days.models,
        booster,
        ModelCard(
            version="",
            feature_names=names,
            thresholds={"review": 0.5, "decline": 0.9},
            training_window={
                "cutoff": DAYS[8].isoformat(),
                "train_first": DAYS[2].isoformat(),
                "train_last": DAYS[6].isoformat(),
            },
        ),
    )
    set_current(ten_days.models, card.version)

    result = materialize_range(
        [feature_drift, feature_drift_checks], DAYS[-2], DAYS[-1], run_config={"ops": NO_WARMUP}
    )
    assert result.success
    report = read_report(ten_days, DAYS[-1])
    assert report.reference["kind"] == "training_window"
    assert report.reference["days"] == [d.isoformat() for d in DAYS[2:7]]
    assert report.model_version == card.version
    assert report.score_psi is not None and report.score_psi >= 0
    assert SCORE in report.judged
    metadata = {
        m.partition: m.materialization.metadata for m in result.get_asset_materialization_events()
    }
    assert metadata[DAYS[-1].isoformat()]["model_version"].value == card.version

    # the training window's bins are kept: the next run reads them, with the same figures
    kept = list(ten_days.feature_drift_references.glob("*.json"))
    assert len(kept) == 1
    again = materialize_range([feature_drift], DAYS[-1], DAYS[-1], run_config={"ops": NO_WARMUP})
    assert again.success and list(ten_days.feature_drift_references.glob("*.json")) == kept
    second = read_report(ten_days, DAYS[-1])
    assert _same(second.psi, report.psi) and second.score_psi == report.score_psi
    assert second.reference == report.reference
    # ... until a day of the window is written again: another reference, binned afresh
    day = ten_days.entity_features(DAYS[3])
    write_parquet(pd.read_parquet(day).iloc[::2], day)
    assert materialize_range(
        [feature_drift], DAYS[-1], DAYS[-1], run_config={"ops": NO_WARMUP}
    ).success
    assert len(list(ten_days.feature_drift_references.glob("*.json"))) == 2
    assert read_report(ten_days, DAYS[-1]).reference["rows"] < report.reference["rows"]


# Long enough for the features' warm-up (37 days) and a week of reference after it; customers
# order every few days, as in the generator's defaults (300 customers ordering daily would make
# every windowed count wander from day to day).
FRESH = GeneratorConfig(
    n_customers=1000, n_emails=1000, n_ips=750, orders_per_day=300, days=52, start=START, seed=9
)
FRESH_DAYS = [START + timedelta(days=i) for i in range(FRESH.days)]


@pytest.fixture
def fresh_start(data_dir) -> DataLayout:
    """`entity_features` of 52 generated days from the first day of data, as the asset writes
    them (the production feature code), and no model yet."""
    for day, frame in feature_days(iter_daily_orders(FRESH), dtype=np.float64):
        write_parquet(frame, data_dir.entity_features(day))
    return data_dir


def _risk_counts(report) -> list[str]:
    return [name for name in report.drifted if "risk_order_count" in name]


def test_the_first_drift_checks_of_a_fresh_start_do_not_warn_about_filling_windows(
    fresh_start, materialize_range
) -> None:
    warmup = DEFAULT_SPEC.warmup_days
    result = materialize_range([feature_drift, feature_drift_checks], FRESH_DAYS[0], FRESH_DAYS[-1])
    assert result.success
    checks = _checks(result)
    assert set(checks) == {d.isoformat() for d in FRESH_DAYS}  # every day has its check
    reports = {d: read_report(fresh_start, d) for d in FRESH_DAYS}
    judged = [d for d in FRESH_DAYS if reports[d].judged]
    # no PSI before a week of reference days past the warm-up; then every day has one
    assert judged == FRESH_DAYS[warmup + 7 :]
    for day in FRESH_DAYS[: warmup + 7]:
        assert checks[day.isoformat()].passed and "warm-up" in reports[day].note
    first = reports[judged[0]]
    assert first.reference["days"] == [d.isoformat() for d in FRESH_DAYS[warmup : warmup + 7]]
    assert first.reference["features_complete_from"] == FRESH_DAYS[warmup].isoformat()
    assert all(not _risk_counts(reports[d]) for d in judged)
    assert all(check.passed for check in checks.values())  # nothing drifts on a fresh start

    # what the check said before the warm-up rule: the first judged day (a week in) warns
    # about the risk windows that were still filling
    old = materialize_range(
        [feature_drift, feature_drift_checks],
        FRESH_DAYS[7],
        FRESH_DAYS[7],
        run_config={"ops": NO_WARMUP},
    )
    assert not _checks(old)[FRESH_DAYS[7].isoformat()].passed
    assert _risk_counts(read_report(fresh_start, FRESH_DAYS[7]))
