"""The feature pipeline on a real Dask cluster (`dask scheduler` + two `dask worker` processes
from the CLI): with `DASK_SCHEDULER_ADDRESS` set, orders_by_entity and entity_features send their
tasks to those workers, and the features equal an in-process run's."""

from __future__ import annotations

from datetime import timedelta

import pandas as pd
from dagster import materialize
from distributed import Client, get_task_stream

from fraud_assets.assets.entity_features import entity_features, entity_features_checks
from fraud_assets.assets.orders_by_entity import orders_by_entity
from fraud_assets.assets.raw_orders import raw_orders
from fraud_assets.partitions import partition_range_tags
from fraud_assets.resources import DaskResource, DataLayoutResource
from fraud_core.generator import GeneratorConfig, write_landing_files
from fraud_core.storage import DataLayout

from ..configs import START, feature_resources

DAYS = [START + timedelta(days=i) for i in range(3)]
ASSETS = [raw_orders, orders_by_entity, entity_features]


def _landing(root) -> DataLayout:
    layout = DataLayout(root)
    cfg = GeneratorConfig(
        n_customers=300, n_emails=300, n_ips=200, orders_per_day=200, days=3, start=START, seed=11
    )
    write_landing_files(cfg, layout.landing)
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
