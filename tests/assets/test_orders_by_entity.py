"""`orders_by_entity` through Dagster on an in-process Dask cluster: a range run buckets every
order once per entity kind, in a bucket that is stable across days and processes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import date, timedelta

import numpy as np
import pandas as pd
import pyarrow.parquet as pq

from fraud_assets.assets.orders_by_entity import (
    EVERY_ORDER_ONCE_PER_ENTITY_KIND,
    check_orders_by_entity_day,
    orders_by_entity,
    orders_by_entity_checks,
)
from fraud_assets.assets.raw_orders import raw_orders
from fraud_core.buckets import DEFAULT_N_BUCKETS, bucket_files, entity_bucket
from fraud_core.schema import ENTITY_KINDS, ORDER_SCHEMA
from fraud_core.storage import write_parquet

from ..checks import verdicts
from ..configs import START

DAYS = [START + timedelta(days=i) for i in range(3)]
ASSETS = [raw_orders, orders_by_entity, orders_by_entity_checks]


def read_buckets(layout, kind: str, day: date) -> pd.DataFrame:
    parts = [
        pd.read_parquet(path).assign(bucket=number)
        for number, path in bucket_files(layout, kind, day)
    ]
    return pd.concat(parts, ignore_index=True)


def test_a_range_run_puts_every_order_once_in_its_bucket_per_kind(landed, materialize_range):
    result = materialize_range(ASSETS, DAYS[0], DAYS[-1])

    assert result.success
    evaluations = result.get_asset_check_evaluations()
    assert set(verdicts(result)) == {
        (EVERY_ORDER_ONCE_PER_ENTITY_KIND, d.isoformat()) for d in DAYS
    }
    assert all(e.passed for e in evaluations)

    metadata = {
        m.partition: m.materialization.metadata
        for m in result.get_asset_materialization_events()
        if m.asset_key.to_user_string() == "orders_by_entity"
    }
    bucket_of: dict[tuple[str, str], set[int]] = {}
    for day in DAYS:
        raw = pd.read_parquet(landed.raw_orders(day))
        for kind in ENTITY_KINDS:
            files = bucket_files(landed, kind, day)
            assert [n for n, _ in files] == list(range(DEFAULT_N_BUCKETS))
            rows = read_buckets(landed, kind, day)
            assert sorted(rows["order_id"]) == sorted(raw["order_id"])  # each order once
            for _, path in files:
                part = pq.read_table(path)
                assert part.schema.remove_metadata().equals(ORDER_SCHEMA)
                frame = part.to_pandas()
                # sorted by (entity, time) for the feature kernels
                assert frame.equals(
                    frame.sort_values([kind, "order_date", "order_id"]).reset_index(drop=True)
                )
            for value, bucket in zip(rows[kind], rows["bucket"], strict=True):
                bucket_of.setdefault((kind, value), set()).add(bucket)
            meta = metadata[day.isoformat()]
            assert meta[f"{kind}__rows"].value == len(raw)
            sizes = rows.groupby("bucket").size().reindex(range(DEFAULT_N_BUCKETS), fill_value=0)
            assert meta[f"{kind}__bucket_rows_min"].value == sizes.min()
            assert meta[f"{kind}__bucket_rows_max"].value == sizes.max()
    # an entity seen on several days sits in the same bucket every day
    assert all(len(buckets) == 1 for buckets in bucket_of.values())


def test_a_rerun_with_fewer_buckets_replaces_the_old_files(landed, materialize_range):
    day = DAYS[0]
    materialize_range(ASSETS, day, day)
    config = {"ops": {"orders_by_entity": {"config": {"n_buckets": 3}}}}
    result = materialize_range(ASSETS, day, day, run_config=config)

    assert all(e.passed for e in result.get_asset_check_evaluations())
    for kind in ENTITY_KINDS:
        assert [n for n, _ in bucket_files(landed, kind, day)] == [0, 1, 2]


def test_the_check_catches_lost_duplicated_and_misplaced_orders(landed, materialize_range):
    day = DAYS[0]
    materialize_range(ASSETS, day, day)
    assert check_orders_by_entity_day(landed, day.isoformat(), ENTITY_KINDS).passed
    files = dict(bucket_files(landed, "email", day))

    moved = pd.read_parquet(files[0])
    write_parquet(moved.iloc[1:], files[0], ORDER_SCHEMA)  # row 0 leaves bucket 0 ...
    target = pd.read_parquet(files[1])
    write_parquet(pd.concat([target, moved.iloc[:1]]), files[1], ORDER_SCHEMA)  # ... for bucket 1
    result = check_orders_by_entity_day(landed, day.isoformat(), ENTITY_KINDS)
    assert not result.passed
    assert result.metadata["email__misplaced"] == 1
    assert result.metadata["email__missing"] == 0

    write_parquet(pd.concat([target, target.iloc[:2]]), files[1], ORDER_SCHEMA)
    result = check_orders_by_entity_day(landed, day.isoformat(), ENTITY_KINDS)
    assert result.metadata["email__duplicates"] == 2
    assert result.metadata["email__missing"] == 1  # the row taken out of bucket 0
    assert result.metadata["customer_id__missing"] == 0  # other kinds untouched


def test_entity_buckets_are_the_same_in_another_process():
    values = [f"u{i:06d}@example.com" for i in range(2_000)] + ["", "ünïcode", "10.0.0.1"]
    here = entity_bucket(pd.Series(values), 8)
    code = (
        "import sys, json, pandas as pd; from fraud_core.buckets import entity_bucket; "
        "values = json.load(sys.stdin); print(json.dumps(entity_bucket(values, 8).tolist()))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        input=json.dumps(values),
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "PYTHONHASHSEED": "12345"},
    )
    assert json.loads(out.stdout) == here.tolist()
    assert entity_bucket(np.array(values, dtype=object), 8).tolist() == here.tolist()
    counts = np.bincount(here, minlength=8)
    assert counts.min() > 180 and counts.max() < 320  # roughly even: 2,003 / 8 ≈ 250
