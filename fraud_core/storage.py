"""Where each artifact lives under the data folder, atomic file writes, and the staging area
where a run's output waits until its checks pass.

Every writer goes through `atomic_path`: it writes to a temporary name in the same folder and
renames at the end, so a run killed mid-write never leaves a half file under the final name. The
temporary name carries the writer's host and process id, so `remove_orphan_temp_files` can tell
a leftover of a killed process from a write in progress.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq


def _day(day: date | str) -> str:
    return day if isinstance(day, str) else day.isoformat()


@dataclass(frozen=True)
class DataLayout:
    """The folder tree under `FRAUD_DATA_DIR` (default `./data`)."""

    root: Path

    @classmethod
    def from_env(cls) -> DataLayout:
        return cls(Path(os.environ.get("FRAUD_DATA_DIR", "data")).resolve())

    @property
    def landing(self) -> Path:
        return self.root / "landing"

    @property
    def calendar(self) -> Path:
        """The data's first day, when it was recorded (`fraud_core.calendar`)."""
        return self.root / "calendar.json"

    @property
    def replace_markers(self) -> Path:
        return self.landing / "_replace"

    def replace_marker(self, day: date | str) -> Path:
        """A file whose presence lets the day's current landing files replace its accepted
        orders even when that drops files or shrinks the day (see `fraud_core.acceptance`)."""
        return self.replace_markers / _day(day)

    def raw_orders(self, day: date | str) -> Path:
        return self.root / "raw_orders" / f"date={_day(day)}" / "orders.parquet"

    def day_record(self, day: date | str) -> Path:
        """What the day's accepted orders were built from (`fraud_core.acceptance.DayRecord`)."""
        return self.root / "raw_orders" / f"date={_day(day)}" / "_ACCEPTED.json"

    def quarantine(self, day: date | str) -> Path:
        return self.root / "quarantine" / f"date={_day(day)}" / "quarantine.parquet"

    def orders_by_entity_dir(self, kind: str, day: date | str) -> Path:
        return self.root / "orders_by_entity" / f"kind={kind}" / f"date={_day(day)}"

    def orders_by_entity(self, kind: str, day: date | str, bucket: int) -> Path:
        return self.orders_by_entity_dir(kind, day) / f"bucket={bucket:04d}.parquet"

    def entity_features(self, day: date | str) -> Path:
        return self.root / "entity_features" / f"date={_day(day)}" / "features.parquet"

    def entity_state_kind(self, kind: str) -> Path:
        return self.root / "entity_state" / f"kind={kind}"

    def entity_state_dir(self, kind: str, day: date | str) -> Path:
        """One end-of-day snapshot of `kind`'s entity states: a file per bucket and a marker."""
        return self.entity_state_kind(kind) / f"date={_day(day)}"

    def entity_state(self, kind: str, day: date | str, bucket: int) -> Path:
        return self.entity_state_dir(kind, day) / f"bucket={bucket:04d}.parquet"

    @property
    def models(self) -> Path:
        return self.root / "models"

    @property
    def staging_root(self) -> Path:
        return self.root / "_staging"

    def staging(self, run_id: str) -> DataLayout:
        """The same tree for one run's output before its checks pass: `publish` moves it here."""
        return DataLayout(self.staging_root / f"run={run_id}")


_WRITER = socket.gethostname().replace(".", "-")
TEMP_GRACE_S = 24 * 3600  # a temporary file of another host is a leftover after this long


def temp_path(final: Path, pid: int | None = None) -> Path:
    """A hidden temporary name beside `final` that names its writer (host and process id)."""
    final = Path(final)
    return final.with_name(f".{final.name}.{_WRITER}.{pid or os.getpid()}.{uuid.uuid4().hex}.tmp")


@contextlib.contextmanager
def atomic_path(final: Path) -> Iterator[Path]:
    """Yield a temporary path beside `final`; rename it onto `final` only if the block succeeds."""
    final = Path(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = temp_path(final)
    try:
        yield tmp
        os.replace(tmp, final)
    finally:
        if tmp.exists():
            if tmp.is_dir():
                shutil.rmtree(tmp)
            else:
                tmp.unlink()


def write_parquet(
    df: pd.DataFrame | pa.Table,
    path: Path,
    schema: pa.Schema | None = None,
    dictionary_columns: list[str] | None = None,
) -> Path:
    """Write a DataFrame or Arrow table to `path` atomically (zstd-compressed parquet).

    `dictionary_columns` limits dictionary encoding to those columns: for wide float tables
    (features) dictionary pages cost more than twice the write time and save nothing."""
    if isinstance(df, pa.Table):
        table = df
    else:
        table = pa.Table.from_pandas(df, schema=schema, preserve_index=False)
    use_dictionary: bool | list[str] = True if dictionary_columns is None else dictionary_columns
    with atomic_path(path) as tmp:
        pq.write_table(table, tmp, compression="zstd", use_dictionary=use_dictionary)
    return path


def read_parquet_files(paths: list[Path]) -> pa.Table:
    """Read many parquet files into one table, rows in the order of `paths` (Arrow's dataset
    scan reads several files at once and keeps their order in `to_table`)."""
    if not paths:
        raise ValueError("no files to read")
    if len(paths) == 1:
        return pq.read_table(paths[0])
    return ds.dataset([str(p) for p in paths], format="parquet").to_table()


def _writer_alive(name: str, now: float, mtime: float) -> bool:
    """Whether the process that writes the temporary file `name` may still be writing it."""
    parts = name.split(".")
    # .{final name}.{host}.{pid}.{uuid}.tmp; older files (.{final}.{uuid}.tmp) have no host/pid
    if len(parts) >= 5 and parts[-4] == _WRITER and parts[-3].isdigit():
        pid = int(parts[-3])
        if pid == os.getpid():
            return True
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return True
    return now - mtime < TEMP_GRACE_S


def remove_orphan_temp_files(root: Path, skip: tuple[str, ...] = ("landing",)) -> list[Path]:
    """Delete the temporary files of atomic writes whose writer is gone (a killed run), under
    `root` except the `skip` folders (the landing folder's temporary files are the sender's)."""
    root = Path(root)
    removed: list[Path] = []
    now = time.time()
    if not root.is_dir():
        return removed
    for top in root.iterdir():
        if top.name in skip or not top.is_dir():
            continue
        for path in top.rglob(".*.tmp"):
            try:
                if _writer_alive(path.name, now, path.stat().st_mtime):
                    continue
                if path.is_dir():
                    shutil.rmtree(path)
                else:
                    path.unlink()
                removed.append(path)
            except FileNotFoundError:  # finished or removed meanwhile
                continue
    return removed


def publish(staged: DataLayout, target: DataLayout) -> list[Path]:
    """Move every file of a run's staging tree onto the same place under `target` (each move
    atomic), then remove the staging tree. Returns the published paths."""
    moved: list[Path] = []
    if not staged.root.is_dir():
        return moved
    for path in sorted(p for p in staged.root.rglob("*") if p.is_file()):
        final = target.root / path.relative_to(staged.root)
        final.parent.mkdir(parents=True, exist_ok=True)
        os.replace(path, final)
        moved.append(final)
    shutil.rmtree(staged.root, ignore_errors=True)
    return moved
