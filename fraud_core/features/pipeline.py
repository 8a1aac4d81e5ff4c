"""The offline feature path over files: per-(kind, bucket) tasks that carry entity state from a
snapshot, and the assembly of one feature table per day.

A run owns a range of days (one day in daily operation, many in a backfill). Each task reads the
newest state snapshot before the range, replays the days between that snapshot and the range
(features discarded: this only happens when days were skipped), computes the range in one kernel
call and writes the snapshot at the range's end. So a day costs O(day) in daily operation and a
backfill costs O(range), never O(history) per day.
"""

from __future__ import annotations

import json
import logging
import warnings
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from fraud_core.env import env_number
from fraud_core.features.kernel import NO_LABEL, order_kernel
from fraud_core.features.offline import (
    advance_kind,
    empty_state,
    number_columns,
    order_numbers,
    order_times,
    series_epoch_seconds,
)
from fraud_core.features.rules import forbidden_nans, out_of_range
from fraud_core.features.spec import DEFAULT_SPEC, FeatureSpec
from fraud_core.labels import apply_feed, merged_events, resolve, row_events
from fraud_core.storage import (
    DataLayout,
    atomic_path,
    publish,
    read_metadata,
    read_parquet,
    read_parquet_files,
    write_parquet,
)

log = logging.getLogger(__name__)


def identity_columns(spec: FeatureSpec) -> tuple[str, ...]:
    """An order's identity in the feature and training files: its id and time, its entities (as
    the contract stores them)."""
    return ("order_id", "order_date", *(e.kind for e in spec.entities))


def label_columns(spec: FeatureSpec) -> tuple[str, ...]:
    """What a feature file holds before the features: the order's identity and its labels."""
    return (*identity_columns(spec), "is_fraud", "label_date")


def day_end_s(day: date) -> int:
    """Epoch seconds of the end (exclusive) of a UTC day."""
    return int(datetime.combine(day + timedelta(days=1), datetime.min.time(), UTC).timestamp())


def state_file(layout: DataLayout, kind: str, day: date, bucket: int) -> Path:
    return layout.entity_state(kind, day, bucket)


def snapshot_days(layout: DataLayout, kind: str, n_buckets: int) -> list[date]:
    """Days with a complete state snapshot of `kind` for this bucket count, oldest first."""
    days = []
    for day, marker in layout.entity_state_markers(kind).items():
        try:
            if json.loads(marker.read_text())["n_buckets"] == n_buckets:
                days.append(day)
        except (ValueError, KeyError, OSError):
            continue
    return days


def orders_days(layout: DataLayout, kind: str) -> list[date]:
    return layout.orders_by_entity_days(kind)


@dataclass(frozen=True)
class BucketTask:
    """One unit of Dask work: an entity kind's bucket over a range of days. It reads orders
    under `root`, its starting snapshot under `state_root` (`root`, or the run's staging tree
    for a range's later chunks) and writes its end-of-range state under `out_root` (the run's
    staging tree)."""

    root: str
    out_root: str
    kind: str
    bucket: int
    n_buckets: int
    days: tuple[date, ...]
    snapshot: date | None  # read state from here
    replay: tuple[date, ...]  # days between the snapshot and the range
    state_root: str | None = None  # where the snapshot is; None: `root`


def _read_buckets(
    layout: DataLayout, kind: str, days: tuple[date, ...], bucket: int
) -> pa.Table | None:
    """One bucket's orders over several days, in day order (None when no day has a file)."""
    paths = [p for d in days if (p := layout.orders_by_entity(kind, d, bucket)).exists()]
    return read_parquet_files(paths) if paths else None


def relabel_state(state: pd.DataFrame, feed: pd.DataFrame | None) -> pd.DataFrame:
    """An entity state's `label_s` with the label feed's events merged in (`fraud_core.labels`:
    each order's latest verdict; its label in the state is one event among them)."""
    if feed is None or not len(feed) or not len(state):
        return state
    hit = state["order_id"].isin(feed["order_id"]).to_numpy()
    if not hit.any():
        return state
    ids = state["order_id"][hit].astype(str).reset_index(drop=True)
    label_s = state["label_s"].to_numpy()[hit]
    known = label_s != NO_LABEL
    own = pd.DataFrame(  # the state's labels, as order rows carry them
        {
            "order_id": ids,
            "is_fraud": known.astype(np.int8),
            "label_date": pd.to_datetime(np.where(known, label_s, 0), unit="s", utc=True),
        }
    )
    resolved = resolve(ids, merged_events(ids, row_events(own), feed))
    fraud = resolved["is_fraud"].to_numpy() == 1
    new = np.full(len(ids), NO_LABEL, dtype=np.int64)
    if fraud.any():
        new[fraud] = series_epoch_seconds(resolved["label_date"][fraud])
    out = state.copy()
    out.loc[hit, "label_s"] = new
    return out


def run_bucket_task(
    task: BucketTask, spec: FeatureSpec = DEFAULT_SPEC, feed: pd.DataFrame | None = None
) -> dict[str, object]:
    """Features of one (kind, bucket) over the task's days; writes the end-of-range snapshot.

    `feed`: the label feed's events (`fraud_core.labels`), merged into the labels of the state
    and of the orders, so risk features count chargebacks that arrived as label events.

    Returns `order_id` (an Arrow array) and `features`, a (kind's features x orders) block, both
    in the order of the bucket files (day by day): cheap to ship back and to cut by day."""
    layout = DataLayout(task.root)
    state: pd.DataFrame | None = None
    if task.snapshot is not None:
        states = DataLayout(task.state_root or task.root)
        state = read_parquet(state_file(states, task.kind, task.snapshot, task.bucket)).to_pandas()
        state = relabel_state(state, feed)
    if task.replay:
        replayed = _read_buckets(layout, task.kind, task.replay, task.bucket)
        if replayed is not None and replayed.num_rows:
            end = day_end_s(task.replay[-1])
            frame = apply_feed(replayed.to_pandas(), feed)
            _, state = advance_kind(state, frame, task.kind, end, spec)
    orders = _read_buckets(layout, task.kind, task.days, task.bucket)
    if orders is None or not orders.num_rows:
        features = np.empty((len(spec.entity_features(task.kind)), 0))
        order_ids = pa.chunked_array([], type=pa.string())
        if state is None:
            state = empty_state(spec, task.kind)
    else:
        end = day_end_s(task.days[-1])
        frame = apply_feed(orders.to_pandas(), feed)
        features, state = advance_kind(state, frame, task.kind, end, spec)
        order_ids = orders.column("order_id")
    out = DataLayout(task.out_root)
    write_parquet(state, state_file(out, task.kind, task.days[-1], task.bucket))
    return {"order_id": order_ids, "features": features}


def plan_tasks(
    layout: DataLayout,
    days: list[date],
    n_buckets: int,
    spec: FeatureSpec = DEFAULT_SPEC,
    out: DataLayout | None = None,
    after: date | None = None,
) -> list[BucketTask]:
    """The tasks of a range run: per kind, the newest published snapshot before the range and
    the days to replay from it. States are written under `out` (default: `layout` itself).
    `after`: the range continues a chunk that ended that day, whose snapshot is under `out`
    (nothing to replay)."""
    out_root = str((out or layout).root)
    first = days[0]
    tasks = []
    if after is not None:
        return [
            BucketTask(
                str(layout.root), out_root, e.kind, b, n_buckets, tuple(days), after, (), out_root
            )
            for e in spec.entities
            for b in range(n_buckets)
        ]
    for e in spec.entities:
        before = [d for d in snapshot_days(layout, e.kind, n_buckets) if d < first]
        snapshot = before[-1] if before else None
        replay = tuple(
            d
            for d in orders_days(layout, e.kind)
            if (snapshot is None or d > snapshot) and d < first
        )
        tasks += [
            BucketTask(
                str(layout.root), out_root, e.kind, b, n_buckets, tuple(days), snapshot, replay
            )
            for b in range(n_buckets)
        ]
    return tasks


CHUNK_ORDERS_ENV = "FRAUD_CHUNK_ORDERS"
DEFAULT_CHUNK_ORDERS = 1_000_000


def chunk_orders() -> int:
    """Orders a range run computes at once (`$FRAUD_CHUNK_ORDERS`): its peak memory follows
    this, not the range (bench/RESULTS.md, "Bounded memory")."""
    return env_number(CHUNK_ORDERS_ENV, DEFAULT_CHUNK_ORDERS, int, low=1)


def day_chunks(days: list[date], rows: list[int], max_rows: int) -> list[list[date]]:
    """Consecutive runs of `days` holding at most `max_rows` orders each (`rows` per day), at
    least one day each: a range run computes one chunk at a time, so its memory follows the
    chunk, not the range."""
    chunks: list[list[date]] = []
    current: list[date] = []
    held = 0
    for day, n in zip(days, rows, strict=True):
        if current and held + n > max_rows:
            chunks.append(current)
            current, held = [], 0
        current.append(day)
        held += n
    if current:
        chunks.append(current)
    return chunks


def mark_snapshots(
    layout: DataLayout, day: date, n_buckets: int, spec: FeatureSpec = DEFAULT_SPEC
) -> None:
    """Declare the snapshot at `day` complete (after every bucket file of it is written)."""
    for e in spec.entities:
        marker = layout.entity_state_marker(e.kind, day)
        with atomic_path(marker) as tmp:
            tmp.write_text(json.dumps({"n_buckets": n_buckets, "kind": e.kind}))


def publish_features(
    layout: DataLayout,
    staged: DataLayout,
    snapshot_days: list[date],
    n_buckets: int,
    spec: FeatureSpec = DEFAULT_SPEC,
) -> None:
    """Make a run's checked output visible: move its feature files and state files into place
    (each move atomic), then mark the snapshots it wrote (each chunk's end, the range's end
    last) complete. A reader never sees a snapshot or a feature file of a run whose checks did
    not pass.

    A rerun replaces snapshots: their markers are withdrawn first, so while the new bucket
    files move in one by one (in an object store, one copy each) no marker vouches for a mix of
    old and new files; a reader meanwhile takes the newest snapshot still marked, and a publish
    that fails half-way leaves those days unmarked until a run succeeds."""
    for day in snapshot_days:
        for e in spec.entities:
            layout.entity_state_marker(e.kind, day).unlink(missing_ok=True)
    publish(staged, layout)
    for day in snapshot_days:
        mark_snapshots(layout, day, n_buckets, spec)


def assemble_days(
    layout: DataLayout,
    days: list[date],
    results: list[tuple[str, dict[str, object]]],
    spec: FeatureSpec = DEFAULT_SPEC,
    out: DataLayout | None = None,
) -> tuple[dict[date, int], list[dict[str, float]], dict[date, dict[str, dict[str, int]]]]:
    """Join the (kind, bucket result) pairs with the days' validated orders and write one
    feature file per day under `out` (default `layout`): identity and label columns first, then
    the spec's features in order. Every validated order gets exactly one row (checked above).
    Returns the row count per day, a per-feature summary of the last day, and the days whose
    rows break a feature rule (`fraud_core.features.rules`: rule -> feature -> rows).

    Each day is put together in its own small block: every bucket result holds the day's rows
    as one contiguous run (results are in bucket-file order, day by day), scattered into place."""
    day_rows = [read_metadata(layout.raw_orders(d)).num_rows for d in days]
    bounds = np.cumsum([0, *day_rows])
    raw = read_parquet_files([layout.raw_orders(d) for d in days])
    names = spec.feature_names
    first_row = {e.kind: names.index(spec.entity_features(e.kind)[0].name) for e in spec.entities}

    # one hash join of every bucket's order ids against the range's validated orders
    results = [(k, r) for k, r in results if len(r["order_id"])]
    ids = pa.chunked_array([c for _, r in results for c in r["order_id"].chunks], type=pa.string())
    found = pc.index_in(ids, value_set=raw.column("order_id").cast(pa.string()))
    if found.null_count:
        raise ValueError("bucketed orders that are not in raw_orders: rerun orders_by_entity")
    positions = found.to_numpy()
    seen = {e.kind: np.zeros(raw.num_rows, dtype=bool) for e in spec.entities}
    pieces = []  # (kind, positions, features, where each day's run starts and ends)
    offset = 0
    for kind, result in results:
        pos = positions[offset : offset + len(result["order_id"])]
        offset += len(pos)
        seen[kind][pos] = True
        day_of_row = np.searchsorted(bounds, pos, side="right") - 1
        if (np.diff(day_of_row) < 0).any():
            raise ValueError("bucket results are not in day order")
        cuts = np.searchsorted(day_of_row, np.arange(len(days) + 1))
        pieces.append((kind, pos, result["features"], cuts))
    for kind, mask in seen.items():
        if not mask.all():
            raise ValueError(
                f"{(~mask).sum()} orders have no {kind} bucket: rerun orders_by_entity"
            )

    ident = [c for c in label_columns(spec) if c in raw.column_names]
    own_columns = raw.select(["order_date", "order_amount", *number_columns(spec)]).to_pandas()
    t_s, cents = order_times(own_columns)
    own_features = order_kernel(t_s, cents, spec, order_numbers(own_columns, spec))
    own = [(names.index(name), col) for name, col in own_features.items()]

    def write_day(i: int) -> np.ndarray | None:
        start, stop = int(bounds[i]), int(bounds[i + 1])
        # every cell is written below (the coverage check above proves it): no pre-fill
        block = np.empty((len(names), stop - start))
        for row, col in own:
            block[row] = col[start:stop]
        for kind, pos, features, cuts in pieces:
            lo, hi = cuts[i], cuts[i + 1]
            if hi > lo:
                r0 = first_row[kind]
                block[r0 : r0 + len(features), pos[lo:hi] - start] = features[:, lo:hi]
        broken = {
            "forbidden_nans": forbidden_nans(block, spec),
            "out_of_range": out_of_range(block, spec),
        }
        if any(broken.values()):
            violations[days[i]] = broken
        head = raw.select(ident).slice(start, stop - start)
        arrays = [*head.columns, *(pa.array(row) for row in block)]
        table = pa.Table.from_arrays(arrays, names=[*ident, *names])
        write_parquet(table, (out or layout).entity_features(days[i]), dictionary_columns=ident)
        return block if i == len(days) - 1 else None  # the last day's block is summarised

    violations: dict[date, dict[str, dict[str, int]]] = {}
    with ThreadPoolExecutor(max_workers=2) as pool:  # parquet encoding releases the GIL
        last = list(pool.map(write_day, range(len(days))))[-1]
    counts = {day: int(n) for day, n in zip(days, day_rows, strict=True)}
    return counts, summarize_block(names, last), dict(sorted(violations.items()))


def summarize_block(names: list[str], block: np.ndarray) -> list[dict[str, float]]:
    """Mean, min, max and empty share of each feature row of a (features x orders) block."""
    out = []
    with np.errstate(invalid="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-empty features give NaN, as wanted
        if block.shape[1]:
            empty = np.isnan(block).mean(axis=1)
            mean, lo = np.nanmean(block, axis=1), np.nanmin(block, axis=1)
            hi = np.nanmax(block, axis=1)
        else:  # a day without orders: nothing to summarise (nanmin of nothing raises)
            empty = mean = lo = hi = np.full(len(names), np.nan)
    for i, name in enumerate(names):
        out.append(
            {
                "feature": name,
                "mean": float(mean[i]),
                "min": float(lo[i]),
                "max": float(hi[i]),
                "empty_share": float(empty[i]),
            }
        )
    return out
