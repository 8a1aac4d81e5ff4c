"""The decision log: one entry per order the scoring service committed, what it saw and what it
decided, so that production can be replayed, compared with the offline features and judged
once labels arrive (issue 16).

The service writes an entry in the same atomic step that stores the order's answer and entity
states (`online_keys.FENCED_COMMIT_SCRIPT` adds it to the `{p}decisions` stream): a stored
answer has exactly one entry, a commit that did not store has none, a replay adds none. The
entry is msgpack of plain values (no pickle) with a version first; the feature vector is packed
as little-endian float64 bytes (a few hundred ns to write, exact to the bit). Version 2 adds one
last element holding what the policy made of the order (its version, the rules it matched, the
segment, list hits, new entity kinds, the numeric attributes sent) and a shadow model's score;
version 1 entries, written before, are still read, with those extras left at their defaults.

A drain copies the stream's oldest entries as they are into one segment file (`segment_batch`:
the entries with their order id and time beside them; named by the first entry's id, so a drain
that died before trimming the stream rewrites the same file with a superset) and only then trims
them from the stream. `scored_orders` decodes each order day's entries (`log_table`), one per
order id.
"""

from __future__ import annotations

import gc
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from itertools import chain
from pathlib import Path
from typing import Any

import msgpack
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds
from upath import UPath

from fraud_core.online_keys import stream_id_parts
from fraud_core.storage import parquet_dataset

LOG_VERSION = 2
# (version, elements) of the entries read: version 1 lacks the extras, version 2 has them last
_SHAPES = ((1, 14), (LOG_VERSION, 15))  # `_check` tests the same, spelled out for speed
_EXTRAS = 8  # elements of version 2's extras list
# a version 1 entry's extras, as `Decision`'s defaults (shared: read, never changed)
_V1_EXTRAS = ("", (), "", (), (), {}, "", None)
LOG_FIELD = b"d"  # the stream entry's one field
# when `decision_log_sensor` drains: at this many entries, or once the oldest waited this long
DRAIN_AT_ENV = "FRAUD_DRAIN_AT_ENTRIES"
DRAIN_AFTER_ENV = "FRAUD_DRAIN_AFTER_S"


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
    # what the policy made of the order (version 2; entries written before keep the defaults)
    policy_version: str = ""  # the policy that decided ("" for entries written before policies)
    rules: tuple[str, ...] | list[str] = ()  # the policy rules the order matched, in policy order
    segment: str = ""  # the policy segment whose thresholds applied ("" none)
    list_hits: list[str] = field(default_factory=list)  # "list:kind", e.g. "block:email"
    new_kinds: list[str] = field(default_factory=list)  # entity kinds first seen with this order
    numbers: dict[str, float] = field(default_factory=dict)  # numeric attributes as sent
    shadow_version: str = ""  # a challenger model scored beside the champion ("" none)
    shadow_score: float | None = None  # its calibrated score, never used for the decision


def encode_decision(d: Decision) -> bytes:
    features = np.ascontiguousarray(d.features, dtype="<f8").tobytes()
    payload = [
        LOG_VERSION, d.order_id, d.t_s, d.received_ms, d.cents, d.ids, d.namespace,
        d.model_version, features, d.score, d.decision, [list(r) for r in d.reasons],
        d.latency_us, d.key_id,
        # float(): numpy scalars other than float64 are no msgpack type, and the columns are float64
        [d.policy_version, list(d.rules), d.segment, list(d.list_hits), list(d.new_kinds),
         {k: float(v) for k, v in d.numbers.items()}, d.shadow_version,
         None if d.shadow_score is None else float(d.shadow_score)],
    ]  # fmt: skip
    return msgpack.packb(payload, use_bin_type=True)


def _check(row: Any) -> None:
    """Refuse a decoded entry of neither version 1's shape nor version 2's (whose last element
    is the list of its `_EXTRAS` extras). Once per entry in `log_table`: kept to plain tests."""
    n = len(row) if type(row) is list else 0
    if n == 15:
        ok = row[0] == LOG_VERSION and type(row[14]) is list and len(row[14]) == _EXTRAS
    else:
        ok = n == 14 and row[0] == 1
    if not ok and not n:
        raise ValueError("not a decision-log entry: not a non-empty array")
    if not ok:
        raise ValueError(f"decision-log entry version {row[0]} of {n} elements is not supported")


def decode_decision(blob: bytes) -> Decision:
    try:
        row = msgpack.unpackb(blob, raw=False)
    except (ValueError, msgpack.ExtraData, msgpack.FormatError, TypeError) as exc:
        raise ValueError(f"not a decision-log entry: {exc}") from exc
    _check(row)
    (_, order_id, t_s, received_ms, cents, ids, namespace, model_version, features, score,
     decision, reasons, latency_us, key) = row[:14]  # fmt: skip
    (policy_version, rules, segment, list_hits, new_kinds, numbers, shadow_version,
     shadow_score) = row[14] if len(row) == 15 else _V1_EXTRAS  # fmt: skip
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
        policy_version=policy_version,
        rules=tuple(rules),  # a tuple, as the default is
        segment=segment,
        # copies: a version 1 entry's defaults are shared
        list_hits=list(list_hits),
        new_kinds=list(new_kinds),
        numbers=dict(numbers),
        shadow_version=shadow_version,
        shadow_score=shadow_score,
    )


def peek_entry(blob: bytes) -> tuple[str, int, str]:
    """An entry's order id, order time (epoch s) and decision, checking its version."""
    try:
        row = msgpack.unpackb(blob, raw=False)
    except (ValueError, msgpack.ExtraData, msgpack.FormatError, TypeError) as exc:
        raise ValueError(f"not a decision-log entry: {exc}") from exc
    _check(row)
    return row[1], row[2], row[10]


def log_table(entries: Sequence[tuple[str, bytes]]) -> pa.Table:
    """(stream id, encoded entry) pairs as one table: a row per entry, entity keys and attribute
    values as columns of their own, the feature vector as a list column. Decodes in bulk (a few
    microseconds an entry: the drain's pace), checking each entry's version. Version 1 and 2
    entries may be mixed; version 1 rows get the defaults in the columns version 2 added
    (`num:<name>`: one per numeric attribute sent in any row, null where not sent)."""
    rows = []
    # Millions of small containers at once: the cyclic collector would scan them again and again
    # (it tripled the cost); none of them can form a cycle.
    collecting = gc.isenabled()
    gc.disable()
    try:
        for _, blob in entries:
            try:
                row = msgpack.unpackb(blob, raw=False)
            except (ValueError, msgpack.ExtraData, msgpack.FormatError, TypeError) as exc:
                raise ValueError(f"not a decision-log entry: {exc}") from exc
            _check(row)
            if len(row) == 14:
                row.append(_V1_EXTRAS)  # one shape for all rows, so they transpose at once
            rows.append(row)
        return _columns(entries, rows)
    finally:
        if collecting:
            gc.enable()


def _columns(entries: Sequence[tuple[str, bytes]], rows: list[list]) -> pa.Table:
    cols = list(zip(*rows, strict=True)) if rows else [()] * 15
    (_, order_id, t_s, received_ms, cents, ids, namespace, model_version, features, score,
     decision, reasons, latency_us, key, extras) = cols  # fmt: skip
    (policy_version, rules, segment, list_hits, new_kinds, numbers, shadow_version,
     shadow_score) = zip(*extras, strict=True) if rows else [()] * _EXTRAS  # fmt: skip
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
        "reasons": _string_lists([[r[0] for r in rs] for rs in reasons]),
        "latency_us": pa.array(latency_us, pa.int64()),
        "key_id": pa.array(key, pa.string()),
        "policy_version": pa.array(policy_version, pa.string()),
        "rules": _string_lists(rules),
        "segment": pa.array(segment, pa.string()),
        "list_hits": _string_lists(list_hits),
        "new_kinds": _string_lists(new_kinds),
        "shadow_version": pa.array(shadow_version, pa.string()),
        "shadow_score": pa.array(shadow_score, pa.float64()),
    }
    for name in dict.fromkeys(chain.from_iterable(numbers)):
        columns[f"num:{name}"] = pa.array([d.get(name) for d in numbers], pa.float64())
    return pa.table(columns)


def _string_lists(lists: Sequence[Sequence[str]]) -> pa.Array:
    """A list<string> array built from one flat array and offsets (nested Python lists cost
    several times more to convert)."""
    offsets = np.zeros(len(lists) + 1, dtype=np.int32)
    np.cumsum(np.fromiter(map(len, lists), np.int32, len(lists)), out=offsets[1:])
    flat = pa.array(list(chain.from_iterable(lists)), pa.string())
    return pa.ListArray.from_arrays(pa.array(offsets), flat)


def next_id(entry_id: str) -> str:
    """The smallest stream id after `entry_id` (`ms-seq`): what XTRIM MINID keeps from."""
    ms, seq = stream_id_parts(entry_id)
    return f"{ms}-{seq + 1}"


def order_days(table: pa.Table) -> list[date]:
    """The order days (UTC) of a log table's rows, oldest first."""
    if not table.num_rows:
        return []
    days = np.unique(table.column("t_s").to_numpy() // 86_400)
    return [date(1970, 1, 1) + timedelta(days=int(d)) for d in days]


SEGMENT_SCHEMA = pa.schema(
    [
        ("log_id", pa.string()),
        ("order_id", pa.string()),
        ("t_s", pa.int64()),
        ("entry", pa.binary()),
    ]
)
_STR_FIX, _STR8 = 0xA0, 0xD9  # msgpack: fixstr (length in the tag), str8 (length next)
# msgpack integer tags and their widths (big-endian), as t_s is packed
_INT_TAGS = {0xCE: (4, ">u4"), 0xD2: (4, ">i4"), 0xCF: (8, ">u8"), 0xD3: (8, ">i8")}


def _binary(values: Sequence[bytes], kind: pa.DataType) -> tuple[pa.Array, np.ndarray, bytes]:
    """`values` as one Arrow binary (or string) array built from a joined buffer and offsets:
    no per-value copy in Python. Also returns the offsets and the buffer."""
    n = len(values)
    offsets = np.zeros(n + 1, dtype=np.int32)
    np.cumsum(np.fromiter(map(len, values), np.int32, n), out=offsets[1:])
    data = b"".join(values)
    array = pa.Array.from_buffers(kind, n, [None, pa.py_buffer(offsets), pa.py_buffer(data)])
    return array, offsets, data


def _gather(buf: np.ndarray, starts: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """The bytes buf[starts[i] : starts[i] + lengths[i]] of every i, one after another."""
    total = int(lengths.sum())
    ends = np.cumsum(lengths)
    index = np.arange(total, dtype=np.int64) + np.repeat(starts - (ends - lengths), lengths)
    return buf[index]


def _heads(buf: np.ndarray, starts: np.ndarray) -> tuple[pa.Array, np.ndarray] | None:
    """Order ids and times of entries starting at `starts` in `buf`, read from their msgpack
    heads with array operations; None when any head has another shape (the caller then reads
    them one by one, which also says what is wrong). Both versions keep the order id and time
    in the same places; only the array header differs (14 elements or 15)."""
    if not len(starts):
        return pa.array([], pa.string()), np.empty(0, dtype=np.int64)
    if len(buf) < int(starts.max()) + 16:
        return None
    tag = buf[starts + 2]
    fix = (tag & 0xE0) == _STR_FIX
    str8 = tag == _STR8
    header, version = buf[starts], buf[starts + 1]  # fixarray of 14 is 0x9E, of 15 0x9F
    known_shape = ((header == 0x9E) & (version == 1)) | ((header == 0x9F) & (version == 2))
    ok = known_shape & (fix | str8)
    lengths = np.where(fix, tag & 0x1F, buf[starts + 3]).astype(np.int64)
    text = starts + np.where(fix, 3, 4)
    at = text + lengths  # the time's tag
    if not ok.all() or int(at.max()) + 9 > len(buf):
        return None
    int_tag = buf[at]
    times = np.empty(len(starts), dtype=np.int64)
    known = np.zeros(len(starts), dtype=bool)
    for code, (width, dtype) in _INT_TAGS.items():
        rows = int_tag == code
        if rows.any():
            raw = buf[at[rows, None] + 1 + np.arange(width)]
            times[rows] = np.ascontiguousarray(raw).view(dtype).ravel().astype(np.int64)
            known |= rows
    if not known.all():
        return None
    ids = _gather(buf, text, lengths)
    offsets = np.zeros(len(starts) + 1, dtype=np.int32)
    np.cumsum(lengths, out=offsets[1:])
    order_ids = pa.Array.from_buffers(
        pa.string(), len(starts), [None, pa.py_buffer(offsets), pa.py_buffer(ids.tobytes())]
    )
    order_ids.validate(full=True)  # UTF-8, as a decoded string would be
    return order_ids, times


def _heads_one_by_one(blobs: Sequence[bytes]) -> tuple[pa.Array, np.ndarray]:
    order_ids, times = [], []
    unpacker = msgpack.Unpacker(raw=False, max_buffer_size=0)
    for blob in blobs:
        unpacker.feed(blob)
        try:
            n = unpacker.read_array_header()
            if (unpacker.unpack(), n) not in _SHAPES:
                raise ValueError("a decision-log entry of another version or length")
            order_ids.append(unpacker.unpack())
            times.append(unpacker.unpack())
            for _ in range(n - 3):  # the rest of the entry, unread
                unpacker.skip()
        except (ValueError, msgpack.ExtraData, msgpack.FormatError, TypeError) as exc:
            raise ValueError(f"not a decision-log entry: {exc}") from exc
    return pa.array(order_ids, pa.string()), np.array(times, dtype=np.int64)


def segment_batch(ids: Sequence[bytes | str], blobs: Sequence[bytes]) -> pa.RecordBatch:
    """Stream entries (their ids, their encoded entries) as a segment's rows: the entries as
    they are, with their order id and order time read beside them (the head of each entry
    only: the drain's pace)."""
    entries, offsets, data = _binary(blobs, pa.binary())
    heads = _heads(np.frombuffer(data, dtype=np.uint8), offsets[:-1].astype(np.int64))
    order_ids, times = heads if heads is not None else _heads_one_by_one(blobs)
    raw_ids = [i.encode() if isinstance(i, str) else i for i in ids]
    log_ids, _, _ = _binary(raw_ids, pa.string())
    return pa.RecordBatch.from_arrays(
        [log_ids, order_ids, pa.array(times, pa.int64()), entries], schema=SEGMENT_SCHEMA
    )


def scored_orders_of_day(segments: Sequence[Path] | Sequence[UPath], day: date) -> pa.Table | None:
    """The decoded decision-log rows (`log_table`) of the orders of `day` (by the order time the
    service used), one per order id (the first logged: an order scored again after its stored
    answer expired keeps its first decision), in log order. None when no segment exists."""
    if not segments:
        return None
    start = int(datetime(day.year, day.month, day.day, tzinfo=UTC).timestamp())
    t_s = ds.field("t_s")
    data = parquet_dataset(list(segments))
    table = data.to_table(filter=(t_s >= start) & (t_s < start + 86_400))
    if table.num_rows:
        first = ~table.column("order_id").to_pandas().duplicated().to_numpy()
        if not first.all():
            table = table.filter(pa.array(first))
    logged = zip(table.column("log_id").to_pylist(), table.column("entry").to_pylist(), strict=True)
    return log_table(list(logged))


def decision_report(table: pa.Table, top: int = 5) -> dict[str, object]:
    """A day's decisions as a fraud team reads them: approvals, reviews and declines, the money
    the declines held back (their amount: what fraud among them could have cost) and under
    review, and the reasons most often behind a review or a decline."""
    counts = decision_counts(table)
    decision = table.column("decision")
    cents = table.column("cents")

    def held(which: str) -> float:
        chosen = pc.filter(cents, pc.equal(decision, which))
        return round((pc.sum(chosen).as_py() or 0) / 100, 2)

    flagged = table.filter(pc.is_in(decision, pa.array(["review", "decline"])))
    reasons = pc.list_flatten(flagged.column("reasons")) if flagged.num_rows else pa.array([])
    ranked = pc.value_counts(reasons).to_pylist() if len(reasons) else []
    ranked.sort(key=lambda c: (-c["counts"], c["values"]))
    return {
        "orders": table.num_rows,
        "approve": counts.get("approve", 0),
        "review": counts.get("review", 0),
        "decline": counts.get("decline", 0),
        "declined_amount": held("decline"),
        "reviewed_amount": held("review"),
        "top_reasons": {c["values"]: int(c["counts"]) for c in ranked[:top]},
    }


def decision_counts(table: pa.Table) -> dict[str, int]:
    """Orders per decision in a log table."""
    counts = pc.value_counts(table.column("decision")).to_pylist() if table.num_rows else []
    return {c["values"]: int(c["counts"]) for c in counts}
