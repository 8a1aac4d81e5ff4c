"""The feature pipeline on a real Dask cluster (`dask scheduler` + two `dask worker` processes
from the CLI): with `DASK_SCHEDULER_ADDRESS` set, orders_by_entity and entity_features send their
tasks to those workers, and the features equal an in-process run's. And the scale-out deployment
(issue 20): data in an S3 bucket (moto), the instance on PostgreSQL, workers that share no folder
with the Dagster process."""

from __future__ import annotations

import os
from datetime import timedelta
from pathlib import Path

import pandas as pd
from dagster import AssetKey, Definitions, materialize
from distributed import Client, get_task_stream

from fraud_assets.assets.entity_features import entity_features, entity_features_checks
from fraud_assets.assets.orders_by_entity import orders_by_entity
from fraud_assets.assets.raw_orders import raw_orders
from fraud_assets.jobs import DAILY_FEATURE_ASSETS, DAILY_FEATURE_CHECKS, daily_features_job
from fraud_assets.partitions import partition_range_tags
from fraud_assets.resources import DaskResource, DataLayoutResource
from fraud_core.generator import GeneratorConfig, write_landing_files
from fraud_core.storage import DataLayout, read_frame

from ..configs import START, feature_resources

DAYS = [START + timedelta(days=i) for i in range(3)]
ASSETS = [raw_orders, orders_by_entity, entity_features]


def _landing_config() -> GeneratorConfig:
    return GeneratorConfig(
        n_customers=300, n_emails=300, n_ips=200, orders_per_day=200, days=3, start=START, seed=11
    )


def _landing(root) -> DataLayout:
    layout = DataLayout(root)
    write_landing_files(_landing_config(), layout.landing)
    return layout


def test_features_on_the_cluster_equal_the_in_process_run(dask_cluster, tmp_path, monkeypatch):
    on_cluster, local = _landing(tmp_path / "cluster"), _landing(tmp_path / "local")
    monkeypatch.setenv("DASK_SCHEDULER_ADDRESS", dask_cluster)

    with Client(dask_cluster) as observer, get_task_stream(observer) as stream:
        result = materialize(
            [*ASSETS, entity_features_checks],
            resources={
                "layout": DataLayoutResource(data_dir=str(on_cluster.root)),
                "dask": DaskResource(),  # joins $DASK_SCHEDULER_ADDRESS
            },
            tags=partition_range_tags(DAYS[0], DAYS[-1]),
        )
        workers = set(observer.scheduler_info()["workers"])
    assert result.success
    assert all(c.passed for c in result.get_asset_check_evaluations())
    ran = {}
    for task in stream.data:
        ran.setdefault(task["key"].split("-")[0], set()).add(task["worker"])
    assert ran.keys() >= {"write_day_buckets", "run_bucket_task"}
    assert ran["run_bucket_task"] == workers  # both workers took bucket tasks

    monkeypatch.delenv("DASK_SCHEDULER_ADDRESS")
    assert materialize(
        ASSETS,
        resources=feature_resources(local.root),
        tags=partition_range_tags(DAYS[0], DAYS[-1]),
    ).success
    for day in DAYS:
        pd.testing.assert_frame_equal(
            pd.read_parquet(on_cluster.entity_features(day)),
            pd.read_parquet(local.entity_features(day)),
        )


def test_a_backfill_from_object_storage_on_workers_that_share_no_folder(
    remote_dask_cluster, pg_instance, s3_root, tmp_path, monkeypatch
):
    """Issue 20: the Dagster instance on PostgreSQL, the data in an S3 bucket, a Dask scheduler
    and two workers with directories and settings of their own. The feature backfill of the
    range completes there, every day's checks pass, and its features equal a local run's."""
    instance, _, _ = pg_instance
    remote = DataLayout.at(s3_root)
    write_landing_files(_landing_config(), remote.landing)
    monkeypatch.setenv("FRAUD_DATA_DIR", s3_root)
    monkeypatch.setenv("DASK_SCHEDULER_ADDRESS", remote_dask_cluster)
    monkeypatch.chdir(tmp_path)
    job = Definitions(
        assets=DAILY_FEATURE_ASSETS,
        asset_checks=DAILY_FEATURE_CHECKS,
        jobs=[daily_features_job],
        resources={"layout": DataLayoutResource(), "dask": DaskResource()},
    ).resolve_job_def(daily_features_job.name)

    with Client(remote_dask_cluster) as observer, get_task_stream(observer) as stream:
        run = job.execute_in_process(
            instance=instance, tags=partition_range_tags(DAYS[0], DAYS[-1])
        )
        workers = set(observer.scheduler_info()["workers"])
        homes = observer.run(os.getcwd)
    assert run.success
    checks = run.get_asset_check_evaluations()
    assert checks and all(c.passed for c in checks)
    keys = {day.isoformat() for day in DAYS}
    for asset in ("raw_orders", "orders_by_entity", "entity_features"):
        assert instance.get_materialized_partitions(AssetKey(asset)) == keys  # on PostgreSQL
    ran: dict[str, set[str]] = {}
    for task in stream.data:
        ran.setdefault(task["key"].split("-")[0], set()).add(task["worker"])
    assert ran["run_bucket_task"] == workers and ran["write_day_buckets"] <= workers

    # Everything the run wrote is in the bucket: no data file in the workers' directories or in
    # the Dagster process's.
    folders = [Path(home) for home in homes.values()] + [tmp_path]
    assert len({*homes.values()}) == 2 and str(tmp_path) not in homes.values()
    assert not [p for folder in folders for p in folder.rglob("*.parquet")]

    monkeypatch.delenv("DASK_SCHEDULER_ADDRESS")
    local = _landing(tmp_path / "local")
    assert materialize(
        ASSETS,
        resources=feature_resources(local.root),
        tags=partition_range_tags(DAYS[0], DAYS[-1]),
    ).success
    for day in DAYS:
        pd.testing.assert_frame_equal(
            read_frame(remote.entity_features(day)), pd.read_parquet(local.entity_features(day))
        )
