"""The decision log: one entry per order the scoring service committed, what it saw and what it
decided, so that production can be replayed, compared with the offline features and judged
once labels arrive (issue 16).

The service writes an entry in the same atomic step that stores the order's answer and entity
states (`online_keys.FENCED_COMMIT_SCRIPT` adds it to the `{p}decisions` stream): a stored
answer has exactly one entry, a commit that did not store has none, a replay adds none. The
entry is msgpack of plain values (no pickle) with a version first; the feature vector is packed
as little-endian float64 bytes (a few hundred ns to write, exact to the bit).

`log_table` turns entries into an Arrow table: a drain writes the stream's oldest entries as one
segment file (named by its first entry's id, so a drain that died before trimming the stream
rewrites the same file with a superset) and only then trims them from the stream. `scored_orders`
is each order day's rows of the segments, one per order id.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import msgpack
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds

LOG_VERSION = 1
LOG_FIELD = b"d"  # the stream entry's one field


@dataclass(frozen=True)
class Decision:
    """One committed order as the service scored it."""

    order_id: str
    t_s: int  # the order time the features used (epoch s; clamped to its entities' latest)
    received_ms: int  # when the service received the request (epoch ms)
    cents: int  # the amount in whole cents
    ids: dict[str, str]  # entity kind -> key as the store keeps it; categorical attributes
    namespace: str  # the online-store namespace it was read from and written to
    model_version: str
    features: np.ndarray  # float64, in the model's feature order
    score: float
    decision: str
    reasons: list[tuple[str, float | None, float]] = field(default_factory=list)
    latency_us: int = 0  # received -> decided (before the commit)
    key_id: str = ""  # which API key asked (`key_id`), never the key


def key_id(api_key: str) -> str:
    """A short public id of an API key: the first 12 hex digits of its SHA-256 (a key is long
    and random, so this tells nothing about it)."""
    return hashlib.sha256(api_key.encode()).hexdigest()[:12]


def encode_decision(d: Decision) -> bytes:
    features = np.ascontiguousarray(d.features, dtype="<f8").tobytes()
    payload = [
        LOG_VERSION, d.order_id, d.t_s, d.received_ms, d.cents, d.ids, d.namespace,
        d.model_version, features, d.score, d.decision, [list(r) for r in d.reasons],
        d.latency_us, d.key_id,
    ]  # fmt: skip
    return msgpack.packb(payload, use_bin_type=True)


def decode_decision(blob: bytes) -> Decision:
    try:
        version, *rest = msgpack.unpackb(blob, raw=False)
    except (ValueError, msgpack.ExtraData, msgpack.FormatError, TypeError) as exc:
        raise ValueError(f"not a decision-log entry: {exc}") from exc
    if version != LOG_VERSION or len(rest) != 13:
        raise ValueError(f"decision-log entry version {version} is not supported")
    (order_id, t_s, received_ms, cents, ids, namespace, model_version, features, score,
     decision, reasons, latency_us, key) = rest  # fmt: skip
    return Decision(
        order_id=order_id,
        t_s=t_s,
        received_ms=received_ms,
        cents=cents,
        ids=ids,
        namespace=namespace,
        model_version=model_version,
        features=np.frombuffer(features, dtype="<f8"),
        score=score,
        decision=decision,
        reasons=[tuple(r) for r in reasons],
        latency_us=latency_us,
        key_id=key,
    )


def log_table(entries: Sequence[tuple[str, bytes]]) -> pa.Table:
    """(stream id, encoded entry) pairs as one table: a row per entry, entity keys and attribute
    values as columns of their own, the feature vector as a list column. Decodes in bulk (a few
    microseconds an entry: the drain's pace), checking each entry's version."""
    rows = []
    for _, blob in entries:
        try:
            row = msgpack.unpackb(blob, raw=False)
        except (ValueError, msgpack.ExtraData, msgpack.FormatError, TypeError) as exc:
            raise ValueError(f"not a decision-log entry: {exc}") from exc
        if row[0] != LOG_VERSION or len(row) != 14:
            raise ValueError(f"decision-log entry version {row[0]} is not supported")
        rows.append(row)
    cols = list(zip(*rows, strict=True)) if rows else [()] * 14
    (_, order_id, t_s, received_ms, cents, ids, namespace, model_version, features, score,
     decision, reasons, latency_us, key) = cols  # fmt: skip
    kinds = list(dict.fromkeys(k for d in ids for k in d))
    columns: dict[str, pa.Array] = {
        "log_id": pa.array([i for i, _ in entries], pa.string()),
        "order_id": pa.array(order_id, pa.string()),
        "t_s": pa.array(t_s, pa.int64()),
        "received_ms": pa.array(received_ms, pa.int64()),
        "cents": pa.array(cents, pa.int64()),
    }
    for kind in kinds:
        columns[kind] = pa.array([d.get(kind) for d in ids], pa.string())
    lengths = np.fromiter((len(f) // 8 for f in features), np.int32, len(features))
    offsets = np.concatenate(([0], np.cumsum(lengths, dtype=np.int32)))
    values = np.frombuffer(b"".join(features), dtype="<f8")
    columns |= {
        "namespace": pa.array(namespace, pa.string()),
        "model_version": pa.array(model_version, pa.string()),
        "features": pa.ListArray.from_arrays(pa.array(offsets), pa.array(values)),
        "score": pa.array(score, pa.float64()),
        "decision": pa.array(decision, pa.string()),
        "reasons": pa.array([[r[0] for r in rs] for rs in reasons], pa.list_(pa.string())),
        "latency_us": pa.array(latency_us, pa.int64()),
        "key_id": pa.array(key, pa.string()),
    }
    return pa.table(columns)


def next_id(entry_id: str) -> str:
    """The smallest stream id after `entry_id` (`ms-seq`): what XTRIM MINID keeps from."""
    ms, _, seq = entry_id.partition("-")
    return f"{ms}-{int(seq) + 1}"


def order_days(table: pa.Table) -> list[date]:
    """The order days (UTC) of a log table's rows, oldest first."""
    if not table.num_rows:
        return []
    days = np.unique(table.column("t_s").to_numpy() // 86_400)
    return [date(1970, 1, 1) + timedelta(days=int(d)) for d in days]


def scored_orders_of_day(segments: Sequence[Path], day: date) -> pa.Table | None:
    """The decision-log rows of the orders of `day` (by the order time the service used), one
    per order id (the first logged: a drain that died before trimming left a copy behind), in
    log order. None when no segment exists."""
    if not segments:
        return None
    start = int(datetime(day.year, day.month, day.day, tzinfo=UTC).timestamp())
    t_s = ds.field("t_s")
    data = ds.dataset([str(p) for p in segments], format="parquet")
    table = data.to_table(filter=(t_s >= start) & (t_s < start + 86_400))
    if not table.num_rows:
        return table
    first = ~table.column("order_id").to_pandas().duplicated().to_numpy()
    return table.filter(pa.array(first)) if not first.all() else table


def decision_counts(table: pa.Table) -> dict[str, int]:
    """Orders per decision in a log table."""
    counts = pc.value_counts(table.column("decision")).to_pylist() if table.num_rows else []
    return {c["values"]: int(c["counts"]) for c in counts}
