"""A 30-day backfill is a handful of range runs, not 30 runs per asset.

Two ways a team backfills, both through a persistent Dagster instance:
- `daily_features_job` over a partition range (the sensor, the job launchpad's range, or
  `dagster job launch` with the range tags): ONE run for every asset and check of the range.
- an asset backfill from the UI's "Materialize" on the three assets, driven here by the backfill
  daemon's own iteration: with `BackfillPolicy.single_run()` Dagster launches one range run for
  raw_orders + orders_by_entity and, once it has succeeded, one range run for the self-dependent
  entity_features (days processed in order inside it). Two runs, never 30 or 90.
"""

from __future__ import annotations

import logging
import time
from datetime import date, timedelta

import pytest
from dagster import (
    AssetCheckSeverity,
    AssetKey,
    Definitions,
    in_process_executor,
    instance_for_test,
)
from dagster._core.execution.backfill import BulkActionStatus, PartitionBackfill
from dagster._core.remote_origin import InProcessCodeLocationOrigin
from dagster._core.types.loadable_target_origin import LoadableTargetOrigin
from dagster._core.utils import make_new_backfill_id
from dagster._core.workspace.context import WorkspaceProcessContext
from dagster._core.workspace.load_target import InProcessWorkspaceLoadTarget
from dagster._daemon.backfill import execute_backfill_iteration

from fraud_assets.jobs import DAILY_FEATURE_ASSETS, DAILY_FEATURE_CHECKS, daily_features_job
from fraud_assets.lib.range_checks import checked_days
from fraud_assets.partitions import partition_range_tags
from fraud_assets.resources import DaskResource, DataLayoutResource
from fraud_core.generator import GeneratorConfig, write_landing_files

START = date(2026, 1, 1)
DAYS = 30
KEYS = [(START + timedelta(days=i)).isoformat() for i in range(DAYS)]
SELECTION = [AssetKey(k) for k in ("raw_orders", "orders_by_entity", "entity_features")]

# The code location the backfill daemon loads (this module), with in-process steps. It loads the
# file by path, outside the tests package: hence no relative import (of tests/configs.py) here.
backfill_defs = Definitions(
    assets=DAILY_FEATURE_ASSETS,
    asset_checks=DAILY_FEATURE_CHECKS,
    jobs=[daily_features_job],
    executor=in_process_executor,
    resources={
        "layout": DataLayoutResource(),  # $FRAUD_DATA_DIR
        "dask": DaskResource(n_workers=1, threads_per_worker=2, processes=False),
    },
)

# Runs start synchronously in this process when submitted.
SYNC_INSTANCE = {
    "run_coordinator": {
        "module": "dagster._core.run_coordinator",
        "class": "DefaultRunCoordinator",
    },
    "run_launcher": {
        "module": "dagster._core.launcher.sync_in_memory_run_launcher",
        "class": "SyncInMemoryRunLauncher",
    },
}


@pytest.fixture
def thirty_days(data_dir):
    cfg = GeneratorConfig(
        n_customers=300, n_emails=300, n_ips=300, orders_per_day=60, days=DAYS, start=START, seed=5
    )
    write_landing_files(cfg, data_dir.landing)
    return data_dir


def _ranges(instance) -> list[tuple[str, str, list[str]]]:
    runs = sorted(
        instance.get_runs(), key=lambda r: instance.get_run_record_by_id(r.run_id).create_timestamp
    )
    return [
        (
            r.tags.get("dagster/asset_partition_range_start"),
            r.tags.get("dagster/asset_partition_range_end"),
            sorted(k.to_user_string() for k in r.asset_selection or []),
        )
        for r in runs
    ]


def test_a_range_of_daily_features_job_is_one_run(thirty_days):
    with instance_for_test() as instance:
        job = backfill_defs.resolve_job_def("daily_features_job")
        result = job.execute_in_process(
            instance=instance, tags=partition_range_tags(KEYS[0], KEYS[-1])
        )
        assert result.success
        assert len(instance.get_runs()) == 1
        for asset in SELECTION:
            assert instance.get_materialized_partitions(asset) == set(KEYS)
        checks = result.get_asset_check_evaluations()
        assert {d for e in checks for d in checked_days(e)} == set(KEYS)
        assert all(c.passed for c in checks if c.severity == AssetCheckSeverity.ERROR)


def test_an_asset_backfill_of_thirty_days_is_two_range_runs(thirty_days):
    with instance_for_test(overrides=SYNC_INSTANCE) as instance:
        origin = InProcessCodeLocationOrigin(
            LoadableTargetOrigin(python_file=__file__, attribute="backfill_defs"),
            location_name="fraud_backfill_test",
        )
        with WorkspaceProcessContext(instance, InProcessWorkspaceLoadTarget([origin])) as ctx:
            backfill = PartitionBackfill.from_asset_partitions(
                backfill_id=make_new_backfill_id(),
                asset_graph=ctx.create_request_context().asset_graph,
                partition_names=KEYS,
                asset_selection=SELECTION,
                backfill_timestamp=time.time(),
                tags={},
                dynamic_partitions_store=instance,
                all_partitions=False,
                title="30 days",
                description=None,
                run_config=None,
            )
            instance.add_backfill(backfill)
            for _ in range(4):  # each daemon iteration launches what is ready
                list(execute_backfill_iteration(ctx, logging.getLogger("backfill")))
                if instance.get_backfill(backfill.backfill_id).status != BulkActionStatus.REQUESTED:
                    break
            assert instance.get_backfill(backfill.backfill_id).status == (
                BulkActionStatus.COMPLETED_SUCCESS
            )
        assert _ranges(instance) == [
            (KEYS[0], KEYS[-1], ["orders_by_entity", "raw_orders"]),
            (KEYS[0], KEYS[-1], ["entity_features"]),
        ]
        for asset in SELECTION:
            assert instance.get_materialized_partitions(asset) == set(KEYS)
