"""Where each artifact lives under the data folder, and atomic file writes.

Every writer goes through `atomic_path`: it writes to a temporary name in the same folder and
renames at the end, so a run killed mid-write never leaves a half file under the final name.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import pandas as pd
import pyarrow as pa
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

    def raw_orders(self, day: date | str) -> Path:
        return self.root / "raw_orders" / f"date={_day(day)}" / "orders.parquet"

    def quarantine(self, day: date | str) -> Path:
        return self.root / "quarantine" / f"date={_day(day)}" / "quarantine.parquet"

    def orders_by_entity_dir(self, kind: str, day: date | str) -> Path:
        return self.root / "orders_by_entity" / f"kind={kind}" / f"date={_day(day)}"

    def orders_by_entity(self, kind: str, day: date | str, bucket: int) -> Path:
        return self.orders_by_entity_dir(kind, day) / f"bucket={bucket:04d}.parquet"

    def entity_features(self, day: date | str) -> Path:
        return self.root / "entity_features" / f"date={_day(day)}" / "features.parquet"

    def entity_state(self, kind: str, day: date | str) -> Path:
        return self.root / "entity_state" / f"kind={kind}" / f"date={_day(day)}" / "state.parquet"

    @property
    def models(self) -> Path:
        return self.root / "models"


@contextlib.contextmanager
def atomic_path(final: Path) -> Iterator[Path]:
    """Yield a temporary path beside `final`; rename it onto `final` only if the block succeeds."""
    final = Path(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = final.with_name(f".{final.name}.{uuid.uuid4().hex}.tmp")
    try:
        yield tmp
        os.replace(tmp, final)
    finally:
        if tmp.exists():
            if tmp.is_dir():
                shutil.rmtree(tmp)
            else:
                tmp.unlink()


def write_parquet(df: pd.DataFrame | pa.Table, path: Path, schema: pa.Schema | None = None) -> Path:
    """Write a DataFrame or Arrow table to `path` atomically (zstd-compressed parquet)."""
    table = (
        df
        if isinstance(df, pa.Table)
        else pa.Table.from_pandas(df, schema=schema, preserve_index=False)
    )
    with atomic_path(path) as tmp:
        pq.write_table(table, tmp, compression="zstd")
    return path
