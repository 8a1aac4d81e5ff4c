"""`feature_drift_sensor` against a real (temporary) instance: a newly served model (promoted or
rolled back to) requests the drift of every day with features again, one range run per stretch
of consecutive days; the runs recompute each day's drift against that model's training window,
with a check result per day. Days with new features get their drift once the online store has
taken them (or after a grace), so the drift never holds back the path to serving, and the jobs
on that path do not compute it."""

from __future__ import annotations

import time
from datetime import date, timedelta

import numpy as np
import pandas as pd
import pytest
import xgboost as xgb
from dagster import (
    AssetMaterialization,
    DagsterRun,
    DagsterRunStatus,
    Definitions,
    SensorResult,
    build_sensor_context,
    instance_for_test,
)
from dagster._core.utils import make_new_run_id

from fraud_assets.assets.feature_drift import feature_drift, feature_drift_checks
from fraud_assets.jobs import (
    DAILY_FEATURES_LANE,
    MONITORING_PRIORITY,
    RETRAIN_LANE,
    daily_features_job,
    entity_features_job,
    feature_drift_job,
)
from fraud_assets.lib.range_checks import checked_days
from fraud_assets.resources import DataLayoutResource
from fraud_assets.sensors.drift import (
    FOLLOW_GRACE_S,
    DriftCursor,
    feature_drift_sensor,
    plan_drift,
)
from fraud_assets.sensors.keys import ENTITY_FEATURES, ONLINE_STORE
from fraud_core.drift import TRAILING, TRAINING_WINDOW, read_report
from fraud_core.features.spec import DEFAULT_SPEC
from fraud_core.generator import GeneratorConfig, iter_daily_orders
from fraud_core.model.artifact import ModelCard, save_version, set_current
from fraud_core.model.replay import feature_days
from fraud_core.storage import DataLayout, write_parquet

START = date(2026, 1, 1)
DATA = GeneratorConfig(
    n_customers=1000, n_emails=1000, n_ips=750, orders_per_day=150, days=12, start=START, seed=3
)
DAYS = [START + timedelta(days=i) for i in range(DATA.days)]
GAP = DAYS[8]  # a day whose features are missing: the runs go around it
# Twelve days lie inside the features' warm-up: switched off, so that the days get PSI values.
NO_WARMUP = {"ops": {"feature_drift": {"config": {"warmup_days": 0}}}}


@pytest.fixture
def features(data_dir) -> DataLayout:
    for day, frame in feature_days(iter_daily_orders(DATA), dtype=np.float64):
        if day != GAP:
            write_parquet(frame, data_dir.entity_features(day))
    return data_dir


def _model(layout: DataLayout, first: date, last: date, rounds: int) -> str:
    names = list(DEFAULT_SPEC.feature_names)
    days = [d for d in DAYS if first <= d <= last]
    train = pd.concat([pd.read_parquet(layout.entity_features(d)) for d in days])
    booster = xgb.train(
        {"max_depth": 2, "objective": "binary:logistic", "nthread": 1},
        xgb.DMatrix(
            train[names].to_numpy(np.float32), label=train["is_fraud"], feature_names=names
        ),
        num_boost_round=rounds,
    )
    card = ModelCard(
        version="",
        feature_names=names,
        thresholds={"review": 0.5, "decline": 0.9},
        training_window={"train_first": first.isoformat(), "train_last": last.isoformat()},
    )
    return save_version(layout.models, booster, card).version


def _tick(instance, cursor: str | None) -> SensorResult:
    context = build_sensor_context(
        instance=instance, cursor=cursor, resources={"layout": DataLayoutResource()}
    )
    result = feature_drift_sensor(context)
    assert isinstance(result, SensorResult)
    return result


def _ranges(result: SensorResult) -> list[tuple[str, str]]:
    return [
        (r.tags["dagster/asset_partition_range_start"], r.tags["dagster/asset_partition_range_end"])
        for r in result.run_requests
    ]


def _run_all(instance, result: SensorResult) -> set[str]:
    """Execute the requested runs as the daemon would; the days whose check was evaluated."""
    defs = Definitions(
        assets=[feature_drift],
        asset_checks=[feature_drift_checks],
        jobs=[feature_drift_job],
        resources={"layout": DataLayoutResource()},
    )
    checked = set()
    for request in result.run_requests:
        job = defs.resolve_job_def(request.job_name)
        run = job.execute_in_process(instance=instance, tags=request.tags, run_config=NO_WARMUP)
        assert run.success
        checked |= {d for e in run.get_asset_check_evaluations() for d in checked_days(e)}
    return checked


def test_a_newly_served_model_gets_every_days_drift_against_its_training_window(features):
    layout = features
    with_features = [d for d in DAYS if d != GAP]
    with instance_for_test() as instance:
        nothing = _tick(instance, None)
        assert not nothing.run_requests and "no model" in nothing.skip_reason.skip_message

        first = _model(layout, DAYS[0], DAYS[3], rounds=3)
        set_current(layout.models, first)
        deployed = _tick(instance, None)
        assert _ranges(deployed) == [
            (DAYS[0].isoformat(), DAYS[7].isoformat()),
            (DAYS[9].isoformat(), DAYS[-1].isoformat()),
        ]
        assert {r.job_name for r in deployed.run_requests} == {feature_drift_job.name}
        assert _run_all(instance, deployed) == {d.isoformat() for d in with_features}
        for day in with_features:
            report = read_report(layout, day)
            assert report.model_version == first
            assert report.reference["kind"] == TRAINING_WINDOW
            assert report.reference["days"] == [d.isoformat() for d in DAYS[0:4]]
            assert report.score_psi is not None

        again = _tick(instance, deployed.cursor)
        assert not again.run_requests and first in again.skip_reason.skip_message

        # a new model (or a rollback): its training window is the reference from now on, once
        # no run that may rewrite features or deploy yet another model is in flight
        second = _model(layout, DAYS[4], DAYS[7], rounds=5)
        set_current(layout.models, second)
        for lane in (DAILY_FEATURES_LANE, RETRAIN_LANE):
            busy = instance.add_run(
                DagsterRun(
                    job_name="some_job",
                    run_id=make_new_run_id(),
                    status=DagsterRunStatus.STARTED,
                    tags=lane,
                )
            )
            waiting = _tick(instance, deployed.cursor)
            assert not waiting.run_requests and waiting.cursor is None
            assert busy.run_id in waiting.skip_reason.skip_message
            instance.report_run_failed(busy)  # finished: no longer in flight
        redeployed = _tick(instance, deployed.cursor)
        assert _ranges(redeployed) == _ranges(deployed)
        # every day's check is evaluated again: its history has one result per served model
        assert _run_all(instance, redeployed) == {d.isoformat() for d in with_features}
        for day in with_features:
            report = read_report(layout, day)
            assert report.model_version == second
            assert report.reference["days"] == [d.isoformat() for d in DAYS[4:8]]


def _materialized(instance, key, days: list[date] | None = None) -> None:
    """Record materializations as a run of the asset would (one per partition)."""
    for day in days or [None]:
        instance.report_runless_asset_event(
            AssetMaterialization(key, partition=day.isoformat() if day else None)
        )


def test_new_features_get_their_drift_after_the_online_store_takes_them(features):
    layout = features
    with instance_for_test() as instance:
        nothing = _tick(instance, None)
        assert not nothing.run_requests and "up to date" in nothing.skip_reason.skip_message

        # a range run of the daily lane materialized days 0-9 (the gap's file is missing)
        _materialized(instance, ENTITY_FEATURES, DAYS[:10])
        waiting = _tick(instance, None)
        assert not waiting.run_requests and waiting.cursor is None
        assert "online store" in waiting.skip_reason.skip_message

        _materialized(instance, ONLINE_STORE)  # features_updated_sensor's store load
        due = _tick(instance, None)
        assert _ranges(due) == [
            (DAYS[0].isoformat(), DAYS[7].isoformat()),
            (DAYS[9].isoformat(), DAYS[9].isoformat()),
        ]
        assert _run_all(instance, due) == {d.isoformat() for d in DAYS[:10] if d != GAP}
        assert read_report(layout, DAYS[9]).reference["kind"] == TRAILING  # no model yet
        assert not layout.feature_drift_report(DAYS[10]).exists()  # not materialized: not due
        assert not _tick(instance, due.cursor).run_requests

        # the next day comes: only its drift, once the store has it
        _materialized(instance, ENTITY_FEATURES, [DAYS[10]])
        assert not _tick(instance, due.cursor).run_requests
        _materialized(instance, ONLINE_STORE)
        one_day = _tick(instance, due.cursor)
        assert _ranges(one_day) == [(DAYS[10].isoformat(), DAYS[10].isoformat())]
        assert {r.job_name for r in one_day.run_requests} == {feature_drift_job.name}

        # nothing loads the store (its sensor stopped): the drift runs after the grace
        _materialized(instance, ENTITY_FEATURES, [DAYS[11]])
        cursor = DriftCursor.read(one_day.cursor)
        now = time.time()
        assert not plan_drift(instance, cursor, None, DAYS, now).ranges
        late = plan_drift(instance, cursor, None, DAYS, now + FOLLOW_GRACE_S)
        assert late.ranges == [(DAYS[11], DAYS[11])] and late.cursor.features > cursor.features


def test_the_path_to_serving_does_not_wait_for_the_drift():
    from fraud_assets.definitions import defs

    graph = defs.resolve_asset_graph()
    for job in (daily_features_job, entity_features_job):
        assert feature_drift.key not in job.selection.resolve(graph), job.name
    assert feature_drift_job.selection.resolve(graph) == {feature_drift.key}
    assert MONITORING_PRIORITY.items() <= defs.resolve_job_def(feature_drift_job.name).tags.items()
