"""Entity-hash buckets: a day's orders split by each entity (customer, e-mail, IP, ...) so that feature work can run
per bucket in parallel and every order of one entity lands in the same bucket on every day.

The hash is SipHash with a fixed key over the UTF-8 text (pandas' `hash_array`), so a bucket is
the same in every process, on every machine and on every day; Python's own `hash()` is salted
per process and must not be used for this.
"""

from __future__ import annotations

import json
from datetime import date

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from fraud_core.contract import Contract, builtin_contract
from fraud_core.schema import order_schema
from fraud_core.storage import DataLayout, atomic_path, read_parquet, write_parquet

# Per kind and day. At the default volume (~3,300 orders a day) a bucket file holds ~800 orders;
# a backfill task reads one file per day, so smaller files cost more in per-file overhead than in
# data (8 buckets: 14.3 s for a 360-day feature backfill, 4: 12.6 s, bench/RESULTS.md). Raise it
# (OrdersByEntityConfig.n_buckets) for more cores or more orders a day.
DEFAULT_N_BUCKETS = 4
_HASH_KEY = "fraud-buckets-v1"  # 16 bytes; changing it moves every entity to another bucket


def entity_bucket(values: pd.Series | np.ndarray, n_buckets: int) -> np.ndarray:
    """Bucket number in [0, n_buckets) of each entity value (int32), stable across processes."""
    if n_buckets < 1:
        raise ValueError(f"n_buckets must be >= 1, got {n_buckets}")
    if isinstance(values, np.ndarray) and values.dtype == object:
        text = values  # already Python strings (e.g. from Arrow's to_numpy)
    else:
        text = pd.Series(values).astype("string").to_numpy(dtype=object, na_value=None)
    hashes = pd.util.hash_array(text, encoding="utf8", hash_key=_HASH_KEY, categorize=False)
    return (hashes % np.uint64(n_buckets)).astype(np.int32)


def split_by_bucket(orders: pa.Table, kind: str, n_buckets: int) -> list[pa.Table]:
    """`n_buckets` tables (some may be empty), bucket b holding the orders whose `kind` value
    hashes to b, sorted by (entity, order_date, order_id) as the feature kernels expect. One
    Arrow sort and zero-copy slices: a day is split three ways in milliseconds."""
    buckets = entity_bucket(orders.column(kind).to_numpy(zero_copy_only=False), n_buckets)
    keys = [("_bucket", "ascending")] + [(c, "ascending") for c in (kind, "order_date", "order_id")]
    order = pc.sort_indices(orders.append_column("_bucket", pa.array(buckets)), sort_keys=keys)
    ordered = orders.take(order)
    counts = np.bincount(buckets, minlength=n_buckets)
    starts = np.concatenate(([0], np.cumsum(counts)))
    return [ordered.slice(int(starts[b]), int(counts[b])) for b in range(n_buckets)]


def write_day_buckets(
    layout: DataLayout,
    day: date | str,
    n_buckets: int = DEFAULT_N_BUCKETS,
    contract: Contract | None = None,
) -> dict[str, list[int]]:
    """Split the validated orders of `day` into bucket files for every entity kind of `contract`
    (default the built-in one), replacing
    what an earlier run wrote for that day (files of buckets beyond `n_buckets` are removed).
    Returns the row count of each bucket per kind. Runs inside a Dask task: plain arguments,
    plain result.

    A kind's marker is withdrawn before its files are replaced and written after the last one
    (`DataLayout.orders_by_entity_marker`): a write that fails or is killed half-way, or is
    still running, leaves the day unmarked, and feature runs refuse an unmarked day instead of
    reading a mix of old and new buckets."""
    source = layout.raw_orders(day)
    if not source.exists():
        raise FileNotFoundError(f"no validated orders for {day}: {source} (materialize raw_orders)")
    contract = contract or builtin_contract()
    schema = order_schema(contract)
    orders = read_parquet(source).select(schema.names).cast(schema)
    sizes: dict[str, list[int]] = {}
    for kind in contract.entity_kinds:
        marker = layout.orders_by_entity_marker(kind, day)
        marker.unlink(missing_ok=True)
        written = set()
        sizes[kind] = []
        for bucket, part in enumerate(split_by_bucket(orders, kind, n_buckets)):
            path = write_parquet(part, layout.orders_by_entity(kind, day, bucket))
            written.add(path.name)
            sizes[kind].append(part.num_rows)
        for stale in layout.orders_by_entity_buckets(kind, day).values():
            if stale.name not in written:
                stale.unlink()
        with atomic_path(marker) as tmp:
            tmp.write_text(json.dumps({"n_buckets": n_buckets, "rows": sizes[kind]}))
    return sizes


def bucket_files(layout: DataLayout, kind: str, day: date | str) -> list[tuple[int, str]]:
    """(bucket number, path) of every bucket file of one kind and day, by bucket number. The
    files of a day without its marker (`DataLayout.orders_by_entity_days`) are not complete:
    callers check the marker first."""
    return [(b, str(path)) for b, path in layout.orders_by_entity_buckets(kind, day).items()]
