"""What the online store holds, without Redis: the offline snapshot it is loaded from, encoded
per-entity states, and how the service's own writes are carried into a freshly loaded snapshot.

The loader (`fraud_assets.assets.online_store`) and the scoring service do the Redis side; the
key layout is `fraud_core.online_keys`.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from fraud_core.features.kernel import NO_LABEL
from fraud_core.features.offline import number_columns
from fraud_core.features.online import OrderEvent, append_order
from fraud_core.features.pipeline import day_end_s, state_file
from fraud_core.features.spec import DEFAULT_SPEC, FeatureSpec
from fraud_core.features.state import CODEC_VERSION, EntityState, states_from_frame
from fraud_core.storage import DataLayout, read_parquet


@dataclass(frozen=True)
class Snapshot:
    """A complete end-of-day state snapshot of every entity kind."""

    day: date
    n_buckets: dict[str, int]  # per kind

    @property
    def end_s(self) -> int:
        """Epoch seconds the snapshot was taken at (end of its day)."""
        return day_end_s(self.day)

    def files(self, layout: DataLayout, kind: str) -> list[Path]:
        return [state_file(layout, kind, self.day, b) for b in range(self.n_buckets[kind])]


def _complete_days(layout: DataLayout, kind: str) -> dict[date, int]:
    days: dict[date, int] = {}
    for day, marker in layout.entity_state_markers(kind).items():
        try:
            days[day] = int(json.loads(marker.read_text())["n_buckets"])
        except (ValueError, KeyError, OSError):
            continue
    return days


def newest_snapshot(layout: DataLayout, spec: FeatureSpec = DEFAULT_SPEC) -> Snapshot | None:
    """The newest day with a complete snapshot of every kind (each kind's `_SNAPSHOT.json`
    marker names its bucket count), or None."""
    per_kind = {e.kind: _complete_days(layout, e.kind) for e in spec.entities}
    common = set.intersection(*(set(days) for days in per_kind.values()))
    if not common:
        return None
    day = max(common)
    return Snapshot(day, {kind: days[day] for kind, days in per_kind.items()})


# -- vectorised state encoding ------------------------------------------------------------------
# The loader writes hundreds of thousands of states a second, so it does not build one
# `EntityState` per entity: Arrow's string kernels assemble the msgpack bytes of every state of a
# state table at once. The bytes are valid msgpack of the payload `fraud_core.features.state`
# writes (ints as int64, strings as str16, arrays as array32), so `decode_state` reads them.

_INT64 = 0xD3
_STR16 = 0xDA
_ARRAY32 = 0xDD
_MAX_STR16 = 0xFFFF


def _fixed(rows: np.ndarray) -> pa.Array:
    """A (n, k) uint8 matrix as n binary values of k bytes."""
    rows = np.ascontiguousarray(rows, dtype=np.uint8)
    n, k = rows.shape
    return pa.FixedSizeBinaryArray.from_buffers(
        pa.binary(k), n, [None, pa.py_buffer(rows.tobytes())]
    ).cast(pa.binary())


def _ints(values: np.ndarray) -> pa.Array:
    out = np.empty((len(values), 9), dtype=np.uint8)
    out[:, 0] = _INT64
    out[:, 1:] = np.asarray(values, dtype=">i8").view(np.uint8).reshape(-1, 8)
    return _fixed(out)


def _strs(values: pa.ChunkedArray) -> pa.Array:
    values = values.combine_chunks().cast(pa.binary())
    if values.null_count:
        raise ValueError("empty values in an entity-state column")
    lengths = pc.binary_length(values).to_numpy(zero_copy_only=False)
    if len(lengths) and lengths.max() > _MAX_STR16:
        raise ValueError("an entity-state value is longer than 65,535 bytes")
    head = np.empty((len(values), 3), dtype=np.uint8)
    head[:, 0] = _STR16
    head[:, 1] = lengths >> 8
    head[:, 2] = lengths & 0xFF
    return pc.binary_join_element_wise(_fixed(head), values, b"")


def _str16(text: str) -> bytes:
    raw = text.encode()
    return bytes([_STR16, len(raw) >> 8, len(raw) & 0xFF]) + raw


@dataclass(frozen=True)
class EncodedStates:
    """The entities of a state table (first-appearance order) and their encoded states."""

    entities: pa.Array  # string
    blobs: pa.Array  # binary, same order

    def __len__(self) -> int:
        return len(self.entities)


def encode_states(table: pa.Table, kind: str, spec: FeatureSpec = DEFAULT_SPEC) -> EncodedStates:
    """The state of each entity of a kind's state table (offline form: one row per retained
    event, see `offline.state_columns`; events in their order), encoded in a few Arrow calls."""
    counterparts = spec.entity(kind).counterparts
    numbers = number_columns(spec)
    if table.num_rows == 0:
        return EncodedStates(pa.array([], pa.string()), pa.array([], pa.binary()))
    encoded = pc.dictionary_encode(table.column("entity")).combine_chunks()
    codes = encoded.indices.to_numpy()
    uniques = encoded.dictionary  # in order of first appearance
    order = np.argsort(codes, kind="stable")  # keeps each entity's events in their order
    counts = np.bincount(codes, minlength=len(uniques))
    columns = ["t_s", "cents", *counterparts, "order_id", "label_s", *numbers]
    rows = table.select(columns).take(pa.array(order))
    offsets = pa.array(np.concatenate(([0], np.cumsum(counts))).astype(np.int32))

    def per_entity(encoded_rows: pa.Array) -> pa.Array:
        return pc.binary_join(pa.ListArray.from_arrays(offsets, encoded_rows), b"")

    def header(prefix: bytes = b"") -> pa.Array:
        out = np.empty((len(counts), len(prefix) + 5), dtype=np.uint8)
        out[:, : len(prefix)] = np.frombuffer(prefix, dtype=np.uint8)
        out[:, len(prefix)] = _ARRAY32
        out[:, len(prefix) + 1 :] = counts.astype(">u4").view(np.uint8).reshape(-1, 4)
        return _fixed(out)

    label = rows.column("label_s").to_numpy()

    def column_map(names: list[str] | tuple[str, ...], encode) -> list[pa.Array]:
        """A msgpack map of each named column's values (fixmap: at most 15 names)."""
        if len(names) > 15:
            raise ValueError("an entity state keeps at most 15 counterparts and 15 numbers")
        if not names:
            return [_fixed(np.full((len(counts), 1), 0x80))]
        out = []
        for i, c in enumerate(names):
            map_head = bytes([0x80 | len(names)]) if i == 0 else b""
            out += [header(map_head + _str16(c)), per_entity(encode(rows.column(c)))]
        return out

    def ints(column: pa.ChunkedArray) -> pa.Array:
        return _ints(column.to_numpy())

    # [version, t_s, cents, {cp: values}, ids, labels, {number: values}]
    segments = [
        header(bytes([0x97, CODEC_VERSION])),
        per_entity(_ints(rows.column("t_s").to_numpy())),
        header(),
        per_entity(_ints(rows.column("cents").to_numpy())),
        *column_map(counterparts, _strs),
        header(),
        per_entity(_strs(rows.column("order_id"))),
        header(),
        per_entity(_ints(np.where(label == NO_LABEL, -1, label))),  # the codec's "no label"
        *column_map(numbers, ints),
    ]
    blobs = pc.binary_join_element_wise(*segments, b"")
    return EncodedStates(uniques.cast(pa.string()), blobs)


@dataclass(frozen=True)
class EncodedBucket:
    """One state file as Redis values, plus the (order id, customer id) pairs of the order index
    when the kind is the primary entity, "the customer" (its orders from `index_since_s` on)."""

    kind: str
    states: EncodedStates
    table: pa.Table
    index_orders: pa.ChunkedArray  # order id -> customer id pairs (primary kind only)
    index_customers: pa.ChunkedArray
    counterparts: tuple[str, ...] = ()
    numbers: tuple[str, ...] = ()

    def states_of(self, entities: list[str]) -> dict[str, EntityState]:
        """Some entities' states built the ordinary way from the file (for checks)."""
        mask = pc.is_in(self.table.column("entity"), value_set=pa.array(entities, pa.string()))
        frame = self.table.filter(mask).to_pandas()
        return states_from_frame(frame, self.counterparts, self.numbers)


def encode_bucket(
    path: Path, kind: str, spec: FeatureSpec = DEFAULT_SPEC, index_since_s: int | None = None
) -> EncodedBucket:
    """The state file at `path` encoded; the order index gets the orders at or after
    `index_since_s` (every order when None)."""
    table = read_parquet(path)
    states = encode_states(table, kind, spec)
    if kind == spec.primary:
        indexed = table.select(["order_id", "entity", "t_s"])
        if index_since_s is not None:
            indexed = indexed.filter(pc.greater_equal(indexed.column("t_s"), index_since_s))
        orders, customers = indexed.column("order_id"), indexed.column("entity")
    else:
        orders = customers = pa.chunked_array([], pa.string())
    return EncodedBucket(
        kind,
        states,
        table,
        orders,
        customers,
        spec.entity(kind).counterparts,
        tuple(number_columns(spec)),
    )


def snapshot_buckets(
    layout: DataLayout,
    snapshot: Snapshot,
    spec: FeatureSpec = DEFAULT_SPEC,
    index_since_s: int | None = None,
) -> Iterator[EncodedBucket]:
    for e in spec.entities:
        for path in snapshot.files(layout, e.kind):
            yield encode_bucket(path, e.kind, spec, index_since_s)


def carry_over(
    loaded: EntityState | None,
    served: EntityState,
    since_s: int,
    kind: str,
    spec: FeatureSpec = DEFAULT_SPEC,
) -> EntityState | None:
    """`loaded` (the entity in a fresh snapshot taken at `since_s`) plus what the service added
    to `served` (the same entity in the namespace it served from) that the snapshot cannot know:
    orders at or after `since_s` that the snapshot lacks, put in time order among the loaded ones,
    and fraud labels the service received for orders both hold (the earliest label time wins).
    None when nothing changes. Repeating it changes nothing more, so a loader may run it twice."""
    counterparts = spec.entity(kind).counterparts
    numbers = number_columns(spec)
    loaded = loaded or EntityState(
        counterparts={c: [] for c in counterparts}, numbers={v: [] for v in numbers}
    )
    rows = [
        (loaded.t_s[i], loaded.cents[i], {c: loaded.counterparts[c][i] for c in counterparts},
         loaded.order_ids[i], loaded.label_s[i], {v: loaded.numbers[v][i] for v in numbers})
        for i in range(len(loaded))
    ]  # fmt: skip
    known = {oid: i for i, oid in enumerate(loaded.order_ids)}
    changed = False
    for i, order_id in enumerate(served.order_ids):
        label = served.label_s[i]
        if order_id in known:
            j = known[order_id]
            if label != NO_LABEL and label < rows[j][4]:
                rows[j] = (*rows[j][:4], label, rows[j][5])
                changed = True
        elif served.t_s[i] >= since_s:  # older ones: the snapshot's days cover them
            ids = {c: served.counterparts[c][i] for c in counterparts}
            values = {v: served.numbers[v][i] for v in numbers}
            rows.append((served.t_s[i], served.cents[i], ids, order_id, label, values))
            changed = True
    if not changed:
        return None
    rows.sort(key=lambda row: row[0])  # stable: accepted order kept among equal times
    *head, last = rows
    state = EntityState(
        t_s=[r[0] for r in head],
        cents=[r[1] for r in head],
        counterparts={c: [r[2][c] for r in head] for c in counterparts},
        order_ids=[r[3] for r in head],
        label_s=[r[4] for r in head],
        numbers={v: [r[5][v] for r in head] for v in numbers},
    )
    # appending the newest event applies the retention rule to the whole history
    event = OrderEvent(last[3], last[0], last[1], last[2], last[4], last[5])
    return append_order(state, event, kind, spec)
