"""The Dask resource computes on threads of the run's own process unless told otherwise (worker
processes cost 10-40 s to start on 2 cores and lost at every measured size, bench/RESULTS.md):
`processes` on the resource, else $FRAUD_DASK_PROCESSES."""

from __future__ import annotations

from datetime import date

import pytest
from dagster import DailyPartitionsDefinition, asset, materialize

from fraud_assets.partitions import partition_range_tags, tagged_days
from fraud_assets.resources import PROCESSES_ENV, DaskResource

DAYS = DailyPartitionsDefinition(start_date="2026-01-01")
seen: list[bool] = []


@asset(partitions_def=DAYS)
def asks(dask: DaskResource) -> None:
    seen.append(dask.use_processes())
    with dask.get_client() as client:  # the cluster it starts is the one it says
        seen.append(client.cluster.processes)


@asset
def asks_unpartitioned(dask: DaskResource) -> None:
    seen.append(dask.use_processes())


def test_tagged_days():
    assert tagged_days({"dagster/partition": "2026-01-05"}) == [date(2026, 1, 5)]
    assert len(tagged_days(partition_range_tags("2026-01-01", "2026-12-31"))) == 365
    assert tagged_days({"other": "x"}) is None


YEAR = partition_range_tags("2026-01-01", "2026-12-31")


@pytest.mark.parametrize("tags", [{"dagster/partition": "2026-01-05"}, YEAR])
def test_threads_by_default_processes_when_told(tags, monkeypatch):
    monkeypatch.delenv(PROCESSES_ENV, raising=False)
    seen.clear()
    assert materialize([asks], resources={"dask": DaskResource()}, tags=tags).success
    assert seen == [False, False]
    monkeypatch.setenv(PROCESSES_ENV, "1")
    seen.clear()
    assert materialize([asks], resources={"dask": DaskResource()}, tags=tags).success
    assert seen == [True, True]
    seen.clear()  # configured, it is what it says
    resources = {"dask": DaskResource(processes=False)}
    assert materialize([asks], resources=resources, tags=tags).success
    assert seen == [False, False]


def test_an_unpartitioned_run_too(monkeypatch):
    monkeypatch.delenv(PROCESSES_ENV, raising=False)
    seen.clear()
    assert materialize([asks_unpartitioned], resources={"dask": DaskResource()}).success
    assert seen == [False]


def test_a_bad_setting_names_the_variable(monkeypatch):
    monkeypatch.setenv(PROCESSES_ENV, "yes")
    with pytest.raises(ValueError, match=PROCESSES_ENV):
        DaskResource().use_processes()
