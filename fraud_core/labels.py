"""The label feed: every fraud verdict the platform hears about, with its source and the time it
became known, kept apart from the orders it judges (issue 16).

A label event says "order X is (or is not) fraud, known from `label_date`, says `source`". Events
come from four places:

- label files dropped into `landing/labels/` (chargebacks and disputes from the payment provider:
  `order_id`, `is_fraud`, `label_date`, optional `source` and `order_date`; CSV or parquet, any
  name);
- `POST /v1/labels` (the service adds one entry per accepted label to the `{p}labels` stream;
  `label_log` drains it into segments);
- analyst verdicts (source `analyst`, through the same route);
- the label columns on order rows (`is_fraud`, `label_date` of a landing file): still read where
  the orders are, as one more source (`order_row`).

`labels` keeps each label day's events (by `label_date`, UTC), so a chargeback that arrives weeks
after its order is one small partition of its own day, not a re-delivery of the order's day file.
Readers resolve an order's label at a time `known_by` as its latest event known by then (`resolve`;
the training set's rule, `label_date <= cutoff`): a later "not fraud" clears an earlier "fraud"; on
the same instant, an explicit event wins over the order row's. Point in time by construction:
nothing known after `known_by` counts.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import msgpack
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from fraud_core.storage import as_path, read_parquet, readable

ORDER_ROW = "order_row"  # the label columns on the orders' own rows
FILE_DEFAULT_SOURCE = "chargeback"  # a label file without a `source` column
API_SOURCE = "api"
# Who may say an order is fraud. The order of the tuple is the precedence of events of the same
# instant (a later source wins), the order row's being the weakest.
LABEL_SOURCES = (ORDER_ROW, "chargeback", "dispute", API_SOURCE, "analyst")
POSTED_SOURCES = LABEL_SOURCES[1:]  # what a label file or `/v1/labels` may name
LABEL_FILE_SUFFIXES = (".csv", ".parquet")
LABEL_ENTRY_VERSION = 1
LABEL_FIELD = b"l"  # the `{p}labels` stream entry's one field
LABEL_DRAIN_AFTER_ENV = "FRAUD_LABEL_DRAIN_AFTER_S"  # `label_feed_sensor` drains after this wait

LABEL_SCHEMA = pa.schema(
    [
        ("order_id", pa.string()),
        ("is_fraud", pa.bool_()),
        ("label_date", pa.timestamp("us", tz="UTC")),
        ("source", pa.string()),
        ("origin", pa.string()),  # the label file's name, or `api:<key id>`
        # when the labelled order was placed, when the sender knows it (the service does): a
        # label changes no feature before the order's risk windows reach it (`first_affected`)
        ("order_date", pa.timestamp("us", tz="UTC")),
    ]
)
LABEL_COLUMNS = tuple(LABEL_SCHEMA.names)
_ORDER_ID = re.compile(r"^[A-Za-z0-9_.:\-]{1,64}$")
_EMPTY = ("", "nan", "NaN", "NaT", "None")  # an optional value left out, as text or parquet
_TRUE = {"1", "true", "t", "yes", "y"}
_FALSE = {"0", "false", "f", "no", "n"}


def empty_events() -> pa.Table:
    return LABEL_SCHEMA.empty_table()


def source_rank(sources: pd.Series) -> np.ndarray:
    """Each source's precedence among events of the same instant (unknown sources rank last)."""
    ranks = {s: i for i, s in enumerate(LABEL_SOURCES)}
    return sources.map(ranks).fillna(-1).to_numpy(dtype=np.int64)


# --- the service's entries ------------------------------------------------------------------


@dataclass(frozen=True)
class LabelEvent:
    order_id: str
    is_fraud: bool
    label_date: datetime
    source: str
    origin: str = ""
    order_date: datetime | None = None


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _epoch_us(moment: datetime) -> int:
    """Whole microseconds since the epoch, exactly (no float on the way)."""
    return (moment - _EPOCH) // timedelta(microseconds=1)


def encode_entry(event: LabelEvent, received_ms: int | None = None) -> bytes:
    """A `{p}labels` stream entry: msgpack of plain values, version first."""
    label_us = _epoch_us(event.label_date)
    order_us = None if event.order_date is None else _epoch_us(event.order_date)
    received = int(time.time() * 1000) if received_ms is None else received_ms
    return msgpack.packb(
        [
            LABEL_ENTRY_VERSION,
            event.order_id,
            event.is_fraud,
            label_us,
            event.source,
            event.origin,
            received,
            order_us,
        ]
    )


def entries_table(entries: Sequence[bytes]) -> pa.Table:
    """Decoded stream entries as label events (a segment of `label_log`)."""
    rows = []
    for blob in entries:
        try:
            version, order_id, is_fraud, label_us, source, origin, _, order_us = msgpack.unpackb(
                blob
            )
        except (ValueError, TypeError, msgpack.ExtraData, msgpack.FormatError) as exc:
            raise ValueError(f"not a label entry: {exc}") from exc
        if version != LABEL_ENTRY_VERSION:
            raise ValueError(f"a label entry of version {version!r}")
        rows.append((order_id, bool(is_fraud), label_us, source, origin, order_us))
    return pa.table(
        {
            "order_id": pa.array([r[0] for r in rows], pa.string()),
            "is_fraud": pa.array([r[1] for r in rows], pa.bool_()),
            "label_date": pa.array([r[2] for r in rows], pa.timestamp("us", tz="UTC")),
            "source": pa.array([r[3] for r in rows], pa.string()),
            "origin": pa.array([r[4] for r in rows], pa.string()),
            "order_date": pa.array([r[5] for r in rows], pa.timestamp("us", tz="UTC")),
        },
        schema=LABEL_SCHEMA,
    )


# --- label files ----------------------------------------------------------------------------


@dataclass(frozen=True)
class LabelFile:
    """A label file as read: its valid events, and each refused row with the field and why."""

    name: str
    events: pa.Table
    refused: pd.DataFrame  # file, row (0-based), field, reason, value
    problem: str | None = None  # the whole file could not be read

    @property
    def days(self) -> list[date]:
        return label_days(self.events)


def label_file_paths(folder: Path) -> list[Path]:
    folder = as_path(folder)
    if not folder.is_dir():
        return []
    return sorted(
        p
        for p in folder.iterdir()
        if p.is_file() and not p.name.startswith(".") and p.suffix.lower() in LABEL_FILE_SUFFIXES
    )


def _refusals(name: str, rows: np.ndarray, field: str, reason: str, values) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "file": name,
            "row": rows.astype(np.int64),
            "field": field,
            "reason": reason,
            "value": [str(v)[:80] for v in values],
        }
    )


def read_label_file(path: Path) -> LabelFile:
    """A label file's events. A row is refused (with the field and the reason) when its order id
    is missing or malformed, `is_fraud` is not a boolean, `label_date` is not a time, or its
    source is not one a file may name (`POSTED_SOURCES`); the other rows stand."""
    path = as_path(path)
    name = path.name
    try:
        if path.suffix.lower() == ".parquet":
            frame = read_parquet(path).to_pandas()
        else:
            with readable(path) as source:
                frame = pd.read_csv(source, dtype=str, keep_default_na=False)
    except Exception as exc:
        return LabelFile(name, empty_events(), _refusals(name, np.array([]), "", "", []), str(exc))
    missing = [c for c in ("order_id", "is_fraud", "label_date") if c not in frame.columns]
    if missing:
        problem = f"missing column(s) {', '.join(missing)} (needs order_id, is_fraud, label_date)"
        return LabelFile(name, empty_events(), _refusals(name, np.array([]), "", "", []), problem)
    n = len(frame)
    rows = np.arange(n)
    bad = np.zeros(n, dtype=bool)
    refused: list[pd.DataFrame] = []

    def refuse(mask: np.ndarray, field: str, reason: str, values: pd.Series) -> None:
        new = mask & ~bad
        if new.any():
            refused.append(_refusals(name, rows[new], field, reason, values[new]))
        bad[:] |= mask

    order_id = frame["order_id"].astype(str).str.strip()
    refuse(~order_id.str.match(_ORDER_ID).to_numpy(), "order_id", "empty or malformed", order_id)
    text = frame["is_fraud"].astype(str).str.strip().str.lower()
    is_true, is_false = text.isin(_TRUE).to_numpy(), text.isin(_FALSE).to_numpy()
    refuse(~(is_true | is_false), "is_fraud", "not a boolean (true/false, 1/0)", frame["is_fraud"])
    stamps = pd.to_datetime(frame["label_date"], utc=True, errors="coerce", format="mixed")
    refuse(stamps.isna().to_numpy(), "label_date", "not a date or time", frame["label_date"])
    if "source" in frame.columns:
        source = frame["source"].astype(str).str.strip().str.lower()
        source = source.where(source != "", FILE_DEFAULT_SOURCE)
    else:
        source = pd.Series(FILE_DEFAULT_SOURCE, index=frame.index)
    refuse(
        ~source.isin(POSTED_SOURCES).to_numpy(),
        "source",
        f"not one of {', '.join(POSTED_SOURCES)}",
        source,
    )
    if "order_date" in frame.columns:
        text_dates = frame["order_date"].astype(str).str.strip()
        empty = text_dates.isin(_EMPTY) | frame["order_date"].isna()
        placed = pd.to_datetime(text_dates.where(~empty), utc=True, errors="coerce", format="mixed")
        unreadable = (placed.isna() & ~empty).to_numpy()
        refuse(unreadable, "order_date", "not a date or time", frame["order_date"])
        refuse(
            (placed > stamps).fillna(False).to_numpy(),
            "order_date",
            "after its label_date",
            frame["order_date"],
        )
    else:
        placed = pd.Series(pd.NaT, index=frame.index, dtype="datetime64[us, UTC]")
    ok = ~bad
    events = pa.table(
        {
            "order_id": pa.array(order_id[ok].tolist(), pa.string()),
            "is_fraud": pa.array(is_true[ok], pa.bool_()),
            "label_date": pa.array(stamps[ok].dt.as_unit("us"), pa.timestamp("us", tz="UTC")),
            "source": pa.array(source[ok].tolist(), pa.string()),
            "origin": pa.array([name] * int(ok.sum()), pa.string()),
            "order_date": pa.array(
                placed[ok].astype("datetime64[us, UTC]"), pa.timestamp("us", tz="UTC")
            ),
        },
        schema=LABEL_SCHEMA,
    )
    table = (
        pd.concat(refused, ignore_index=True)
        if refused
        else _refusals(name, np.array([]), "", "", [])
    )
    return LabelFile(name, events, table.sort_values("row", ignore_index=True))


# --- days and resolution --------------------------------------------------------------------


def label_days(events: pa.Table) -> list[date]:
    """The UTC label days of some events, oldest first."""
    if not events.num_rows:
        return []
    days = pc.unique(pc.floor_temporal(events.column("label_date"), unit="day"))
    return sorted(d.as_py().date() for d in days)


def events_of_day(events: pa.Table, day: date) -> pa.Table:
    start = datetime(day.year, day.month, day.day, tzinfo=UTC)
    column = events.column("label_date")
    start_s = pa.scalar(start, pa.timestamp("us", tz="UTC"))
    end_s = pa.scalar(start + timedelta(days=1), pa.timestamp("us", tz="UTC"))
    return events.filter(pc.and_(pc.greater_equal(column, start_s), pc.less(column, end_s)))


def first_affected(events: pa.Table, risk_delay_s: int) -> date | None:
    """The first day whose features some of `events` can change: a label counts in the risk
    features of orders after its label date whose risk window (ending `risk_delay_s` before
    them) reaches its order, so from max(label date, order date + delay); the label date alone
    when the order's date is unknown. None for no events."""
    if not events.num_rows:
        return None
    label = events.column("label_date").cast(pa.int64()).to_numpy(zero_copy_only=False)
    placed = events.column("order_date").cast(pa.int64()).fill_null(np.iinfo(np.int64).min)
    reach = placed.to_numpy(zero_copy_only=False)
    reach = np.where(reach == np.iinfo(np.int64).min, label, reach + risk_delay_s * 1_000_000)
    first_us = int(np.maximum(label, reach).min())
    return (_EPOCH + timedelta(microseconds=first_us)).date()


def deduplicated(events: pa.Table) -> pa.Table:
    """One row per distinct event (the same label posted twice, or read from two files, is one),
    sorted by label time then order id: a partition's content does not depend on arrival order."""
    if not events.num_rows:
        return events
    frame = events.to_pandas()
    frame = frame.drop_duplicates(["order_id", "is_fraud", "label_date", "source"])
    frame = frame.sort_values(["label_date", "order_id", "source"], kind="stable")
    return pa.Table.from_pandas(frame, schema=LABEL_SCHEMA, preserve_index=False)


def concat_events(tables: Iterable[pa.Table]) -> pa.Table:
    tables = [t.select(list(LABEL_COLUMNS)).cast(LABEL_SCHEMA) for t in tables]
    return pa.concat_tables(tables) if tables else empty_events()


def row_events(frame: pd.DataFrame) -> pd.DataFrame:
    """The label columns of order rows as events (fraud rows with a label date)."""
    if "is_fraud" not in frame or "label_date" not in frame:
        return pd.DataFrame(columns=list(LABEL_COLUMNS))
    fraud = (frame["is_fraud"].fillna(0).to_numpy(dtype=np.int64) == 1) & frame[
        "label_date"
    ].notna().to_numpy()
    out = pd.DataFrame(
        {
            "order_id": frame["order_id"].to_numpy()[fraud],
            "is_fraud": True,
            "label_date": frame["label_date"].to_numpy()[fraud],
        }
    )
    out["source"] = ORDER_ROW
    out["origin"] = ""
    out["order_date"] = frame["order_date"].to_numpy()[fraud] if "order_date" in frame else pd.NaT
    return out


def resolve(
    order_ids: pd.Series, events: pd.DataFrame, known_by: pd.Timestamp | None = None
) -> pd.DataFrame:
    """Each order's label as known by `known_by` (inclusive; None: everything known), one row per
    order id in `order_ids`' order: `is_fraud` (1 if its latest event says fraud, else 0),
    `label_date` (that event's date where fraud, else NaT) and `source` (the latest event's
    source, "" when none). An order without an event is 0 / NaT / ""."""
    n = len(order_ids)
    out = pd.DataFrame(
        {
            "is_fraud": np.zeros(n, dtype=np.int8),
            "label_date": pd.Series(pd.NaT, index=range(n), dtype="datetime64[us, UTC]"),
            "source": np.full(n, "", dtype=object),
        }
    )
    known = events
    if known_by is not None and len(events):
        known = events[events["label_date"] <= known_by]
    if not len(known) or not n:
        return out
    known = known.assign(_rank=source_rank(known["source"]))
    latest = known.sort_values(["order_id", "label_date", "_rank"], kind="stable").drop_duplicates(
        "order_id", keep="last"
    )
    latest = latest.set_index("order_id")
    where = latest.index.get_indexer(order_ids.astype(str).to_numpy())
    hit = where >= 0
    is_fraud = latest["is_fraud"].to_numpy(dtype=bool)
    positive = np.zeros(n, dtype=bool)
    positive[hit] = is_fraud[where[hit]]
    out.loc[positive, "is_fraud"] = 1
    dates = pd.to_datetime(latest["label_date"], utc=True).to_numpy()
    out.loc[positive, "label_date"] = pd.to_datetime(dates[where[positive]], utc=True)
    out.loc[hit, "source"] = latest["source"].to_numpy(dtype=object)[where[hit]]
    return out


def merged_events(order_ids: pd.Series, *parts: pd.DataFrame) -> pd.DataFrame:
    """The events of several sources (the order rows', the feed's) about `order_ids`, as one
    frame of the feed's columns that `resolve` reads."""
    frames = [
        part[part["order_id"].isin(order_ids)].reindex(columns=list(LABEL_COLUMNS))
        for part in parts
        if len(part)
    ]
    if not frames:
        return empty_events().to_pandas()
    events = pd.concat(frames, ignore_index=True)
    events["label_date"] = pd.to_datetime(events["label_date"], utc=True)
    return events


def apply_feed(
    frame: pd.DataFrame, feed: pd.DataFrame | None, known_by: pd.Timestamp | None = None
) -> pd.DataFrame:
    """`frame`'s label columns (`is_fraud`, `label_date`) as known by `known_by` (None: all),
    with the feed's events merged in: the order rows' own labels are one source among the rest.
    Returns a new frame (the same one when no event of the feed names its orders)."""
    if feed is None or not len(feed) or "order_id" not in frame:
        return frame
    ids = frame["order_id"].astype(str)
    relevant = feed[feed["order_id"].isin(ids)]
    if not len(relevant):
        return frame
    events = merged_events(ids, row_events(frame), relevant)
    resolved = resolve(ids.reset_index(drop=True), events, known_by)
    out = frame.copy()
    kind = out["is_fraud"].dtype if "is_fraud" in out else np.int8
    out["is_fraud"] = resolved["is_fraud"].to_numpy().astype(kind)
    out["label_date"] = resolved["label_date"].to_numpy()
    return out
