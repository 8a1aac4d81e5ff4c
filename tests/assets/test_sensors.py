"""`landing_folder_sensor` ticked against a real (temporary, persistent) Dagster instance, and the
runs it requests executed: new files become one range run, a file whose rows span days feeds
each of them, a changed file re-runs its days and the later days whose features carry its state,
bad files are reported once and never block the others, and nothing is ingested twice."""

from __future__ import annotations

import json
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
from fraud_assets.resources import DaskResource, DataLayoutResource
from fraud_assets.sensors.landing import contiguous_ranges, landing_folder_sensor, read_cursor
from fraud_core.acceptance import read_day_record
from fraud_core.storage import DataLayout, write_parquet

D = [date(2026, 1, 1) + timedelta(days=i) for i in range(8)]
RANGE_START, RANGE_END = "dagster/asset_partition_range_start", "dagster/asset_partition_range_end"


def _defs() -> Definitions:
    return Definitions(
        assets=DAILY_FEATURE_ASSETS,
        asset_checks=DAILY_FEATURE_CHECKS,
        jobs=[daily_features_job],
        sensors=[landing_folder_sensor],
        resources={
            "layout": DataLayoutResource(),  # $FRAUD_DATA_DIR, set by the `data_dir` fixture
            "dask": DaskResource(n_workers=1, threads_per_worker=2, processes=False),
        },
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
    assert read_cursor("not json") == {} and read_cursor(None) == {}
    assert read_cursor('{"a.csv": [3, 4]}') == {"a.csv": (3, 4)}


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
    assert set(json.loads(first.cursor)) == {p.name for p in landed.landing.iterdir()}
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
    assert "orders_2026-01-03_resend.parquet" not in json.loads(resent.cursor)  # forgotten
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
    assert set(json.loads(fresh.cursor)) == {
        n for n in json.loads(replaced.cursor) if not n.startswith("_replace/")
    }


def test_orders_of_a_day_that_is_not_over_wait(landing, landed: DataLayout):
    today = datetime.now(UTC).date()
    future = pd.read_parquet(landed.landing / f"orders_{D[0].isoformat()}.parquet").head(5)
    future["order_date"] = pd.Timestamp(today.isoformat(), tz="UTC") + pd.Timedelta(hours=1)
    future["label_date"] = pd.NaT
    name = f"orders_{today.isoformat()}.parquet"
    write_parquet(future, landed.landing / name)
    result = landing.tick()
    assert _ranges(result) == [(D[0].isoformat(), D[3].isoformat())]
    assert name not in json.loads(result.cursor)  # looked at again on the next ticks
