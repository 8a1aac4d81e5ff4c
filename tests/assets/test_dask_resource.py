"""The Dask resource starts worker processes only for runs long enough to repay their start
(10-40 s on 2 cores): a daily run computes on threads of its own process."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from dagster import DailyPartitionsDefinition, asset, materialize

from fraud_assets.partitions import partition_range_tags, tagged_days
from fraud_assets.resources import PROCESS_DAYS, DaskResource

DAYS = DailyPartitionsDefinition(start_date="2026-01-01")
seen: list[bool] = []


@asset(partitions_def=DAYS)
def asks(dask: DaskResource) -> None:
    seen.append(dask.use_processes())


@asset
def asks_unpartitioned(dask: DaskResource) -> None:
    seen.append(dask.use_processes())


def test_tagged_days():
    assert tagged_days({"dagster/partition": "2026-01-05"}) == [date(2026, 1, 5)]
    assert len(tagged_days(partition_range_tags("2026-01-01", "2026-12-31"))) == 365
    assert tagged_days({"other": "x"}) is None


@pytest.mark.parametrize(
    ("tags", "processes"),
    [
        ({"dagster/partition": "2026-01-05"}, False),
        (partition_range_tags("2026-01-01", date(2026, 1, 1) + timedelta(PROCESS_DAYS - 1)), False),
        (partition_range_tags("2026-01-01", date(2026, 1, 1) + timedelta(PROCESS_DAYS)), True),
    ],
)
def test_processes_follow_the_runs_days(tags, processes):
    seen.clear()
    assert materialize([asks], resources={"dask": DaskResource()}, tags=tags).success
    assert seen == [processes]
    seen.clear()  # configured, it is what it says
    assert materialize([asks], resources={"dask": DaskResource(processes=True)}, tags=tags).success
    assert seen == [True]


def test_an_unpartitioned_run_gets_processes():
    seen.clear()
    assert materialize([asks_unpartitioned], resources={"dask": DaskResource()}).success
    assert seen == [True]
