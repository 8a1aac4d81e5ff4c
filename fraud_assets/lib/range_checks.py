"""Asset checks that cover a run's days with one evaluation each, per-day verdicts inside.

A check is judged per day (`DayResult`), but recorded once per run: a daily run's evaluation is
its day's verdict, and a range run's evaluation (a backfill of a year) carries every day's
verdict in its metadata and names the failed days and why in its description. Dagster stores
each evaluation as events plus a row of the check-execution table, each write its own
transaction (about 10 ms on the default SQLite instance): one evaluation per check and day made
a year's backfill of the daily assets spend over a minute only recording ~5,000 verdicts
(issue 14, bench/RESULTS.md). Per run it is ~15 writes, whatever the range.

Where a reader sees a range's verdicts (the asset's Checks tab, the run's log):
- the description: `2026-01-01..2026-12-31: 2 of 365 days failed: 2026-03-04 (3 duplicate order
  ids), 2026-05-01 (no valid order)`; a single day: `2026-03-04: 3 duplicate order ids`;
- the metadata: `first_day`, `last_day`, `days`, `days_failed`, `failed_days` (every failed day,
  JSON), `failed_day_details` (a table of the first failed days with their figures) and, for a
  single day, that day's own figures as before.

The checks' specs have no `partitions_def`: a partitioned check would make Dagster plan one
execution row per day and leave those not evaluated one by one PLANNED, shown as skipped.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import date
from typing import Any, TypeVar

from dagster import (
    AssetCheckEvaluation,
    AssetCheckResult,
    AssetCheckSeverity,
    AssetKey,
    MetadataValue,
)

# Failed days named in a description, and detailed in the metadata table, at most.
DAYS_IN_DESCRIPTION = 5
DAYS_IN_TABLE = 50

T = TypeVar("T")


def judge_days(judge: Callable[[date], T], days: Iterable[date]) -> dict[date, T]:
    """`judge(day)` of every day, several days at once on threads (a day's judgement reads its
    files and runs Arrow and numpy kernels, which release the GIL): a year's range check takes
    the cores the step has instead of one. Days independent of each other only."""
    days = list(days)
    with ThreadPoolExecutor(max_workers=max(1, min(len(days), os.cpu_count() or 1))) as pool:
        return dict(zip(days, pool.map(judge, days), strict=True))


@dataclass(frozen=True)
class DayResult:
    """One check's verdict on one day."""

    passed: bool
    metadata: Mapping[str, Any] = field(default_factory=dict)
    description: str | None = None


def day_description(day: str | None, description: str | None) -> str | None:
    """A day's verdict led by the day: `2026-01-02: 3 duplicate order ids`, or just the day."""
    if day is None:
        return description
    return f"{day}: {description}" if description else day


def _plain(value: Any) -> Any:
    """A metadata value as plain JSON (for the failed days' table)."""
    if isinstance(value, MetadataValue):
        value = value.value
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    try:
        json.dumps(value)
        return value
    except TypeError:
        return str(value)


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def range_summary(results: Mapping[str, DayResult]) -> tuple[bool, str, dict[str, Any]]:
    """(passed, description, metadata) of one check over the days of `results` (ISO day keys)."""
    if not results:
        raise ValueError("a check covers at least one day")
    days = sorted(results)
    failed = [d for d in days if not results[d].passed]
    if len(days) == 1:
        only = results[days[0]]
        metadata = {"day": days[0], **only.metadata}
        return only.passed, day_description(days[0], only.description) or days[0], metadata

    span = f"{days[0]}..{days[-1]}"
    if not failed:
        description = f"{span}: all {len(days)} days passed"
    else:
        named = ", ".join(
            f"{d} ({results[d].description})" if results[d].description else d
            for d in failed[:DAYS_IN_DESCRIPTION]
        )
        extra = len(failed) - DAYS_IN_DESCRIPTION
        more = f" and {extra} more" if extra > 0 else ""
        description = f"{span}: {len(failed)} of {len(days)} days failed: {named}{more}"
    metadata: dict[str, Any] = {
        "first_day": days[0],
        "last_day": days[-1],
        "days": len(days),
        "days_failed": len(failed),
        "failed_days": MetadataValue.json(
            {
                d: {
                    "reason": results[d].description,
                    "figures": {k: _plain(v) for k, v in results[d].metadata.items()},
                }
                for d in failed
            }
        ),
    }
    if failed:
        rows = ["| day | reason | figures |", "|---|---|---|"]
        for d in failed[:DAYS_IN_TABLE]:
            figures = json.dumps({k: _plain(v) for k, v in results[d].metadata.items()})
            rows.append(f"| {d} | {_cell(results[d].description or '')} | `{_cell(figures)}` |")
        if len(failed) > DAYS_IN_TABLE:
            rows.append(f"| … | {len(failed) - DAYS_IN_TABLE} more failed days | |")
        metadata["failed_day_details"] = MetadataValue.md("\n".join(rows))
    return not failed, description, metadata


def range_check_result(
    check_name: str,
    results: Mapping[str, DayResult],
    *,
    severity: AssetCheckSeverity = AssetCheckSeverity.ERROR,
    asset_key: AssetKey | str | None = None,
) -> AssetCheckResult:
    """The one result of `check_name` over the run's days. A failed blocking check (severity
    ERROR on a blocking spec) fails the step after its results are recorded."""
    passed, description, metadata = range_summary(results)
    return AssetCheckResult(
        check_name=check_name,
        asset_key=asset_key,
        passed=passed,
        severity=severity,
        description=description,
        metadata=metadata,
    )


@dataclass(frozen=True)
class DayVerdict:
    """One day's verdict as read back from an evaluation of `range_check_result`: the figures
    of a day that passed inside a range are not kept (only failed days carry theirs)."""

    passed: bool
    description: str | None
    figures: Mapping[str, Any]
    severity: AssetCheckSeverity


def checked_days(evaluation: AssetCheckEvaluation) -> list[str]:
    """The days an evaluation written by `range_check_result` covers, oldest first."""
    metadata = evaluation.metadata
    if "day" in metadata:
        return [metadata["day"].value]
    first = date.fromisoformat(metadata["first_day"].value)
    last = date.fromisoformat(metadata["last_day"].value)
    return [date.fromordinal(o).isoformat() for o in range(first.toordinal(), last.toordinal() + 1)]


def failed_days(evaluation: AssetCheckEvaluation) -> list[str]:
    """The days an evaluation written by `range_check_result` found failed, oldest first."""
    return [d for d, v in day_verdicts(evaluation).items() if not v.passed]


def day_verdicts(evaluation: AssetCheckEvaluation) -> dict[str, DayVerdict]:
    """Every day's verdict in an evaluation written by `range_check_result` (an evaluation of
    another check, one that judges no day, is one verdict under the key "")."""
    metadata = evaluation.metadata
    if "day" not in metadata and "first_day" not in metadata:
        return {"": DayVerdict(evaluation.passed, evaluation.description, {}, evaluation.severity)}
    if "day" in metadata:
        day = metadata["day"].value
        figures = {k: _plain(v) for k, v in metadata.items() if k != "day"}
        prefix = f"{day}: "
        text = evaluation.description or ""
        description = text[len(prefix) :] if text.startswith(prefix) else None
        return {day: DayVerdict(evaluation.passed, description, figures, evaluation.severity)}
    failed = metadata["failed_days"].value
    return {
        day: DayVerdict(True, None, {}, evaluation.severity)
        if day not in failed
        else DayVerdict(False, failed[day]["reason"], failed[day]["figures"], evaluation.severity)
        for day in checked_days(evaluation)
    }
