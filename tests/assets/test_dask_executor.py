"""`daily_features_dask_job`: every step a Dask task through `partition_safe_dask_executor`, on a
LocalCluster of two worker processes, for a partition RANGE run (which the stock dagster-dask
executor cannot run), with the steps' own Dask work on the same cluster. The features must equal
the in-process run's."""

from __future__ import annotations

import os
import signal
from datetime import timedelta

import pandas as pd
import psutil
import pytest
from dagster import (
    Definitions,
    JobDefinition,
    define_asset_job,
    execute_job,
    instance_for_test,
    materialize,
    reconstructable,
)
from dagster_dask import dask_executor
from distributed import LocalCluster

from fraud_assets.assets.entity_features import entity_features
from fraud_assets.assets.orders_by_entity import orders_by_entity
from fraud_assets.assets.raw_orders import raw_orders
from fraud_assets.jobs import DAILY_FEATURE_ASSETS, DAILY_FEATURE_CHECKS, daily_features_dask_job
from fraud_assets.lib.range_checks import checked_days
from fraud_assets.partitions import partition_range_tags
from fraud_assets.resources import DaskResource, DataLayoutResource
from fraud_core.storage import DataLayout

from ..configs import START, feature_resources

FIRST, LAST = START, START + timedelta(days=2)  # the `landed` fixture's first three days
DAYS = [FIRST.replace(day=d) for d in (1, 2, 3)]

_defs = Definitions(
    assets=DAILY_FEATURE_ASSETS,
    asset_checks=DAILY_FEATURE_CHECKS,
    jobs=[
        daily_features_dask_job,
        define_asset_job("stock_dask_job", selection=[raw_orders], executor_def=dask_executor),
    ],
    resources={"layout": DataLayoutResource(), "dask": DaskResource()},  # both from the env
)


def dask_job() -> JobDefinition:
    """Module-level, so Dask workers can reconstruct the job from this file."""
    return _defs.resolve_job_def("daily_features_dask_job")


def stock_dask_job() -> JobDefinition:
    return _defs.resolve_job_def("stock_dask_job")


@pytest.fixture
def cluster(landed, monkeypatch):
    # Workers inherit the environment when they start: FRAUD_DATA_DIR is set by `landed`. They
    # also inherit SIGTERM ignored, as happens under some CI harnesses and service managers;
    # Dagster's compute-log `tail` processes then cannot be stopped (the executor must not
    # start them on workers).
    previous = signal.signal(signal.SIGTERM, signal.SIG_IGN)
    try:
        with LocalCluster(
            n_workers=2,
            threads_per_worker=1,
            processes=True,
            host="127.0.0.1",
            dashboard_address="127.0.0.1:0",
        ) as cluster:
            signal.signal(signal.SIGTERM, previous)
            yield cluster.scheduler_address
    finally:
        signal.signal(signal.SIGTERM, previous)


def _execution(address: str) -> dict:
    return {"execution": {"config": {"cluster": {"existing": {"address": address}}}}}


def test_a_partition_range_runs_step_by_step_on_the_cluster(cluster, landed: DataLayout, tmp_path):
    with instance_for_test() as instance:
        result = execute_job(
            reconstructable(dask_job),
            instance,
            run_config=_execution(cluster),
            tags=partition_range_tags(FIRST, LAST),
        )
        assert result.success, [e.message for e in result.all_events if e.is_failure]
        # steps on Dask capture no compute logs: Dask workers ignore SIGTERM, so Dagster's
        # `tail -F` log mirrors could never be stopped (they leaked and hung a CI run)
        leaked = [
            p.info["cmdline"]
            for p in psutil.process_iter(["cmdline"])
            if p.info["cmdline"]
            and p.info["cmdline"][0] == "tail"
            and any(instance.root_directory in arg for arg in p.info["cmdline"])
        ]
        assert not leaked, leaked
        steps = {e.step_key for e in result.all_events if e.is_step_success}
        assert steps == {
            "raw_orders",
            "raw_orders_checks",
            "orders_by_entity",
            "orders_by_entity_checks",
            "entity_features",
            "entity_features_checks",
        }
        # every step ran in a worker process, not here
        pids = {e.pid for e in result.all_events if e.is_step_start}
        assert pids and os.getpid() not in pids
        checks = [
            e.event_specific_data
            for e in result.all_events
            if e.event_type_value == "ASSET_CHECK_EVALUATION"
        ]
        assert {d for e in checks for d in checked_days(e)} == {d.isoformat() for d in DAYS}
        assert all(c.passed for c in checks)
        on_cluster = {d: pd.read_parquet(landed.entity_features(d)) for d in DAYS}

    # The same range in process, in a copy of the landing folder.
    local = DataLayout(tmp_path / "in_process")
    local.landing.mkdir(parents=True)
    for path in landed.landing.iterdir():
        (local.landing / path.name).write_bytes(path.read_bytes())
    assert materialize(
        [raw_orders, orders_by_entity, entity_features],
        resources=feature_resources(local.root),
        tags=partition_range_tags(FIRST, LAST),
    ).success
    for day in DAYS:
        pd.testing.assert_frame_equal(on_cluster[day], pd.read_parquet(local.entity_features(day)))


def test_the_stock_executor_still_fails_on_partitioned_runs(cluster):
    """Tells us when dagster-dask fixes it upstream: then the shim can go."""
    with instance_for_test() as instance:
        result = execute_job(
            reconstructable(stock_dask_job),
            instance,
            run_config=_execution(cluster),
            tags=partition_range_tags(FIRST, FIRST),
        )
        assert not result.success
        logs = " ".join(str(entry) for entry in instance.all_logs(result.run_id))
        assert "Iteration is not allowed on `@record`" in logs
