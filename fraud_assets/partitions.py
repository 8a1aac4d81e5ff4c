"""The one time partitioning of the platform: a partition is a UTC day of orders.

The first partition is the data's first day (`fraud_core.calendar.first_day`: `FRAUD_START_DATE`,
else the day recorded in the data folder, else 2026-01-01); the last partition is yesterday.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, timedelta

from dagster import (
    AssetCheckExecutionContext,
    AssetExecutionContext,
    DailyPartitionsDefinition,
    Failure,
)
from dagster._core.storage.tags import (  # the keys Dagster's own range runs carry
    ASSET_PARTITION_RANGE_END_TAG,
    ASSET_PARTITION_RANGE_START_TAG,
    PARTITION_NAME_TAG,
)

from fraud_core.calendar import first_day

START_DATE = first_day().isoformat()

daily_partitions = DailyPartitionsDefinition(start_date=START_DATE, timezone="UTC")


def partition_days(context: AssetExecutionContext | AssetCheckExecutionContext) -> list[date]:
    """The days a run owns: one for a single-partition run, all of them for a range run
    (`BackfillPolicy.single_run()`). Never use `context.partition_key`, which fails on ranges."""
    if isinstance(context, AssetCheckExecutionContext) and not context.has_partition_key:
        return _tagged_days(context)
    window = context.partition_time_window
    first, end = window.start.date(), window.end.date()
    return [first + timedelta(days=i) for i in range((end - first).days)]


def _tagged_days(context: AssetCheckExecutionContext) -> list[date]:
    """The days of a run of checks alone (the checks are not partitioned: `range_checks`): its
    partition or range tags, as the UI's "Execute checks" with a partition sets them."""
    days = tagged_days(context.run.tags)
    if days is None:
        raise Failure(
            "these checks judge days: run them with a partition or a partition range, or with "
            "their asset"
        )
    return days


def tagged_days(tags: Mapping[str, str]) -> list[date] | None:
    """The days a run covers by its partition or range tags; None for an unpartitioned run."""
    single = tags.get(PARTITION_NAME_TAG)
    first = tags.get(ASSET_PARTITION_RANGE_START_TAG, single)
    last = tags.get(ASSET_PARTITION_RANGE_END_TAG, single)
    if first is None or last is None:
        return None
    start, end = date.fromisoformat(first), date.fromisoformat(last)
    return [start + timedelta(days=i) for i in range((end - start).days + 1)]


def partition_range_tags(first: date | str, last: date | str) -> dict[str, str]:
    """Run tags that make one run cover the days first..last (inclusive), as a single-run
    backfill does: pass them to `materialize(..., tags=...)` or `job.execute_in_process`."""
    return {
        ASSET_PARTITION_RANGE_START_TAG: str(first),
        ASSET_PARTITION_RANGE_END_TAG: str(last),
    }
