"""Temporary files of killed writes are removed on the next run; those of a live writer and the
landing folder's are not; a staged tree is published file by file."""

from __future__ import annotations

import os
import subprocess
import sys
import time

from fraud_core.storage import (
    TEMP_GRACE_S,
    DataLayout,
    publish,
    remove_orphan_temp_files,
    temp_path,
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


def test_publish_moves_a_staged_tree_into_place(tmp_path):
    layout = DataLayout(tmp_path)
    staged = layout.staging("run1")
    for day in ("2026-01-01", "2026-01-02"):
        staged.entity_features(day).parent.mkdir(parents=True)
        staged.entity_features(day).write_text(day)
    layout.entity_features("2026-01-01").parent.mkdir(parents=True)
    layout.entity_features("2026-01-01").write_text("old")

    published = publish(staged, layout)

    assert sorted(published) == [layout.entity_features(d) for d in ("2026-01-01", "2026-01-02")]
    assert layout.entity_features("2026-01-01").read_text() == "2026-01-01"
    assert not staged.root.exists()
