"""A check covers a run's days with one evaluation: a daily run's is its day's verdict; a range
run's names every failed day and why, in its description (what the run log and the Checks tab
show) and its metadata. Per run a handful of writes to the event log, whatever the range."""

from __future__ import annotations

from datetime import timedelta

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from dagster import AssetSelection, materialize

from fraud_assets.assets.raw_orders import ORDER_IDS_ARE_UNIQUE, raw_orders, raw_orders_checks
from fraud_assets.lib.range_checks import (
    DAYS_IN_DESCRIPTION,
    DayResult,
    checked_days,
    day_description,
    failed_days,
    range_summary,
)
from fraud_assets.partitions import partition_range_tags

from ..configs import START, feature_resources  # the first day of the `landed` fixture


@pytest.mark.parametrize(
    ("day", "description", "expected"),
    [
        ("2026-01-02", "3 duplicate order ids", "2026-01-02: 3 duplicate order ids"),
        ("2026-01-02", None, "2026-01-02"),
        (None, "no partition", "no partition"),
        (None, None, None),
    ],
)
def test_day_description(day, description, expected):
    assert day_description(day, description) == expected


def test_a_single_day_keeps_its_own_figures():
    passed, description, metadata = range_summary(
        {"2026-01-02": DayResult(False, {"duplicates": 3}, "3 duplicate order ids")}
    )
    assert not passed
    assert description == "2026-01-02: 3 duplicate order ids"
    assert metadata == {"day": "2026-01-02", "duplicates": 3}


def test_a_range_names_its_failed_days_and_why():
    days = [(START + timedelta(days=i)).isoformat() for i in range(30)]
    bad = {days[3]: "3 duplicate order ids", days[17]: "no valid order"}
    results = {d: DayResult(d not in bad, {"rows": i}, bad.get(d)) for i, d in enumerate(days)}
    passed, description, metadata = range_summary(results)
    assert not passed
    assert description == (
        f"{days[0]}..{days[-1]}: 2 of 30 days failed: "
        f"{days[3]} (3 duplicate order ids), {days[17]} (no valid order)"
    )
    assert list(metadata["failed_days"].value) == [days[3], days[17]]
    assert (metadata["days"], metadata["days_failed"]) == (30, 2)
    table = metadata["failed_day_details"].value
    assert f"| {days[17]} | no valid order | `" in table and '"rows": 17' in table


def test_a_long_list_of_failed_days_is_cut_in_the_description_not_in_the_metadata():
    days = [(START + timedelta(days=i)).isoformat() for i in range(12)]
    passed, description, metadata = range_summary({d: DayResult(False) for d in days})
    assert not passed
    assert description.endswith(f"and {12 - DAYS_IN_DESCRIPTION} more")
    assert list(metadata["failed_days"].value) == days


def test_a_clean_range(landed, materialize_range):
    run = materialize_range([raw_orders, raw_orders_checks], START, START + timedelta(days=3))
    evaluations = run.get_asset_check_evaluations()
    # one evaluation per check for the whole run, every one covering the run's four days
    assert sorted(e.check_name for e in evaluations) == sorted(
        s.name for s in raw_orders_checks.check_specs
    )
    days = [(START + timedelta(days=i)).isoformat() for i in range(4)]
    for evaluation in evaluations:
        assert checked_days(evaluation) == days
        assert evaluation.description.startswith(f"{days[0]}..{days[-1]}: ")
    unique = next(e for e in evaluations if e.check_name == ORDER_IDS_ARE_UNIQUE)
    assert unique.passed and failed_days(unique) == []


def test_a_range_run_with_one_bad_day_fails_and_names_it(landed, materialize_range):
    """A day file whose order ids repeat (written behind the asset's back) fails the blocking
    check of the whole run; the evaluation names that day, and only that day."""
    materialize_range([raw_orders], START, START + timedelta(days=2))
    bad_day = START + timedelta(days=1)
    path = landed.raw_orders(bad_day)
    table = pq.read_table(path)
    pq.write_table(pa.concat_tables([table, table.slice(0, 3)]), path)
    run = materialize(  # the checks alone, on the files as they are now
        [raw_orders, raw_orders_checks],
        selection=AssetSelection.checks_for_assets(raw_orders),
        resources=feature_resources(),
        tags=partition_range_tags(START, START + timedelta(days=2)),
        raise_on_error=False,
    )
    assert not run.success
    unique = next(
        e for e in run.get_asset_check_evaluations() if e.check_name == ORDER_IDS_ARE_UNIQUE
    )
    assert not unique.passed
    assert failed_days(unique) == [bad_day.isoformat()]
    assert f"1 of 3 days failed: {bad_day.isoformat()} (3 duplicate order ids)" in (
        unique.description
    )
