"""`landing_folder_sensor`: new or changed files in the landing folder become runs of
`daily_features_job` for the days their orders fall in.

The cursor (`LandingCursor`) says which files were handled as they are now, so a file is looked
at again only when it changes (a bad file is reported once, not every tick), in a few dozen
characters however many files the folder holds. A file the cursor does not know (new, changed, or
every file after a cursor reset) is skipped for the days whose raw_orders a run already read after
the file got its present state. The days of a file are read from its `order_date` column (see
`fraud_core.landing`); a file whose rows span several days feeds each of them. Days already
computed after the earliest new day are run again too, because their features carry state from
the days before. The days become one run per contiguous range (range tags, as a single-run
backfill), with a run key made of the range and the fingerprints of the files behind it: the same
file state never starts two runs.

A replace marker (`landing/_replace/YYYY-MM-DD`, see `fraud_core.acceptance`) is watched like a
file of its day: dropping one runs that day again. Days whose run failed (their features were
never computed) join the next run that is requested, so fixing a bad file heals every day the
failed run held back.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path

from dagster import (
    AssetObservation,
    DagsterInstance,
    DefaultSensorStatus,
    MetadataValue,
    RunRequest,
    SensorEvaluationContext,
    SensorResult,
    SkipReason,
    sensor,
)

from fraud_assets.jobs import DAILY_FEATURES_LANE, daily_features_job
from fraud_assets.lib.materializations import MaterializationCache, latest_materializations
from fraud_assets.partitions import (
    ASSET_PARTITION_RANGE_END_TAG,
    ASSET_PARTITION_RANGE_START_TAG,
    daily_partitions,
    partition_range_tags,
)
from fraud_assets.resources import DataLayoutResource
from fraud_assets.sensors.keys import ENTITY_FEATURES, RAW_ORDERS
from fraud_assets.sensors.landing_cursor import FileState, LandingCursor, file_state
from fraud_assets.sensors.ticks import tick_interval_s
from fraud_core.acceptance import read_day_record
from fraud_core.landing import (
    Fingerprint,
    LandingFile,
    inspect_landing_file,
    landing_paths,
    replace_markers,
)
from fraud_core.storage import DataLayout, as_path, file_times, is_remote
from fraud_core.validation import day_of_landing_file

MINIMUM_INTERVAL_S = 30


def contiguous_ranges(days: Iterable[date]) -> list[tuple[date, date]]:
    """Sorted, merged (first, last) ranges of consecutive days."""
    ranges: list[tuple[date, date]] = []
    for day in sorted(set(days)):
        if ranges and day == ranges[-1][1] + timedelta(days=1):
            ranges[-1] = (ranges[-1][0], day)
        else:
            ranges.append((day, day))
    return ranges


@dataclass
class LandingPlan:
    """What one tick decided: the runs to request and the files it reports. Every inspected
    file is handled (not looked at again until it changes) but the `waiting` ones."""

    run_requests: list[RunRequest] = field(default_factory=list)
    rejected: list[LandingFile] = field(default_factory=list)
    already_ingested: list[str] = field(default_factory=list)
    waiting: list[str] = field(default_factory=list)  # orders of days that are not over yet
    outside: list[str] = field(default_factory=list)  # orders before the first partition


def _ingested_after(
    instance: DagsterInstance, days: list[date], cache: MaterializationCache
) -> dict[date, float]:
    """For each day, when the run that last materialized its raw_orders started (epoch s)."""
    keys: list[str | None] = [d.isoformat() for d in days]
    latest_materializations(instance, RAW_ORDERS, keys, cache)
    started: dict[date, float] = {}
    run_starts: dict[str, float | None] = {}
    for day in days:
        target = cache.get((RAW_ORDERS, day.isoformat()))
        if target is None:
            continue
        if target.run_id not in run_starts:
            record = instance.get_run_record_by_id(target.run_id)
            run_starts[target.run_id] = record.start_time if record else None
        start = run_starts[target.run_id]
        if start is not None:
            started[day] = start
    return started


def _accepted_as_is(layout: DataLayout, day: date, f: LandingFile) -> bool:
    """Whether the day's accepted orders were read from this very version of `f`."""
    record = read_day_record(layout, day)
    seen = (record.accepted or {}).get("files", []) if record else []
    size, token = f.fingerprint
    return any(
        s.get("name") == f.name and (s.get("size"), s.get("mtime_ns")) == (size, token)
        for s in seen
    )


def plan_landing_runs(
    instance: DagsterInstance,
    inspected: list[LandingFile],
    landing_days: Iterable[date] = (),
    layout: DataLayout | None = None,
) -> LandingPlan:
    """Turn the inspected new or changed files into run requests (see the module docstring).

    A file is skipped for the days whose raw_orders were last materialized by a run that started
    after the file got its present state (its ctime): those runs already read it (a new sensor, a
    reset cursor, files ingested by hand or by the demo). A file changed since that run has a
    newer ctime, so its days run again. When runs are requested, the days of `landing_days` (the
    days the landing files are named after) whose features were never computed (their run
    failed, say on an unreadable file) join them."""
    plan = LandingPlan()
    first_partition = daily_partitions.start.date()
    last_key = daily_partitions.get_last_partition_key()  # a day is a partition once it is over
    last_partition = date.fromisoformat(last_key) if last_key else first_partition - timedelta(1)
    # day -> (file name, (size, mtime), ctime): the ctime tells a re-delivery that kept its size
    # and mtime (cp -p, rsync -t) from the file the earlier request saw
    wanted: dict[date, set[tuple[str, Fingerprint, int]]] = {}
    cache: MaterializationCache = {}
    for f in inspected:
        if f.problem is not None:
            plan.rejected.append(f)  # not retried until the file changes
            continue
        days = [d for d in f.days if d >= first_partition]
        if len(days) < len(f.days):
            plan.outside.append(f.name)
        if any(d > last_partition for d in days):
            plan.waiting.append(f.name)  # looked at again on the next ticks
        days = [d for d in days if d <= last_partition]
        if days:
            ingested = _ingested_after(instance, days, cache)
            try:
                changed_ns = file_times(f.path)[2]
                changed_at = changed_ns / 1_000_000_000
            except OSError:  # gone meanwhile: nothing to skip
                changed_at, changed_ns = float("inf"), 0
            fresh = [d for d in days if not (d in ingested and ingested[d] > changed_at)]
            if layout is not None and is_remote(f.path) and not f.replace_marker:
                # LastModified is when an upload started, in whole seconds: one that began
                # before a run and ended after the run read the day looks ingested by time.
                # The day's record names what the run read: its ETag must be this object's.
                fresh = [d for d in days if d in fresh or not _accepted_as_is(layout, d, f)]
            if not fresh:
                plan.already_ingested.append(f.name)
            days = fresh
        else:
            changed_ns = 0
        for day in days:
            wanted.setdefault(day, set()).add((f.name, f.fingerprint, changed_ns))
    if not wanted:
        return plan
    # Features of later days carry the state of these days: computed ones are stale now.
    earliest = min(wanted)
    computed = instance.get_materialized_partitions(ENTITY_FEATURES)
    for key in computed:
        day = date.fromisoformat(key)
        if earliest < day <= last_partition:
            wanted.setdefault(day, set())
    # Days whose run failed are not lost: they go with the next request.
    for day in landing_days:
        if first_partition <= day <= last_partition and day.isoformat() not in computed:
            wanted.setdefault(day, set())
    # Run keys are unique per file state: the same state never starts two runs, a new state
    # always starts one (Dagster drops a request whose run key it has seen). A range without a
    # file of its own (later days to recompute, failed days) takes the states of every file
    # that triggered the plan.
    trigger = sorted({entry for entries in wanted.values() for entry in entries}, key=str)
    for first, last in contiguous_ranges(wanted):
        files = sorted(
            {entry for d in wanted if first <= d <= last for entry in wanted[d]}, key=str
        )
        digest = hashlib.sha256(json.dumps([files, trigger]).encode()).hexdigest()[:16]
        plan.run_requests.append(
            RunRequest(
                run_key=f"landing:{first}..{last}:{digest}",
                tags={
                    **partition_range_tags(first, last),
                    **DAILY_FEATURES_LANE,
                    "fraud/source": "landing_folder_sensor",
                },
            )
        )
    return plan


def _states(paths: Mapping[str, Path]) -> dict[str, FileState]:
    """The state of each file, in the order given; a file removed meanwhile is left out."""
    states = {}
    for name, path in paths.items():
        try:
            states[name] = file_state(path)
        except OSError:
            continue
    return states


def _observation(f: LandingFile) -> AssetObservation:
    return AssetObservation(
        asset_key=RAW_ORDERS,
        description=f"landing file {f.name} was not ingested: {f.problem}",
        metadata={
            "landing_file": MetadataValue.path(str(f.path)),
            "problem": f.problem or "",
            "size_bytes": f.fingerprint[0],
        },
    )


@sensor(
    name="landing_folder_sensor",
    job=daily_features_job,
    minimum_interval_seconds=tick_interval_s(MINIMUM_INTERVAL_S),
    default_status=DefaultSensorStatus.RUNNING,
    description=(
        "Watches $FRAUD_DATA_DIR/landing. A new or changed file starts daily_features_job for "
        "the days its orders fall in (and the later days whose features carry their state), "
        "one run per range of days. Misnamed or unreadable files are reported as observations "
        "of raw_orders and in the tick's log, and looked at again only when they change."
    ),
)
def landing_folder_sensor(
    context: SensorEvaluationContext, layout: DataLayoutResource
) -> SensorResult:
    started_ns = time.time_ns()  # before any file is listed: see `LandingCursor.after_tick`
    data = layout.layout()
    landing = data.landing
    markers = {m.name: m for m in replace_markers(data)}
    present = {p.name: p for p in landing_paths(landing)}
    states = _states({**{n: m.path for n, m in markers.items()}, **present})
    names = LandingCursor.read(context.cursor).to_look_at(states)
    if names is None:
        context.log.warning(
            "a landing file appeared with a change time older than the cursor's (a clock stepped "
            "back?): every file is looked at again, what runs already read is skipped"
        )
        names = list(states)
    changed = [markers[n] if n in markers else inspect_landing_file(present[n]) for n in names]
    named_days = {d for name in present if (d := day_of_landing_file(as_path(name))) is not None}
    plan = plan_landing_runs(context.instance, changed, named_days, data)
    for f in plan.rejected:
        context.log.warning(f"landing file {f.name} not ingested: {f.problem}")
    if plan.already_ingested:
        context.log.info(f"already ingested before this sensor saw them: {plan.already_ingested}")
    if plan.waiting:
        context.log.info(f"orders of a day that is not over yet, looked at again: {plan.waiting}")
    if plan.outside:
        context.log.warning(
            f"orders before {daily_partitions.start.date()} ignored in {plan.outside}"
        )
    for request in plan.run_requests:
        tags = request.tags
        context.log.info(
            f"requesting {tags[ASSET_PARTITION_RANGE_START_TAG]}.."
            f"{tags[ASSET_PARTITION_RANGE_END_TAG]} ({request.run_key})"
        )
    cursor = LandingCursor.after_tick(states, set(plan.waiting), started_ns).write()
    skip = None
    if not plan.run_requests:
        if plan.rejected:
            skip = SkipReason(
                "not ingested: " + "; ".join(f"{f.name} ({f.problem})" for f in plan.rejected)
            )
        elif changed:
            skip = SkipReason(f"{len(changed)} changed file(s), no day to run")
        else:
            skip = SkipReason(f"no new or changed file in {landing}")
    return SensorResult(
        run_requests=plan.run_requests,
        skip_reason=skip,
        cursor=cursor,
        asset_events=[_observation(f) for f in plan.rejected],
    )
