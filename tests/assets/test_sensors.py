"""`landing_folder_sensor` ticked against a real (temporary, persistent) Dagster instance, and the
runs it requests executed: new files become one range run, a file whose rows span days feeds
each of them, a changed file re-runs its days and the later days whose features carry its state,
bad files are reported once and never block the others, and nothing is ingested twice."""

from __future__ import annotations

import json
import os
import shutil
import time
from datetime import UTC, date, datetime, timedelta

import pandas as pd
import pyarrow.parquet as pq
import pytest
from dagster import (
    AssetKey,
    Definitions,
    SensorResult,
    SkipReason,
    build_sensor_context,
    instance_for_test,
)

from fraud_assets.jobs import DAILY_FEATURE_ASSETS, DAILY_FEATURE_CHECKS, daily_features_job
from fraud_assets.resources import DataLayoutResource
from fraud_assets.sensors.landing import contiguous_ranges, landing_folder_sensor
from fraud_assets.sensors.landing_cursor import CLOCK_SLACK_NS, LandingCursor, file_state
from fraud_core.acceptance import read_day_record
from fraud_core.storage import DataLayout, write_parquet

from ..configs import START, feature_resources

D = [START + timedelta(days=i) for i in range(8)]
RANGE_START, RANGE_END = "dagster/asset_partition_range_start", "dagster/asset_partition_range_end"


def _defs() -> Definitions:
    return Definitions(
        assets=DAILY_FEATURE_ASSETS,
        asset_checks=DAILY_FEATURE_CHECKS,
        jobs=[daily_features_job],
        sensors=[landing_folder_sensor],
        resources=feature_resources(),  # the data folder is $FRAUD_DATA_DIR, set by `data_dir`
    )


class Landing:
    """Ticks the sensor with the cursor of the previous tick and runs what it requests."""

    def __init__(self, instance, defs: Definitions) -> None:
        self.instance, self.defs, self.cursor = instance, defs, None

    def tick(self, cursor: str | None = "keep") -> SensorResult:
        context = build_sensor_context(
            instance=self.instance,
            cursor=self.cursor if cursor == "keep" else cursor,
            resources={"layout": DataLayoutResource()},
        )
        result = landing_folder_sensor(context)
        assert isinstance(result, SensorResult)
        self.cursor = result.cursor
        return result

    def run(self, result: SensorResult, succeeds: bool = True) -> list[tuple[str, str]]:
        job = self.defs.resolve_job_def("daily_features_job")
        ranges = []
        for request in result.run_requests:
            run = job.execute_in_process(
                instance=self.instance, tags=request.tags, raise_on_error=False
            )
            assert run.success == succeeds
            ranges.append((request.tags[RANGE_START], request.tags[RANGE_END]))
        return ranges


def _ranges(result: SensorResult) -> list[tuple[str, str]]:
    return [(r.tags[RANGE_START], r.tags[RANGE_END]) for r in result.run_requests]


def _not_handled(cursor: str | None, layout: DataLayout) -> list[str]:
    """The landing files and replace markers the next tick would look at, by name."""
    markers = layout.replace_markers
    paths = [*(markers.iterdir() if markers.is_dir() else []), *layout.landing.iterdir()]
    states = {
        f"_replace/{p.name}" if p.parent == markers else p.name: file_state(p)
        for p in paths
        if p.is_file()
    }
    names = LandingCursor.read(cursor).to_look_at(states)
    assert names is not None, "the cursor lost track"
    return sorted(names)


def _skip(result: SensorResult) -> str:
    assert isinstance(result.skip_reason, SkipReason)
    return result.skip_reason.skip_message or ""


@pytest.fixture
def landing(landed):
    with instance_for_test() as instance:
        yield Landing(instance, _defs())


def test_contiguous_ranges_and_a_broken_cursor():
    assert contiguous_ranges([D[3], D[0], D[1], D[1], D[5]]) == [
        (D[0], D[1]),
        (D[3], D[3]),
        (D[5], D[5]),
    ]
    assert contiguous_ranges([]) == []
    assert LandingCursor.read("not json") == LandingCursor() == LandingCursor.read(None)
    assert LandingCursor.read('{"a.csv": [3, 4]}').legacy == {"a.csv": (3, 4)}  # the old format


def test_landing_files_become_range_runs_and_nothing_twice(landing, landed: DataLayout):
    keys = lambda first, last: (first.isoformat(), last.isoformat())  # noqa: E731
    # Bad files beside the four good days: none of them blocks the sensor.
    (landed.landing / "orders.xlsx").write_bytes(b"not a spreadsheet")
    (landed.landing / "export.csv").write_text("order_id\n1\n")
    (landed.landing / "orders_2026-01-03_resend.parquet").write_bytes(b"PAR1 truncated")

    first = landing.tick()
    assert _ranges(first) == [keys(D[0], D[3])]  # four days, ONE run
    assert first.run_requests[0].tags["fraud/lane"] == "daily_features"
    problems = {e.metadata["landing_file"].value.split("/")[-1]: e for e in first.asset_events}
    assert set(problems) == {"orders.xlsx", "export.csv", "orders_2026-01-03_resend.parquet"}
    assert all(e.asset_key == AssetKey("raw_orders") for e in problems.values())
    assert "unreadable" in problems["orders_2026-01-03_resend.parquet"].metadata["problem"].value
    assert _not_handled(first.cursor, landed) == []  # the bad files too
    landing.run(first, succeeds=False)
    # The day with the unreadable file accepts nothing from a partial delivery, its blocking
    # check names the file, and no feature is computed from the run.
    assert not landed.raw_orders(D[2]).exists()
    unreadable = read_day_record(landed, D[2]).last_attempt["unreadable_files"]
    assert unreadable == ["orders_2026-01-03_resend.parquet"]
    assert not landed.entity_features(D[0]).exists()

    # Nothing changed: nothing requested, the bad files are not reported again.
    again = landing.tick()
    assert not again.run_requests and not again.asset_events
    assert "no new or changed file" in _skip(again)

    # Fixing the broken file runs its day and the days the failed run held back.
    (landed.landing / "orders_2026-01-03_resend.parquet").unlink()
    fixed_name = landed.landing / "orders_2026-01-03_resend.csv"
    fixed_name.write_text("order_id,order_date\n")  # readable, no rows: nothing to quarantine
    resent = landing.tick()
    assert _ranges(resent) == [keys(D[0], D[3])]
    assert _not_handled(resent.cursor, landed) == []
    landing.run(resent)
    assert pq.read_metadata(landed.raw_orders(D[2])).num_rows > 0

    # A file named after day 5 whose last rows are dated day 6 feeds both days.
    orders = pd.read_parquet(landed.landing / f"orders_{D[3].isoformat()}.parquet")
    spill = orders.head(30).copy()
    spill["order_id"] = [f"SPILL{i:02d}" for i in range(30)]
    spill["order_date"] = spill["order_date"] + pd.Timedelta(days=1)
    spill.loc[20:, "order_date"] = spill.loc[20:, "order_date"] + pd.Timedelta(days=1)
    spill["label_date"] = pd.NaT
    spill["is_fraud"] = 0
    write_parquet(spill, landed.landing / f"orders_{D[4].isoformat()}.parquet")
    spanning = landing.tick()
    assert _ranges(spanning) == [keys(D[4], D[5])]
    landing.run(spanning)
    day6 = pd.read_parquet(landed.raw_orders(D[5]))
    assert sorted(day6["order_id"]) == [f"SPILL{i:02d}" for i in range(20, 30)]
    assert pq.read_metadata(landed.quarantine(D[5])).num_rows == 0
    # ... and in the file's own day, its stragglers are flagged for the sender
    assert len(pd.read_parquet(landed.quarantine(D[4]))) == 10

    # A changed file re-runs its day and every later day whose features carry its state.
    rewritten = orders.iloc[:-1]
    write_parquet(rewritten, landed.landing / f"orders_{D[3].isoformat()}.parquet")
    changed = landing.tick()
    assert _ranges(changed) == [keys(D[3], D[5])]
    landing.run(changed)
    features = pd.read_parquet(landed.entity_features(D[3]))
    assert len(features) == len(rewritten)

    # The same file delivered again with its size and mtime (cp -p, rsync -t) runs again, under
    # a new run key: Dagster drops a request whose run key it has already seen.
    delivered = landed.landing / f"orders_{D[3].isoformat()}.parquet"
    shutil.copy2(delivered, landed.landing / ".resend.tmp")
    os.replace(landed.landing / ".resend.tmp", delivered)
    resent_same = landing.tick()
    assert _ranges(resent_same) == [keys(D[3], D[5])]
    assert resent_same.run_requests[0].run_key != changed.run_requests[0].run_key
    landing.run(resent_same)

    # A replace marker runs its day (and the later ones) again, and is consumed.
    marker = landed.replace_marker(D[1])
    marker.parent.mkdir(parents=True)
    marker.write_text("re-exported")
    replaced = landing.tick()
    assert _ranges(replaced) == [keys(D[1], D[5])]
    landing.run(replaced)
    assert not marker.exists()
    assert landing.tick().run_requests == []

    # A sensor without a cursor (new sensor, cursor reset) does not ingest anything again:
    # every file predates the run that last materialized its days.
    fresh = landing.tick(cursor=None)
    assert not fresh.run_requests
    assert _not_handled(fresh.cursor, landed) == []


def test_orders_of_a_day_that_is_not_over_wait(landing, landed: DataLayout):
    today = datetime.now(UTC).date()
    future = pd.read_parquet(landed.landing / f"orders_{D[0].isoformat()}.parquet").head(5)
    future["order_date"] = pd.Timestamp(today.isoformat(), tz="UTC") + pd.Timedelta(hours=1)
    future["label_date"] = pd.NaT
    name = f"orders_{today.isoformat()}.parquet"
    write_parquet(future, landed.landing / name)
    result = landing.tick()
    assert _ranges(result) == [(D[0].isoformat(), D[3].isoformat())]
    assert _not_handled(result.cursor, landed) == [name]  # looked at again on the next ticks


def test_the_cursor_stays_short_and_notices_every_change(data_dir: DataLayout):
    """90 handled files fit a cursor of under 200 characters; a file re-delivered with its old
    size and mtime or copied in with an old mtime is still noticed, a removed one forgets
    itself, and a cursor of the old format (every file's fingerprint) is read once."""
    data_dir.landing.mkdir(parents=True)
    days = [date(2026, 1, 1) + timedelta(days=i) for i in range(90)]
    for day in days:  # readable and empty: every day is a partition, nothing to quarantine
        (data_dir.landing / f"orders_{day.isoformat()}.csv").write_text("order_id,order_date\n")
    time.sleep(2 * CLOCK_SLACK_NS / 1e9)  # the files are older than the tick's clock slack
    with instance_for_test() as instance:
        landing = Landing(instance, _defs())
        first = landing.tick()
        assert _ranges(first) == [(days[0].isoformat(), days[-1].isoformat())]
        quiet = landing.tick()
        assert not quiet.run_requests and "no new or changed file" in _skip(quiet)
        assert len(first.cursor) < 200 and len(quiet.cursor) < 200, quiet.cursor

        # Same size, same mtime, new content: the change time says it changed.
        path = data_dir.landing / f"orders_{days[10].isoformat()}.csv"
        before = path.stat()
        path.write_text("order_id,order_date\n".upper())
        os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))
        # A new file whose mtime is older than every handled file (`cp -p`, `rsync -t`).
        late = data_dir.landing / "orders_2026-04-01_late.csv"
        late.write_text("order_id,order_date\n")
        os.utime(late, ns=(before.st_atime_ns, before.st_mtime_ns - 10**12))
        (data_dir.landing / f"orders_{days[20].isoformat()}.csv").unlink()
        assert _not_handled(landing.cursor, data_dir) == [path.name, late.name]
        landing.tick()
        assert _not_handled(landing.cursor, data_dir) == []

        # The old format: every handled file's [size, mtime_ns]; one of them changed since.
        old = {p.name: list(file_state(p)[:2]) for p in data_dir.landing.iterdir()}
        old[late.name][0] += 1
        migrated = landing.tick(cursor=json.dumps(old))
        assert migrated.run_requests  # the changed one: not yet read by any run
        assert len(migrated.cursor) < 200 and _not_handled(migrated.cursor, data_dir) == []


def test_an_object_that_changed_after_its_run_read_it_is_looked_at_by_its_etag(
    s3_root, monkeypatch
):
    """In a bucket, a landing object's LastModified is when its upload started, in whole
    seconds: an upload that began before a run and ended after the run read the day looked
    ingested by time alone. The day's record names the ETag the run read; another one runs the
    day again. (moto stamps LastModified itself, so the race is set up in the record: the run
    read a version other than the one now in the bucket.)"""
    from fraud_core.generator import write_landing_files

    from .conftest import SMALL

    monkeypatch.setenv("FRAUD_DATA_DIR", s3_root)
    monkeypatch.delenv("DASK_SCHEDULER_ADDRESS", raising=False)
    layout = DataLayout.at(s3_root)
    write_landing_files(SMALL, layout.landing)
    with instance_for_test() as instance:
        landing = Landing(instance, _defs())
        first = landing.tick()
        assert _ranges(first) == [(D[0].isoformat(), D[3].isoformat())]
        landing.run(first)
        assert not landing.tick(cursor=None).run_requests  # every object read as it is

        record = read_day_record(layout, D[1])
        (seen,) = record.accepted["files"]
        seen["mtime_ns"] += 1  # the token of another upload of the same size
        record.write(layout.day_record(D[1]))

        again = landing.tick(cursor=None)
        assert _ranges(again) == [(D[1].isoformat(), D[3].isoformat())]


def test_a_same_size_upload_is_a_new_file_state_in_a_bucket(s3_root):
    """The cursor remembers a file by (size, mtime, ctime); an object's times are its
    LastModified in whole seconds, so a same-size upload within that second looked unchanged.
    Its ETag stands for the mtime."""
    landing = DataLayout.at(s3_root).landing
    path = landing / "orders_2026-01-01.csv"
    path.write_text("order_id\nA1\n")
    before = file_state(path)
    path.write_text("order_id\nB2\n")
    after = file_state(path)
    assert before[0] == after[0] and before != after
