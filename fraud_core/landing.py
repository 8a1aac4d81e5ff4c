"""The landing folder as ingestion sees it: which files are there, what state each is in (its
fingerprint), which UTC days its orders fall in, and which of its rows a day's validation reads.

A landing file delivers the day in its name (`…YYYY-MM-DD….parquet|csv`): all its rows are
validated in that day, where rows dated another day are quarantined ("outside the partition
day"), so the sender sees that they were put in the wrong file. The name is only a hint of where
the orders belong, though: each row dated another day D is also read by D's validation, from
whatever file holds it. A day's orders are therefore the rows of the files named after it plus the
rows dated that day in any other file. A file without a day in its name or of another type is
"misnamed" and ignored; a file that cannot be read is reported and skipped, never fatal for the
other files of its days.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.csv as pa_csv
from upath import UPath

from fraud_core.contract.source import SourceFormat, applied_format
from fraud_core.storage import (
    DataLayout,
    as_path,
    file_times,
    is_remote,
    modified_ns,
    read_parquet,
    read_schema,
    readable,
)
from fraud_core.validation import (
    LANDING_SUFFIXES,
    SOURCE_FILE,
    day_of_landing_file,
    read_landing_file,
)

# (size in bytes, mtime in ns; in an object store the ETag's first 60 bits instead of the
# time): changes whenever the file does
Fingerprint = tuple[int, int]


def file_state(path: Path | UPath) -> tuple[int, int, int]:
    """(size, change token, change time in ns) of a landing file, from one look at it: a local
    file's mtime and ctime; an object's ETag (its first 60 bits: a new upload has a new one even
    within the same second) and LastModified (whole seconds: when the upload started)."""
    if is_remote(path):
        info = path.fs.info(path.path)
        size, changed_ns = int(info.get("size") or 0), modified_ns(info)
        etag = str(info.get("ETag") or info.get("etag") or "").strip('"').split("-")[0]
        try:
            return size, int(etag[:15], 16), changed_ns
        except ValueError:  # a store without ETags: its time is all there is
            return size, changed_ns, changed_ns
    return file_times(path)


def fingerprint(path: Path | UPath) -> Fingerprint:
    size, token, _ = file_state(path)
    return (size, token)


def landing_paths(landing_dir: Path) -> list[Path]:
    """Every visible file of the landing folder, by name. Hidden files are temporary files of an
    atomic write in progress."""
    landing_dir = as_path(landing_dir)
    if not landing_dir.is_dir():
        return []
    return sorted(p for p in landing_dir.iterdir() if p.is_file() and not p.name.startswith("."))


@dataclass(frozen=True)
class LandingFile:
    """One landing file as inspected: its fingerprint, the day in its name, the days its
    parsable order dates fall in, or the problem that keeps it out of ingestion."""

    path: Path
    fingerprint: Fingerprint
    name_day: date | None = None
    order_days: tuple[date, ...] = ()
    problem: str | None = None
    replace_marker: bool = False  # a replace marker of `name_day`, not a file of orders

    @property
    def name(self) -> str:
        return f"{REPLACE_PREFIX}{self.path.name}" if self.replace_marker else self.path.name

    @property
    def days(self) -> tuple[date, ...]:
        """The day partitions this file feeds: its name's day and every day of its orders."""
        if self.problem is not None or self.name_day is None:
            return ()
        return tuple(sorted({self.name_day, *self.order_days}))


def _utc_days(order_date: pd.Series, source: SourceFormat) -> set[date]:
    # the validation's own parsing, so a row lands in the day it is validated in
    stamps, _, _ = source.timestamps(order_date)
    return {ts.date() for ts in stamps.dropna().dt.floor("D").unique()}


def read_order_dates(path: Path, source: SourceFormat | None = None) -> pd.Series:
    """Only the order time column of a landing file (the contract's; empty when the file has
    none): parquet with its own type, CSV as text, as `read_landing_file` reads them."""
    column = (source or applied_format()).source_column("order_date")
    path = as_path(path)
    name = path.name.lower()
    if name.endswith(".parquet"):
        if column not in read_schema(path).names:
            return pd.Series([], dtype="object")
        return read_parquet(path, columns=[column]).column(0).to_pandas()
    try:
        with readable(path) as file:
            table = pa_csv.read_csv(
                file,
                convert_options=pa_csv.ConvertOptions(
                    include_columns=[column],
                    include_missing_columns=True,
                    column_types={column: pa.string()},
                    strings_can_be_null=False,
                ),
            )
    except pa.ArrowInvalid as err:
        if "UTF8" not in str(err):
            raise
        # Not valid UTF-8 somewhere: read as `read_landing_file` does, bad bytes replaced (the
        # validation quarantines the rows that hold them).
        with readable(path) as file:
            frame = pd.read_csv(
                file, dtype=str, keep_default_na=False, na_values=[], encoding_errors="replace"
            )
        return frame[column] if column in frame else pd.Series([], dtype="object")
    return table.column(0).to_pandas()


def inspect_landing_file(path: Path, source: SourceFormat | None = None) -> LandingFile:
    """Fingerprint, name day and order days of one file; never raises for a bad file."""
    source = source or applied_format()
    path = as_path(path)
    try:
        fp = fingerprint(path)
    except OSError as err:  # removed between listing and inspection
        return LandingFile(path, (0, 0), problem=f"cannot stat: {err}")
    if not path.name.lower().endswith(LANDING_SUFFIXES):
        return LandingFile(path, fp, problem=f"misnamed: not one of {', '.join(LANDING_SUFFIXES)}")
    name_day = day_of_landing_file(path)
    if name_day is None:
        return LandingFile(path, fp, problem="misnamed: no YYYY-MM-DD day in the file name")
    try:
        days = _utc_days(read_order_dates(path, source), source)
    except Exception as err:  # any reader error means the same to the sender: resend the file
        reason = str(err).strip().splitlines()[0] if str(err).strip() else ""
        return LandingFile(
            path, fp, name_day, problem=f"unreadable: {type(err).__name__}: {reason}"
        )
    return LandingFile(path, fp, name_day, tuple(sorted(days)))


REPLACE_PREFIX = "_replace/"


def replace_markers(layout: DataLayout) -> list[LandingFile]:
    """The replace markers waiting in the landing folder (`DataLayout.replace_marker`), each as
    a landing entry of its day; a marker not named by a day is reported as misnamed."""
    folder = layout.replace_markers
    if not folder.is_dir():
        return []
    markers = []
    for path in sorted(p for p in folder.iterdir() if p.is_file() and not p.name.startswith(".")):
        try:
            fp, day = fingerprint(path), date.fromisoformat(path.name)
        except OSError:
            continue
        except ValueError:
            markers.append(
                LandingFile(
                    path,
                    fp,
                    problem="misnamed: a replace marker is named YYYY-MM-DD",
                    replace_marker=True,
                )
            )
            continue
        markers.append(LandingFile(path, fp, day, replace_marker=True))
    return markers


def scan_landing(landing_dir: Path, source: SourceFormat | None = None) -> list[LandingFile]:
    """Every file of the landing folder, inspected."""
    source = source or applied_format()
    return [inspect_landing_file(p, source) for p in landing_paths(landing_dir)]


@dataclass(frozen=True)
class DayRows:
    """What a day's validation reads: the rows (with `source_file`) and the files they came
    from, plus the files of that day that could not be read."""

    rows: pd.DataFrame
    files: list[Path]
    unreadable: list[LandingFile]


def read_day_rows(
    files: list[LandingFile], day: date, source: SourceFormat | None = None
) -> DayRows:
    """All rows of the files named after `day`, then the rows dated `day` of any other file,
    each file in name order, under the source's column names."""
    source = source or applied_format()
    time_column = source.source_column("order_date")
    frames: list[pd.DataFrame] = []
    used: list[Path] = []
    unreadable: list[LandingFile] = []
    named = [f for f in files if f.name_day == day]
    others = [f for f in files if f.name_day != day and day in f.order_days]
    for f in [*named, *others]:
        if f.problem is not None:
            unreadable.append(f)
            continue
        try:
            frame = read_landing_file(f.path)
        except Exception as err:  # changed or broken since the scan
            unreadable.append(LandingFile(f.path, f.fingerprint, f.name_day, problem=str(err)))
            continue
        if f.name_day != day:
            if time_column not in frame.columns:
                continue
            stamps, _, _ = source.timestamps(frame[time_column])
            keep = (stamps.dt.floor("D") == pd.Timestamp(day.isoformat(), tz="UTC")).fillna(False)
            frame = frame[keep.to_numpy(dtype=bool)].reset_index(drop=True)
        frame[SOURCE_FILE] = f.name
        frames.append(frame)
        used.append(f.path)
    if not frames:
        rows = pd.DataFrame(columns=[*source.source_names, SOURCE_FILE], dtype="object")
    elif len(frames) == 1:
        rows = frames[0]
    else:  # mixed parquet/CSV: object columns, each value keeps its type until validation
        rows = pd.concat([f.astype("object") for f in frames], ignore_index=True)
    return DayRows(rows, used, unreadable)
