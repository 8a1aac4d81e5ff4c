"""Landing files from the generator in a temporary FRAUD_DATA_DIR, and range runs through
Dagster's `materialize` on an in-process Dask cluster."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import date

import numpy as np
import pytest
from dagster import AssetsDefinition, DagsterInstance, ExecuteInProcessResult, materialize

from fraud_assets.partitions import partition_range_tags
from fraud_core.generator import GeneratorConfig, iter_daily_orders, write_landing_files
from fraud_core.model.replay import feature_days
from fraud_core.storage import DataLayout, write_parquet

from ..configs import MODEL_DATA, START, feature_resources

SMALL = GeneratorConfig(
    n_customers=300, n_emails=300, n_ips=300, orders_per_day=200, days=4, start=START, seed=7
)


@pytest.fixture
def data_dir(tmp_path, monkeypatch) -> DataLayout:
    """An empty data folder that the resources find through $FRAUD_DATA_DIR."""
    monkeypatch.setenv("FRAUD_DATA_DIR", str(tmp_path))
    monkeypatch.delenv("FRAUD_MAX_QUARANTINE_SHARE", raising=False)
    monkeypatch.delenv("DASK_SCHEDULER_ADDRESS", raising=False)
    return DataLayout(tmp_path)


@pytest.fixture
def landed(data_dir) -> DataLayout:
    """Four days of generated orders in the landing folder (parquet, ~200 a day)."""
    write_landing_files(SMALL, data_dir.landing)
    return data_dir


@pytest.fixture
def features_on_disk(data_dir) -> DataLayout:
    """`entity_features` files as the asset writes them, from the production feature code
    (MODEL_DATA: six weeks of orders a model learns from)."""
    for day, frame in feature_days(iter_daily_orders(MODEL_DATA), dtype=np.float64):
        write_parquet(frame, data_dir.entity_features(day))
    return data_dir


RangeRun = Callable[..., ExecuteInProcessResult]


@pytest.fixture
def materialize_range() -> RangeRun:
    """Materialize `assets` for the days first..last as ONE run (a single-run backfill)."""

    def run(
        assets: Sequence[AssetsDefinition],
        first: date,
        last: date,
        run_config: dict | None = None,
        instance: DagsterInstance | None = None,
        raise_on_error: bool = True,
    ) -> ExecuteInProcessResult:
        return materialize(
            assets,
            resources=feature_resources(),  # the data folder is $FRAUD_DATA_DIR, set by `data_dir`
            run_config=run_config,
            instance=instance,
            tags=partition_range_tags(first, last),
            raise_on_error=raise_on_error,
        )

    return run
