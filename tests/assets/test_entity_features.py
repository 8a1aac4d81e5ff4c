"""`entity_features` through Dagster `materialize` on a real (in-process) Dask cluster: a range
run, then a single next day from the snapshot, then a day after a gap; every result must equal the
pure offline path over the whole history, and the checks must pass."""

from __future__ import annotations

from datetime import date, timedelta

import pandas as pd
import pyarrow.parquet as pq
import pytest
from dagster import materialize

from fraud_assets.assets.entity_features import entity_features, entity_features_checks
from fraud_assets.assets.orders_by_entity import orders_by_entity
from fraud_assets.assets.raw_orders import raw_orders
from fraud_assets.lib.range_checks import checked_days
from fraud_core.features.offline import advance
from fraud_core.features.pipeline import day_end_s
from fraud_core.features.spec import DEFAULT_SPEC
from fraud_core.generator import GeneratorConfig, write_landing_files
from fraud_core.storage import DataLayout

from ..configs import START, feature_resources


def _run(tmp_path, first: date, last: date):
    resources = feature_resources(tmp_path)
    tags = {
        "dagster/asset_partition_range_start": first.isoformat(),
        "dagster/asset_partition_range_end": last.isoformat(),
    }
    result = materialize(
        [raw_orders, orders_by_entity, entity_features, entity_features_checks],
        resources=resources,
        tags=tags,
        raise_on_error=False,
    )
    assert result.success
    return result


def _expected(layout: DataLayout, days: list[date]) -> pd.DataFrame:
    orders = pd.concat(
        [pq.read_table(layout.raw_orders(d)).to_pandas() for d in days], ignore_index=True
    )
    feats, _ = advance({}, orders, day_end_s(days[-1]))
    return feats


@pytest.fixture(scope="module")
def landed(tmp_path_factory):
    root = tmp_path_factory.mktemp("data")
    cfg = GeneratorConfig(
        n_customers=300, n_emails=300, n_ips=200, orders_per_day=150, days=8, start=START, seed=3
    )
    write_landing_files(cfg, DataLayout(root).landing)
    return root


def test_range_then_incremental_days_equal_full_history(landed) -> None:
    layout = DataLayout(landed)
    days = [START + timedelta(days=i) for i in range(8)]
    result = _run(landed, days[0], days[4])  # backfill as one range run
    checks = result.get_asset_check_evaluations()
    assert checks and all(c.passed for c in checks)
    assert {d for e in checks for d in checked_days(e)} == {d.isoformat() for d in days[:5]}

    _run(landed, days[5], days[5])  # next day, from the snapshot
    _run(landed, days[7], days[7])  # after a gap: day 6 was never ingested, so day 7 lacks it
    gap = pq.read_table(layout.entity_features(days[7])).to_pandas()
    _run(landed, days[6], days[6])  # the gap filled afterwards ...
    _run(landed, days[7], days[7])  # ... and day 7, now stale, recomputed from day 6's snapshot
    fixed = pq.read_table(layout.entity_features(days[7])).to_pandas()
    assert not gap["customer_id__order_count__30d"].equals(fixed["customer_id__order_count__30d"])

    expected = _expected(layout, days)
    got = pd.concat(
        [pq.read_table(layout.entity_features(d)).to_pandas() for d in days], ignore_index=True
    )
    assert list(got.columns[: len(["order_id"])]) == ["order_id"]
    for name in DEFAULT_SPEC.feature_names:
        pd.testing.assert_series_equal(got[name], expected[name], check_names=False, obj=name)
    assert got["order_id"].tolist() == expected["order_id"].tolist()
    assert set(got.columns) >= {"is_fraud", "label_date", "customer_id"}
