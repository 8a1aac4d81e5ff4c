"""`features_updated_sensor`'s decisions against a real (temporary) instance, without running
anything: materializations are reported as runless events and runs in flight are added to the
run storage. A retrain follows new features; a model newer than the features is left alone; no
retrain (or store load) starts while a run of the features or retrain lane is in flight, unless a
newer run of that lane has succeeded since it started (a dead run worker's leftover); within the
debounce interval only the online store is refreshed and the retrain waits."""

from __future__ import annotations

import json
import time

import pytest
from dagster import (
    AssetMaterialization,
    DagsterRunStatus,
    SensorResult,
    build_sensor_context,
    instance_for_test,
)
from dagster._core.storage.dagster_run import DagsterRun
from dagster._core.utils import make_new_run_id

from fraud_assets.jobs import DAILY_FEATURES_LANE, RETRAIN_LANE
from fraud_assets.sensors.retrain import (
    MIN_INTERVAL_ENV,
    NOT_STARTED_GRACE_S,
    RetrainCursor,
    features_updated_sensor,
    plan_retrain,
    runs_in_flight,
)
from fraud_assets.sensors.ticks import SELECTION_EVERY_ENV

HOUR = 3600.0


@pytest.fixture(autouse=True)
def no_selection(monkeypatch) -> None:
    """Retrains without a model selection first, except where a test says otherwise."""
    monkeypatch.setenv(SELECTION_EVERY_ENV, "0")


@pytest.fixture
def instance():
    with instance_for_test() as instance:
        yield instance


def _materialize(instance, asset: str, partition: str | None = None) -> None:
    instance.report_runless_asset_event(AssetMaterialization(asset, partition=partition))


def _features(instance, day: int) -> None:
    _materialize(instance, "entity_features", f"2026-01-{day:02d}")


def _run(instance, lane: dict[str, str], status: DagsterRunStatus) -> DagsterRun:
    return instance.add_run(
        DagsterRun(job_name="some_job", run_id=make_new_run_id(), status=status, tags=lane)
    )


def _tick(instance, cursor: str | None) -> SensorResult:
    result = features_updated_sensor(build_sensor_context(instance=instance, cursor=cursor))
    assert isinstance(result, SensorResult)
    return result


def test_new_features_retrain_then_debounce_then_retrain(instance, monkeypatch) -> None:
    monkeypatch.delenv(MIN_INTERVAL_ENV, raising=False)
    empty = _tick(instance, None)
    assert not empty.run_requests and "no entity_features" in empty.skip_reason.skip_message

    _features(instance, 1)
    _features(instance, 2)
    first = _tick(instance, None)
    [request] = first.run_requests
    assert request.job_name == "retrain_job"
    assert request.tags["fraud/lane"] == "retrain"
    assert request.run_key.startswith("retrain:")
    cursor = RetrainCursor.read(first.cursor)
    assert cursor.seen == cursor.trained == int(request.run_key.split(":")[1])

    again = _tick(instance, first.cursor)
    assert not again.run_requests and "up to date" in again.skip_reason.skip_message

    # A new day within the hour: the store is refreshed, the retrain is debounced.
    _features(instance, 3)
    store = _tick(instance, first.cursor)
    assert [r.job_name for r in store.run_requests] == ["online_store_job"]
    assert store.run_requests[0].tags["fraud/lane"] == "retrain"
    waiting = _tick(instance, store.cursor)
    assert not waiting.run_requests and "debounced" in waiting.skip_reason.skip_message
    assert waiting.cursor == store.cursor

    # The hour is over: one retrain for everything since.
    later = plan_retrain(
        instance, RetrainCursor.read(store.cursor), now=time.time() + HOUR, min_interval_s=HOUR
    )
    assert later.run_request is not None and later.run_request.job_name == "retrain_job"
    assert later.cursor.trained == later.cursor.seen > cursor.trained
    # the interval comes from the environment
    monkeypatch.setenv(MIN_INTERVAL_ENV, "0")
    assert [r.job_name for r in _tick(instance, store.cursor).run_requests] == ["retrain_job"]


def test_a_retrain_selects_first_when_the_latest_selection_is_too_old(
    instance, monkeypatch
) -> None:
    monkeypatch.delenv(SELECTION_EVERY_ENV, raising=False)  # the default: every 7 days
    monkeypatch.setenv(MIN_INTERVAL_ENV, "0")
    _features(instance, 1)
    first = _tick(instance, None)
    [request] = first.run_requests  # never selected: select, then retrain
    assert request.job_name == "select_and_retrain_job"
    assert request.run_key.startswith("select+retrain:")
    assert request.tags["fraud/lane"] == "retrain"

    _materialize(instance, "model_selection")
    _features(instance, 2)
    [fresh] = _tick(instance, first.cursor).run_requests  # selected just now: only retrain
    assert fresh.job_name == "retrain_job"
    _features(instance, 3)
    week = 7 * 24 * HOUR
    stale = plan_retrain(instance, None, time.time() + week, 0.0, selection_every_s=week)
    assert stale.run_request is not None
    assert stale.run_request.job_name == "select_and_retrain_job"
    never = plan_retrain(instance, None, time.time() + week, 0.0, selection_every_s=0.0)
    assert never.run_request is not None and never.run_request.job_name == "retrain_job"


def test_no_cursor_respects_what_was_already_done(instance) -> None:
    _features(instance, 1)
    _materialize(instance, "fraud_model")
    _materialize(instance, "online_store")
    done = _tick(instance, None)
    assert not done.run_requests and "up to date" in done.skip_reason.skip_message
    _features(instance, 2)
    [request] = _tick(instance, "not json").run_requests  # an unreadable cursor: same as none
    assert request.job_name == "retrain_job"


def test_an_old_cursor_does_not_redo_what_a_run_launched_by_hand_did(instance) -> None:
    _features(instance, 1)
    first = _tick(instance, None)
    assert [r.job_name for r in first.run_requests] == ["retrain_job"]
    _features(instance, 2)  # new days, then a retrain and a store load launched by hand
    _materialize(instance, "fraud_model")
    _materialize(instance, "online_store")
    after = _tick(instance, first.cursor)
    assert not after.run_requests and "up to date" in after.skip_reason.skip_message


@pytest.mark.parametrize("lane", [DAILY_FEATURES_LANE, RETRAIN_LANE])
def test_nothing_starts_while_a_lane_run_is_in_flight(instance, lane) -> None:
    _features(instance, 1)
    running = _run(instance, lane, DagsterRunStatus.STARTED)
    busy = _tick(instance, None)
    assert not busy.run_requests
    assert "in flight" in busy.skip_reason.skip_message
    assert running.run_id in busy.skip_reason.skip_message
    assert json.loads(busy.cursor)["trained"] == 0  # nothing consumed: looked at again
    instance.report_run_failed(running)
    [request] = _tick(instance, busy.cursor).run_requests
    assert request.job_name == "retrain_job"


def test_a_run_never_launched_blocks_only_for_a_while(instance) -> None:
    _features(instance, 1)
    _run(instance, RETRAIN_LANE, DagsterRunStatus.NOT_STARTED)
    now = time.time()
    assert plan_retrain(instance, None, now=now, min_interval_s=HOUR).run_request is None
    stale = plan_retrain(instance, None, now=now + NOT_STARTED_GRACE_S + 60, min_interval_s=HOUR)
    assert stale.run_request is not None and stale.run_request.job_name == "retrain_job"


@pytest.mark.parametrize("lane", [DAILY_FEATURES_LANE, RETRAIN_LANE])
@pytest.mark.parametrize(
    "status", [DagsterRunStatus.STARTING, DagsterRunStatus.STARTED, DagsterRunStatus.CANCELING]
)
def test_a_run_older_than_the_lanes_newest_success_does_not_block(instance, lane, status) -> None:
    """A run whose worker died stays STARTED until run monitoring fails it; once a later run of
    its lane has succeeded (the lane runs one run at a time), it is not waited on."""
    _features(instance, 1)
    dead = _run(instance, lane, status)
    _run(instance, lane, DagsterRunStatus.SUCCESS)  # the rerun
    plan = plan_retrain(instance, None, now=time.time(), min_interval_s=HOUR)
    assert plan.run_request is not None and plan.run_request.job_name == "retrain_job"
    assert plan.superseded == [dead.run_id]
    assert dead.run_id not in runs_in_flight(instance, lane, time.time())

    # A run newer than that success is waited on, and so is one not launched yet (queued runs
    # likewise: they have not run yet), whatever succeeded after it.
    newer = _run(instance, lane, status)
    busy = plan_retrain(instance, None, now=time.time(), min_interval_s=HOUR)
    assert busy.run_request is None and newer.run_id in busy.skip
    assert dead.run_id not in busy.skip
    instance.report_run_failed(newer)
    _run(instance, lane, DagsterRunStatus.SUCCESS)
    pending = _run(instance, lane, DagsterRunStatus.NOT_STARTED)
    _run(instance, lane, DagsterRunStatus.SUCCESS)
    still = plan_retrain(instance, None, now=time.time(), min_interval_s=HOUR)
    assert still.run_request is None and pending.run_id in still.skip
