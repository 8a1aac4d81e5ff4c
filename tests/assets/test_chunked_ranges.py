"""A range run computes its days in chunks of at most $FRAUD_CHUNK_ORDERS orders: the result
is the one-pass result exactly, every chunk's end becomes a published snapshot, and the run's
memory follows the chunk, not the range."""

from __future__ import annotations

import shutil
import tracemalloc
from datetime import timedelta

import dask
import pandas as pd
import pytest
from dagster import materialize

from fraud_assets.assets.entity_features import entity_features
from fraud_assets.assets.orders_by_entity import orders_by_entity
from fraud_assets.assets.raw_orders import raw_orders
from fraud_assets.partitions import partition_range_tags
from fraud_core.features.pipeline import CHUNK_ORDERS_ENV, day_chunks, snapshot_days
from fraud_core.features.spec import DEFAULT_SPEC
from fraud_core.generator import GeneratorConfig, write_landing_files
from fraud_core.storage import DataLayout

from ..configs import START, feature_resources

PER_DAY = 1_000
DAYS = [START + timedelta(days=i) for i in range(24)]


def test_day_chunks_hold_at_most_the_budget_and_at_least_a_day():
    rows = [5, 5, 5, 20, 0, 5]
    days = list(range(6))
    assert day_chunks(days, rows, 10) == [[0, 1], [2], [3], [4, 5]]
    assert day_chunks(days, rows, 1_000) == [days]
    assert day_chunks([], [], 10) == []


@pytest.fixture(scope="module")
def ingested(tmp_path_factory):
    """24 days of ~1,000 orders, ingested and bucketed once; each test copies the folder."""
    root = tmp_path_factory.mktemp("chunked")
    cfg = GeneratorConfig(
        n_customers=2_000, n_emails=2_000, n_ips=1_500, orders_per_day=PER_DAY, days=len(DAYS),
        start=START, seed=11,
    )  # fmt: skip
    layout = DataLayout(root)
    write_landing_files(cfg, layout.landing)
    assert materialize(
        [raw_orders, orders_by_entity],
        resources=feature_resources(root),
        tags=partition_range_tags(DAYS[0], DAYS[-1]),
    ).success
    return layout


def _features(source: DataLayout, target, days, chunk_orders: int, monkeypatch):
    """entity_features over `days` in a copy of `source`, chunked at `chunk_orders`; the
    run's peak of traced memory (numpy's feature blocks, in this process: threaded Dask)."""
    shutil.copytree(source.root, target)
    monkeypatch.setenv(CHUNK_ORDERS_ENV, str(chunk_orders))
    tracemalloc.start()
    try:
        result = materialize(
            [entity_features],
            resources=feature_resources(target),
            tags=partition_range_tags(days[0], days[-1]),
        )
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert result.success
    return DataLayout(target), peak


def test_chunked_equals_one_pass_and_publishes_each_chunks_snapshot(
    ingested, tmp_path, monkeypatch
):
    one, _ = _features(ingested, tmp_path / "one", DAYS, 10**9, monkeypatch)
    chunked, _ = _features(ingested, tmp_path / "chunked", DAYS, 3 * PER_DAY, monkeypatch)
    for day in DAYS:
        pd.testing.assert_frame_equal(
            pd.read_parquet(chunked.entity_features(day)), pd.read_parquet(one.entity_features(day))
        )
    kind = DEFAULT_SPEC.entities[0].kind
    assert snapshot_days(one, kind, 4) == [DAYS[-1]]
    # chunks of about three days: a snapshot at every chunk's end, the range's end among them
    marked = snapshot_days(chunked, kind, 4)
    assert len(marked) >= len(DAYS) // 4 and marked[-1] == DAYS[-1]
    assert not chunked.staging_root.exists() or not any(chunked.staging_root.iterdir())


def test_a_range_run_stays_within_its_chunk_budget(ingested, tmp_path, monkeypatch):
    """Doubling the range grows a one-pass run's peak memory by the added days' features; a
    chunked run's peak grows by much less (what remains is the run's bookkeeping)."""
    budget = 2 * PER_DAY
    with dask.config.set({"distributed.worker.profile.enabled": False}):  # its samples add up
        _features(ingested, tmp_path / "warm", DAYS[:1], budget, monkeypatch)  # first-use costs
        peaks = {
            (name, len(days)): _features(
                ingested, tmp_path / f"{name}{len(days)}", days, orders, monkeypatch
            )[1]
            for name, orders in (("chunked", budget), ("one_pass", 10**9))
            for days in (DAYS[:12], DAYS)
        }
    one_pass_growth = peaks[("one_pass", 24)] - peaks[("one_pass", 12)]
    chunked_growth = peaks[("chunked", 24)] - peaks[("chunked", 12)]
    assert one_pass_growth > 4_000_000, peaks  # 12 days x 1,000 orders x 50 features x 8 bytes
    assert chunked_growth < 0.4 * one_pass_growth, peaks
