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
