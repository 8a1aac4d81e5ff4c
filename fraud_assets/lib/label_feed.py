"""The label feed's moving parts: draining the service's label stream into segments (the same
order of steps as the decision log's drain: write, then trim), reading every source of a label
day, and finding the served days a set of labels judges.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import redis

from fraud_core.decision_log import next_id
from fraud_core.labels import (
    LABEL_FIELD,
    LabelFile,
    concat_events,
    deduplicated,
    empty_events,
    entries_table,
    events_of_day,
    label_days,
    label_file_paths,
    merged_events,
    read_label_file,
    resolve,
    row_events,
)
from fraud_core.online_keys import OnlineKeys
from fraud_core.storage import (
    DataLayout,
    as_path,
    read_parquet,
    read_parquet_files,
    read_schema,
    write_parquet,
)

READ_CHUNK = 10_000


@dataclass(frozen=True)
class LabelDrain:
    drained: int
    segment: str | None
    days: list[date] = field(default_factory=list)  # label days of the drained entries
    remaining: int = 0


def drain_labels(
    client: redis.Redis, keys: OnlineKeys, layout: DataLayout, limit: int = 200_000
) -> LabelDrain:
    """Move at most `limit` of the oldest entries of the label stream into one segment, named by
    the first entry's id (a drain that died before the trim rewrites the same file), and trim
    only what was written."""
    ids: list[str] = []
    blobs: list[bytes] = []
    low = "-"
    while len(ids) < limit:
        chunk = client.xrange(keys.labels, low, "+", count=min(READ_CHUNK, limit - len(ids)))
        if not chunk:
            break
        for entry_id, fields in chunk:
            ids.append(entry_id.decode() if isinstance(entry_id, bytes) else entry_id)
            blobs.append(fields[LABEL_FIELD])
        low = "(" + ids[-1]
    if not ids:
        return LabelDrain(0, None, remaining=0)
    table = entries_table(blobs)
    path = write_parquet(table, layout.label_log_segment(ids[0]), durable=True)
    client.xtrim(keys.labels, minid=next_id(ids[-1]), approximate=False)
    return LabelDrain(len(ids), str(path), label_days(table), client.xlen(keys.labels))


@dataclass(frozen=True)
class LabelSources:
    """Everything the feed knows, read once per run: the label files as read, and the drained
    API labels."""

    files: list[LabelFile]
    api: pa.Table

    @classmethod
    def read(cls, layout: DataLayout) -> LabelSources:
        files = [read_label_file(p) for p in label_file_paths(as_path(layout.label_landing))]
        segments = [as_path(p) for p in layout.label_log_segments()]
        api = read_parquet_files(segments) if segments else empty_events()
        return cls(files, api)

    @property
    def refused(self) -> pd.DataFrame:
        frames = [f.refused for f in self.files if len(f.refused)]
        if not frames:
            return pd.DataFrame(columns=["file", "row", "field", "reason", "value"])
        return pd.concat(frames, ignore_index=True)

    @property
    def unreadable(self) -> dict[str, str]:
        return {f.name: f.problem for f in self.files if f.problem}

    def day(self, day: date) -> pa.Table:
        """The label day's events from every source, one per distinct event."""
        parts = [events_of_day(f.events, day) for f in self.files] + [events_of_day(self.api, day)]
        return deduplicated(concat_events(parts))


def read_feed(layout: DataLayout) -> pd.DataFrame:
    """Every `labels` partition on disk as one events frame."""
    paths = [as_path(layout.labels(d)) for d in layout.labels_days()]
    if not paths:
        return empty_events().to_pandas()
    return read_parquet_files(paths).to_pandas()


def order_row_labels(layout: DataLayout, day: date, order_ids: pd.Series) -> pd.DataFrame:
    """The label columns of the day's order rows (when its orders also arrived in a landing
    file), as events, for `order_ids`."""
    path = as_path(layout.raw_orders(day))
    if not path.exists():
        return empty_events().to_pandas()
    names = set(read_schema(path).names)
    columns = [c for c in ("order_id", "is_fraud", "label_date") if c in names]
    rows = read_parquet(path, columns=columns).to_pandas()
    return row_events(rows[rows["order_id"].isin(order_ids)])


def known_labels(
    layout: DataLayout, day: date, order_ids: pd.Series, feed: pd.DataFrame, clock
) -> pd.DataFrame:
    """The labels of a served day's orders as known at `clock`: the label feed's events merged
    with the day's order rows' own (`labels.resolve`'s frame: is_fraud, label_date, source)."""
    events = merged_events(order_ids, order_row_labels(layout, day, order_ids), feed)
    return resolve(order_ids, events, pd.Timestamp(clock))


def served_days(layout: DataLayout, order_ids: Iterable[str]) -> list[date]:
    """The order days of `scored_orders` that hold any of `order_ids` (what a label judges)."""
    wanted = pa.array(sorted(set(order_ids)), pa.string())
    if not len(wanted):
        return []
    found: list[date] = []
    for day in layout.scored_orders_days():
        ids = read_parquet(as_path(layout.scored_orders(day)), columns=["order_id"]).column(0)
        if pc.any(pc.is_in(ids, value_set=wanted)).as_py():
            found.append(day)
    return found
