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
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from fraud_core.features.kernel import order_kernel
from fraud_core.features.offline import advance_kind, empty_state, order_times
from fraud_core.features.spec import DEFAULT_SPEC, FeatureSpec
from fraud_core.storage import DataLayout, atomic_path, write_parquet

log = logging.getLogger(__name__)

SNAPSHOT_MARKER = "_SNAPSHOT.json"
LABEL_COLUMNS = (
    "order_id",
    "order_date",
    "customer_id",
    "email",
    "ip_addr",
    "is_fraud",
    "label_date",
)


def day_end_s(day: date) -> int:
    """Epoch seconds of the end (exclusive) of a UTC day."""
    return int(datetime.combine(day + timedelta(days=1), datetime.min.time(), UTC).timestamp())


def state_dir(layout: DataLayout, kind: str, day: date) -> Path:
    return layout.root / "entity_state" / f"kind={kind}" / f"date={day.isoformat()}"


def state_file(layout: DataLayout, kind: str, day: date, bucket: int) -> Path:
    return state_dir(layout, kind, day) / f"bucket={bucket:04d}.parquet"


def snapshot_days(layout: DataLayout, kind: str, n_buckets: int) -> list[date]:
    """Days with a complete state snapshot of `kind` for this bucket count, oldest first."""
    root = layout.root / "entity_state" / f"kind={kind}"
    days = []
    for marker in root.glob(f"date=*/{SNAPSHOT_MARKER}"):
        try:
            if json.loads(marker.read_text())["n_buckets"] == n_buckets:
                days.append(date.fromisoformat(marker.parent.name.split("=", 1)[1]))
        except (ValueError, KeyError, OSError):
            continue
    return sorted(days)


def orders_days(layout: DataLayout, kind: str) -> list[date]:
    root = layout.root / "orders_by_entity" / f"kind={kind}"
    return sorted(
        date.fromisoformat(p.name.split("=", 1)[1]) for p in root.glob("date=*") if p.is_dir()
    )


@dataclass(frozen=True)
class BucketTask:
    """One unit of Dask work: an entity kind's bucket over a range of days."""

    root: str
    kind: str
    bucket: int
    n_buckets: int
    days: tuple[date, ...]
    snapshot: date | None  # read state from here
    replay: tuple[date, ...]  # days between the snapshot and the range


def _read_bucket(layout: DataLayout, kind: str, day: date, bucket: int) -> pd.DataFrame | None:
    path = layout.orders_by_entity(kind, day, bucket)
    return pq.read_table(path).to_pandas() if path.exists() else None


def run_bucket_task(task: BucketTask, spec: FeatureSpec = DEFAULT_SPEC) -> dict[str, np.ndarray]:
    """Features of one (kind, bucket) over the task's days; writes the end-of-range snapshot.

    Returns the order ids and the kind's feature columns (plain arrays: cheap to ship back)."""
    layout = DataLayout(Path(task.root))
    state: pd.DataFrame | None = None
    if task.snapshot is not None:
        state = pq.read_table(state_file(layout, task.kind, task.snapshot, task.bucket)).to_pandas()
    for day in task.replay:
        orders = _read_bucket(layout, task.kind, day, task.bucket)
        if orders is not None and len(orders):
            _, state = advance_kind(state, orders, task.kind, day_end_s(day), spec)
    parts = [
        p for d in task.days if (p := _read_bucket(layout, task.kind, d, task.bucket)) is not None
    ]
    orders = pd.concat(parts, ignore_index=True) if parts else None
    if orders is None or not len(orders):
        cols: dict[str, np.ndarray] = {f.name: np.empty(0) for f in spec.entity_features(task.kind)}
        order_ids = np.empty(0, dtype=object)
        if state is None:
            state = empty_state(spec, task.kind)
    else:
        cols, state = advance_kind(state, orders, task.kind, day_end_s(task.days[-1]), spec)
        order_ids = orders["order_id"].to_numpy(dtype=object)
    write_parquet(state, state_file(layout, task.kind, task.days[-1], task.bucket))
    return {"order_id": order_ids, **cols}


def plan_tasks(
    layout: DataLayout, days: list[date], n_buckets: int, spec: FeatureSpec = DEFAULT_SPEC
) -> list[BucketTask]:
    """The tasks of a range run: per kind, the newest usable snapshot before the range and the
    days to replay from it."""
    first = days[0]
    tasks = []
    for e in spec.entities:
        before = [d for d in snapshot_days(layout, e.kind, n_buckets) if d < first]
        snapshot = before[-1] if before else None
        replay = tuple(
            d
            for d in orders_days(layout, e.kind)
            if (snapshot is None or d > snapshot) and d < first
        )
        tasks += [
            BucketTask(str(layout.root), e.kind, b, n_buckets, tuple(days), snapshot, replay)
            for b in range(n_buckets)
        ]
    return tasks


def mark_snapshots(
    layout: DataLayout, day: date, n_buckets: int, spec: FeatureSpec = DEFAULT_SPEC
) -> None:
    """Declare the snapshot at `day` complete (after every bucket file of it is written)."""
    for e in spec.entities:
        marker = state_dir(layout, e.kind, day) / SNAPSHOT_MARKER
        with atomic_path(marker) as tmp:
            tmp.write_text(json.dumps({"n_buckets": n_buckets, "kind": e.kind}))


def assemble_days(
    layout: DataLayout,
    days: list[date],
    results: list[tuple[str, dict[str, np.ndarray]]],
    spec: FeatureSpec = DEFAULT_SPEC,
) -> tuple[dict[date, int], list[dict[str, float]]]:
    """Join the (kind, bucket result) pairs with the days' validated orders and write one
    feature file per day: identity and label columns first, then the spec's features in order.
    Returns the row count per day and a per-feature summary of the last day."""
    frames = [pq.read_table(layout.raw_orders(d)).to_pandas() for d in days]
    orders = pd.concat(frames, ignore_index=True)
    names = spec.feature_names
    index = {name: i for i, name in enumerate(names)}
    block = np.full((len(names), len(orders)), np.nan)
    t_s, cents = order_times(orders)
    for name, col in order_kernel(t_s, cents).items():
        block[index[name]] = col
    position = pd.Index(orders["order_id"])
    seen = {e.kind: np.zeros(len(orders), dtype=bool) for e in spec.entities}
    for kind, result in results:
        if not len(result["order_id"]):
            continue
        pos = position.get_indexer(result["order_id"])
        if (pos < 0).any():
            raise ValueError("bucketed orders that are not in raw_orders: rerun orders_by_entity")
        seen[kind][pos] = True
        for name, col in result.items():
            if name != "order_id":
                block[index[name], pos] = col
    for kind, mask in seen.items():
        if not mask.all():
            raise ValueError(
                f"{(~mask).sum()} orders have no {kind} bucket: rerun orders_by_entity"
            )

    ident = orders[[c for c in LABEL_COLUMNS if c in orders.columns]]
    counts: dict[date, int] = {}
    start = 0
    for day, frame in zip(days, frames, strict=True):
        stop = start + len(frame)
        table = pa.Table.from_pandas(ident.iloc[start:stop], preserve_index=False)
        for name in names:
            table = table.append_column(name, pa.array(block[index[name], start:stop]))
        write_parquet(table, layout.entity_features(day))
        counts[day] = len(frame)
        last = block[:, start:stop]
        start = stop
    return counts, summarize_block(names, last)


def summarize_block(names: list[str], block: np.ndarray) -> list[dict[str, float]]:
    """Mean, min, max and empty share of each feature row of a (features x orders) block."""
    out = []
    with np.errstate(invalid="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-empty features give NaN, as wanted
        empty = np.isnan(block).mean(axis=1) if block.shape[1] else np.zeros(len(names))
        mean, lo, hi = np.nanmean(block, axis=1), np.nanmin(block, axis=1), np.nanmax(block, axis=1)
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
