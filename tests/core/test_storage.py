"""Temporary files of killed writes are removed on the next run; those of a live writer and the
landing folder's are not; a staged tree is published file by file. The layout's root is a UPath:
a local folder behaves as a Path, and the partition listings, atomic writes, parquet reads and
publishing also work on an object store (a moto S3 server) and fsspec's memory store."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from datetime import date
from pathlib import Path

import pyarrow as pa
import pytest
from upath import UPath

from fraud_core.features.spec import DEFAULT_SPEC
from fraud_core.storage import (
    TEMP_GRACE_S,
    DataLayout,
    atomic_path,
    folder_mtime_ns,
    is_remote,
    publish,
    read_parquet,
    read_parquet_files,
    remove_orphan_temp_files,
    remove_tree,
    temp_path,
    write_parquet,
)


def test_leftovers_of_dead_writers_go_live_ones_and_landing_stay(tmp_path):
    layout = DataLayout(tmp_path)
    final = layout.raw_orders("2026-01-01")
    final.parent.mkdir(parents=True)
    ended = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True
    )
    killed = temp_path(final, pid=int(ended.stdout))  # its process is gone
    live = temp_path(final)  # this process: still writing
    old_style = final.with_name(".orders.parquet.0123abcd.tmp")  # names without a writer
    fresh_old_style = final.with_name(".orders.parquet.4567ef01.tmp")
    landing = temp_path(layout.landing / "orders_2026-01-02.parquet", pid=int(ended.stdout))
    landing.parent.mkdir(parents=True)
    for p in (killed, live, old_style, fresh_old_style, landing):
        p.write_bytes(b"half")
    stale = time.time() - TEMP_GRACE_S - 60
    os.utime(old_style, (stale, stale))

    removed = remove_orphan_temp_files(layout.root)

    assert sorted(removed) == sorted([killed, old_style])
    assert live.exists() and fresh_old_style.exists() and landing.exists()


def test_publish_moves_a_staged_tree_into_place(any_layout):
    layout = any_layout
    staged = layout.staging("run1")
    for day in ("2026-01-01", "2026-01-02"):
        staged.entity_features(day).parent.mkdir(parents=True, exist_ok=True)
        staged.entity_features(day).write_text(day)
    layout.entity_features("2026-01-01").parent.mkdir(parents=True, exist_ok=True)
    layout.entity_features("2026-01-01").write_text("old")

    published = publish(staged, layout)

    assert sorted(published) == [layout.entity_features(d) for d in ("2026-01-01", "2026-01-02")]
    assert layout.entity_features("2026-01-01").read_text() == "2026-01-01"
    assert not staged.root.exists()


def test_a_folder_has_a_time_and_goes_with_everything_in_it(any_layout):
    layout = any_layout
    staged = layout.staging("run1")
    for day in ("2026-01-01", "2026-01-02"):
        staged.entity_features(day).parent.mkdir(parents=True, exist_ok=True)
        staged.entity_features(day).write_text(day)
    assert folder_mtime_ns(staged.root) > 0

    remove_tree(staged.root)
    remove_tree(staged.root)  # not there: nothing to do

    assert not staged.entity_features("2026-01-01").exists()
    assert layout.staged_runs() == {}


def test_a_local_layout_is_made_of_paths(tmp_path):
    layout = DataLayout(tmp_path)

    assert isinstance(layout.root, UPath) and isinstance(layout.root, Path)
    assert layout == DataLayout(str(tmp_path)) and layout.root == tmp_path
    assert layout.raw_orders(date(2026, 1, 1)) == (
        tmp_path / "raw_orders" / "date=2026-01-01" / "orders.parquet"
    )
    assert DataLayout.at("data").root == Path("data").resolve()


@pytest.fixture(params=["local", "memory", "s3"])
def any_layout(request, tmp_path):
    """The same tree in a local folder, in fsspec's in-memory store and in an S3 bucket (the
    session's moto server)."""
    if request.param == "local":
        yield DataLayout(tmp_path)
        return
    if request.param == "s3":
        layout = DataLayout.at(request.getfixturevalue("s3_root"))
        assert is_remote(layout.root) and layout.root.protocol == "s3"
        yield layout
        return
    root = UPath(f"memory:///fraud-{uuid.uuid4().hex}")
    yield DataLayout(root)
    root.fs.rm(root.path, recursive=True)


def _touch(path):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("x")


def test_partition_listings_give_days_oldest_first_and_skip_other_folders(any_layout):
    layout = any_layout
    days = [date(2026, 1, 10), date(2026, 1, 2), date(2026, 2, 1)]
    for day in days:
        _touch(layout.raw_orders(day))
        _touch(layout.entity_features(day))
        _touch(layout.entity_state_marker("customer_id", day))
        _touch(layout.orders_by_entity("email", day, 3))
        _touch(layout.orders_by_entity_marker("email", day))
    _touch(layout.raw_orders(date(2026, 3, 1)).with_name("other.parquet"))  # no orders file
    _touch(layout.orders_by_entity("email", date(2026, 3, 2), 0))  # no marker: not complete
    _touch(layout.root / "entity_features" / "date=not-a-day" / "features.parquet")
    _touch(layout.orders_by_entity("email", days[0], 1))

    assert layout.raw_orders_days() == sorted(days)
    assert layout.entity_features_days() == sorted(days)
    assert layout.orders_by_entity_days("email") == sorted(days)
    assert list(layout.entity_state_markers("customer_id")) == sorted(days)
    assert layout.entity_state_markers("ip") == {}
    buckets = layout.orders_by_entity_buckets("email", days[0])
    assert buckets == {b: layout.orders_by_entity("email", days[0], b) for b in (1, 3)}


def test_atomic_writes_and_parquet_reads_on_every_store(any_layout):
    """A failed write leaves nothing under the final name, a finished one is read back whole;
    several files read as one table in their order."""
    layout = any_layout
    first, second = layout.raw_orders("2026-01-01"), layout.raw_orders("2026-01-02")
    with pytest.raises(RuntimeError), atomic_path(first) as tmp:
        tmp.write_bytes(b"half a file")
        raise RuntimeError("killed mid-write")
    assert not first.exists()
    write_parquet(pa.table({"order_id": ["a", "b"], "n": [1, 2]}), first)
    write_parquet(pa.table({"order_id": ["c"], "n": [3]}), second)
    assert read_parquet(first, columns=["n"]).column("n").to_pylist() == [1, 2]
    both = read_parquet_files([second, first])
    assert both.column("order_id").to_pylist() == ["c", "a", "b"]
    assert layout.raw_orders_days() == [date(2026, 1, 1), date(2026, 1, 2)]
    assert remove_orphan_temp_files(layout.root) == []


def test_a_publish_that_fails_half_way_leaves_no_marker_over_a_mixed_snapshot(tmp_path):
    """A rerun's snapshot of a day replaces the published one: its marker is withdrawn before
    the new bucket files move in, so when a move fails half-way the day is not vouched for and a
    reader takes the older snapshot (here: none of that day)."""
    from fraud_core.features.pipeline import mark_snapshots, publish_features, snapshot_days

    layout, day, earlier = DataLayout(tmp_path / "data"), date(2026, 1, 5), date(2026, 1, 4)
    kind = DEFAULT_SPEC.entities[0].kind
    for d in (earlier, day):
        for bucket in (0, 1):
            layout.entity_state(kind, d, bucket).parent.mkdir(parents=True, exist_ok=True)
            layout.entity_state(kind, d, bucket).write_text("old")
        mark_snapshots(layout, d, 2)
    assert snapshot_days(layout, kind, 2) == [earlier, day]
    staged = layout.staging("rerun")
    for bucket in (0, 1):
        staged.entity_state(kind, day, bucket).parent.mkdir(parents=True, exist_ok=True)
        staged.entity_state(kind, day, bucket).write_text("new")
    # bucket 1 cannot be replaced (a folder is in its place): the publish fails after bucket 0
    layout.entity_state(kind, day, 1).unlink()
    (layout.entity_state(kind, day, 1) / "in-the-way").mkdir(parents=True)

    with pytest.raises(OSError):
        publish_features(layout, staged, [day], 2)

    assert layout.entity_state(kind, day, 0).read_text() == "new"
    assert snapshot_days(layout, kind, 2) == [earlier]


def test_an_object_another_process_writes_after_a_listing_is_seen(s3_root):
    """s3fs keeps a folder's listing for the life of the process by default: a sensor's second
    tick, the service's segment list or a Dask worker never saw what another process wrote
    after their first listing. The layout's file system lists afresh every time."""
    import s3fs

    layout = DataLayout.at(s3_root)
    (layout.landing / "orders_2026-01-01.csv").write_text("order_id\n1\n")
    assert [p.name for p in layout.landing.iterdir()] == ["orders_2026-01-01.csv"]
    other = s3fs.S3FileSystem(skip_instance_cache=True)  # another process's client
    other.pipe(f"{layout.landing.path}/orders_2026-01-02.csv", b"order_id\n2\n")
    other.pipe(f"{layout.landing.path}/orders_2026-01-01.csv", b"order_id\n1\n3\n")

    assert sorted(p.name for p in layout.landing.iterdir()) == [
        "orders_2026-01-01.csv",
        "orders_2026-01-02.csv",
    ]
    assert (layout.landing / "orders_2026-01-02.csv").exists()
    assert (layout.landing / "orders_2026-01-01.csv").read_text() == "order_id\n1\n3\n"
