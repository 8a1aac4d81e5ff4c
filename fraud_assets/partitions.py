"""The one time partitioning of the platform: a partition is a UTC day of orders.

The first partition is the data's first day (`fraud_core.calendar.first_day`: `FRAUD_START_DATE`,
else the day recorded in the data folder, else 2026-01-01); the last partition is yesterday.
"""

from __future__ import annotations

from datetime import date, timedelta

from dagster import AssetCheckExecutionContext, AssetExecutionContext, DailyPartitionsDefinition

from fraud_core.calendar import first_day

START_DATE = first_day().isoformat()

daily_partitions = DailyPartitionsDefinition(start_date=START_DATE, timezone="UTC")


def partition_days(context: AssetExecutionContext | AssetCheckExecutionContext) -> list[date]:
    """The days a run owns: one for a single-partition run, all of them for a range run
    (`BackfillPolicy.single_run()`). Never use `context.partition_key`, which fails on ranges."""
    window = context.partition_time_window
    first, end = window.start.date(), window.end.date()
    return [first + timedelta(days=i) for i in range((end - first).days)]


def partition_range_tags(first: date | str, last: date | str) -> dict[str, str]:
    """Run tags that make one run cover the days first..last (inclusive), as a single-run
    backfill does: pass them to `materialize(..., tags=...)` or `job.execute_in_process`."""
    return {
        "dagster/asset_partition_range_start": str(first),
        "dagster/asset_partition_range_end": str(last),
    }
