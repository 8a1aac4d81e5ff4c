"""A landing folder treated as carelessly as real senders treat it: a scripted sequence of
deliveries (a truncated file, non-UTF-8 bytes, an archived file, order ids reused across days,
a correction, an empty day, a huge day, a shrinking re-delivery with and without a replace
marker), each followed by the daily lane's range run, with the invariants checked after every
step:

- per day, the landing rows of the accepted delivery = valid + quarantined rows on disk;
- no day shrinks beyond the allowed share unless a replace marker was used for it;
- a failed run changes no published feature file and no snapshot; a successful one leaves one
  feature row per valid order; the snapshot the online store would load is always the end of
  the last successful run.
"""

from __future__ import annotations

import json
from datetime import date, timedelta

import pandas as pd
import pyarrow.parquet as pq
import pytest

from fraud_core.acceptance import DEFAULT_MAX_SHRINK, read_day_record
from fraud_core.generator import GeneratorConfig, write_landing_files
from fraud_core.online_store import newest_snapshot
from fraud_core.storage import DataLayout

from ..configs import FEATURE_LANE

START = date(2026, 2, 1)
D = [START + timedelta(days=i) for i in range(6)]
DATA = GeneratorConfig(
    n_customers=300, n_emails=300, n_ips=300, orders_per_day=150, days=6, start=START, seed=11
)


def _published(layout: DataLayout) -> dict[str, tuple[int, int]]:
    """Every published feature and state file with its size and mtime."""
    out = {}
    for top in ("entity_features", "entity_state"):
        for p in (layout.root / top).rglob("*"):
            if p.is_file():
                stat = p.stat()
                out[str(p.relative_to(layout.root))] = (stat.st_size, stat.st_mtime_ns)
    return out


def _rows(path) -> int:
    return pq.read_metadata(path).num_rows


class Lane:
    """Runs the daily lane over D[0]..last and checks the invariants after each step."""

    def __init__(self, layout: DataLayout, materialize_range) -> None:
        self.layout = layout
        self.materialize_range = materialize_range
        self.valid: dict[date, int] = {}
        self.last_good_end: date | None = None

    def step(self, last: date, *, expect_success: bool) -> None:
        before = _published(self.layout)
        result = self.materialize_range(FEATURE_LANE, D[0], last, raise_on_error=False)
        assert result.success == expect_success
        run_id = result.run_id
        for day in D[: D.index(last) + 1]:
            record = read_day_record(self.layout, day)
            if record is None or record.accepted is None:
                continue
            accepted = record.accepted
            valid, quarantined = (
                _rows(self.layout.raw_orders(day)),
                _rows(self.layout.quarantine(day)),
            )
            assert (valid, quarantined) == (accepted["valid_rows"], accepted["quarantined_rows"])
            assert accepted["landing_rows"] == valid + quarantined, day
            old = self.valid.get(day)
            if old and valid < old * (1 - DEFAULT_MAX_SHRINK):
                assert accepted["used_replace_marker"] and accepted["run_id"] == run_id, day
            self.valid[day] = valid
        if not expect_success:
            assert _published(self.layout) == before  # nothing of a failed run is visible
        else:
            for day in D[: D.index(last) + 1]:
                features = pq.read_table(self.layout.entity_features(day), columns=["order_id"])
                raw = pq.read_table(self.layout.raw_orders(day), columns=["order_id"])
                assert sorted(features.column(0).to_pylist()) == sorted(raw.column(0).to_pylist())
            self.last_good_end = last
        snapshot = newest_snapshot(self.layout)
        assert (snapshot.day if snapshot else None) == self.last_good_end


def _landing(layout: DataLayout, day: date) -> pd.DataFrame:
    return pd.read_parquet(layout.landing / f"orders_{day.isoformat()}.parquet")


@pytest.mark.timeout(300)
def test_a_careless_landing_folder_never_loses_an_accepted_day(data_dir, materialize_range):
    layout = data_dir
    write_landing_files(DATA, layout.landing)
    originals = {day: _landing(layout, day) for day in D}
    for day in D[4:]:  # days 5 and 6 arrive later
        (layout.landing / f"orders_{day.isoformat()}.parquet").unlink()
    lane = Lane(layout, materialize_range)

    # 1. Four good days.
    lane.step(D[3], expect_success=True)

    # 2. Day 2 re-delivered truncated (a parquet cut short): kept, the run stops.
    path = layout.landing / f"orders_{D[1].isoformat()}.parquet"
    path.write_bytes(path.read_bytes()[:1000])
    lane.step(D[3], expect_success=False)
    assert _rows(layout.raw_orders(D[1])) == len(originals[D[1]])

    # 3. Day 2 sent again whole, and an extra CSV for day 3 with two rows of bad bytes.
    originals[D[1]].to_parquet(path)
    extra = originals[D[2]].head(20).copy()
    extra["order_id"] = [f"EXTRA{i:02d}" for i in range(20)]
    csv = layout.landing / f"orders_{D[2].isoformat()}_extra.csv"
    extra.to_csv(csv, index=False)
    lines = csv.read_bytes().split(b"\n")
    lines[1] = lines[1].replace(b"@", b"\xff@", 1)
    lines[2] = lines[2].replace(b"@", b"\xfe@", 1)
    csv.write_bytes(b"\n".join(lines))
    lane.step(D[3], expect_success=True)
    assert _rows(layout.raw_orders(D[2])) == len(originals[D[2]]) + 18

    # 4. Day 1's file archived: the day stays as accepted.
    archive = layout.root / "archive"
    archive.mkdir()
    name = f"orders_{D[0].isoformat()}.parquet"
    (layout.landing / name).rename(archive / name)
    lane.step(D[3], expect_success=True)
    assert _rows(layout.raw_orders(D[0])) == len(originals[D[0]])

    # 5. Day 4 re-delivered with three order ids of day 3: quarantined, the rest accepted.
    reused = originals[D[3]].copy()
    reused.loc[:2, "order_id"] = originals[D[2]]["order_id"].iloc[:3].to_numpy()
    reused.to_parquet(layout.landing / f"orders_{D[3].isoformat()}.parquet")
    lane.step(D[3], expect_success=True)
    quarantine = pd.read_parquet(layout.quarantine(D[3]))
    assert (
        quarantine["reason"] == "order_id: already accepted on another day (first seen kept)"
    ).sum() == 3

    # 6. A correction of day 3's main file (amounts fixed): replaced.
    corrected = originals[D[2]].copy()
    corrected["order_amount"] = corrected["order_amount"] + 1.0
    corrected.to_parquet(layout.landing / f"orders_{D[2].isoformat()}.parquet")
    lane.step(D[3], expect_success=True)
    amounts = pd.read_parquet(layout.raw_orders(D[2])).set_index("order_id")["order_amount"]
    assert amounts[corrected["order_id"].iloc[0]] == round(corrected["order_amount"].iloc[0], 2)

    # 7. Day 5 with no file at all: an explicit empty day, features for no orders.
    lane.step(D[4], expect_success=True)
    record = read_day_record(layout, D[4])
    assert record.last_attempt["action"] == "empty" and _rows(layout.raw_orders(D[4])) == 0

    # 8. Day 6 huge (12 times the usual): accepted with a volume warning.
    huge = pd.concat([originals[D[5]]] * 12, ignore_index=True)
    huge["order_id"] = [f"HUGE{i:05d}" for i in range(len(huge))]
    huge.to_parquet(layout.landing / f"orders_{D[5].isoformat()}.parquet")
    lane.step(D[5], expect_success=True)
    assert _rows(layout.raw_orders(D[5])) == len(huge)

    # 9. Day 4 re-delivered with 40 % of its orders: kept, the run stops.
    kept = _rows(layout.raw_orders(D[3]))
    originals[D[3]].head(60).to_parquet(layout.landing / f"orders_{D[3].isoformat()}.parquet")
    lane.step(D[5], expect_success=False)
    assert _rows(layout.raw_orders(D[3])) == kept

    # 10. ... until the sender confirms with a replace marker.
    marker = layout.replace_marker(D[3])
    marker.parent.mkdir(parents=True)
    marker.write_text("orders cancelled by the shop")
    lane.step(D[5], expect_success=True)
    assert _rows(layout.raw_orders(D[3])) == 60 and not marker.exists()
    assert json.loads(layout.day_record(D[3]).read_text())["accepted"]["replace_marker"] == (
        "orders cancelled by the shop"
    )
