"""The decision-log codec: a version 2 entry (with the policy's outcome and a shadow score)
decodes to what was written, a version 1 entry as an older service wrote it still decodes (with
the defaults), alone or mixed with version 2 in one table or segment. The drain's segment rows:
order ids and times read from the entries' msgpack heads with array operations equal what
msgpack itself reads, for every shape a head can take; an entry of another shape is refused with
the reason."""

from __future__ import annotations

from dataclasses import fields
from datetime import UTC, datetime
from pathlib import Path

import msgpack
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from fraud_core import decision_log
from fraud_core.decision_log import (
    SEGMENT_SCHEMA,
    Decision,
    _binary,
    _heads,
    _heads_one_by_one,
    decision_report,
    decode_decision,
    encode_decision,
    log_table,
    scored_orders_of_day,
    segment_batch,
)
from fraud_core.storage import DataLayout, write_parquet

T0 = 1_790_000_000  # 2026-09-21 (UTC), mid-day
# every field version 2 added, set to something other than its default
EXTRAS = {
    "policy_version": "policy-7",
    "rules": ("velocity_high", "new_email_big_basket"),
    "segment": "digital_goods",
    "list_hits": ["block:email", "allow:customer_id"],
    "new_kinds": ["email", "ip_addr"],
    "numbers": {"items": 3.0, "weight_kg": 0.1, "tiny": 5e-324},
    "shadow_version": "20260920.challenger",
    "shadow_score": 0.1 + 0.2,  # not a short decimal: exact to the bit or not at all
}


def _decision(order_id: str, t_s: int, **extras) -> Decision:
    return Decision(
        order_id=order_id,
        t_s=t_s,
        received_ms=t_s * 1000,
        cents=1234,
        ids={"customer_id": "C1"},
        namespace="20260101.x.y",
        model_version="abc",
        features=np.arange(5, dtype=float),
        score=0.5,
        decision="approve",
        **extras,
    )


def _entry(order_id: str, t_s: int, **extras) -> bytes:
    return encode_decision(_decision(order_id, t_s, **extras))


def _v1_entry(order_id: str, t_s: int, decision: str = "decline") -> bytes:
    """An entry as a version 1 service wrote it: 14 elements, no extras."""
    features = np.array([0.1, -2.5, 1e300], dtype="<f8").tobytes()
    row = [
        1, order_id, t_s, t_s * 1000 + 7, 990, {"customer_id": "C9", "email": "e9"},
        "20260101.x.y", "old-model", features, 0.875, decision, [["amount", 99.0, 0.5]],
        42, "k1",
    ]  # fmt: skip
    return msgpack.packb(row, use_bin_type=True)


def _fast_heads(blobs: list[bytes]):
    """The array path of `segment_batch` alone (None when it would fall back)."""
    _, offsets, data = _binary(blobs, pa.binary())
    return _heads(np.frombuffer(data, dtype=np.uint8), offsets[:-1].astype(np.int64))


def _fields(d: Decision) -> dict:
    return {f.name: getattr(d, f.name) for f in fields(d) if f.name != "features"}


def test_a_version_2_entry_decodes_to_what_was_written() -> None:
    written = _decision(
        "O1", T0, reasons=[("amount", 99.5, 0.25), ("email", None, -0.5)], latency_us=321,
        key_id="k2", **EXTRAS,
    )  # fmt: skip
    blob = encode_decision(written)
    assert blob[:2] == bytes([0x9F, 2])  # 15 elements, version 2 first
    read = decode_decision(blob)
    assert _fields(read) == _fields(written)
    assert read.features.tobytes() == written.features.tobytes()
    assert read.shadow_score == 0.1 + 0.2 and read.numbers["tiny"] == 5e-324
    # numpy scalars are written as plain floats
    scalars = _decision("O2", T0, numbers={"items": np.float32(2.5)}, shadow_score=np.float32(1))
    assert decode_decision(encode_decision(scalars)).numbers == {"items": 2.5}


def test_a_version_1_entry_decodes_with_the_defaults() -> None:
    blob = _v1_entry("O-old", T0)
    assert blob[:2] == bytes([0x9E, 1])  # 14 elements, version 1 first
    read = decode_decision(blob)
    assert (read.order_id, read.t_s, read.received_ms, read.cents) == (
        "O-old",
        T0,
        T0 * 1000 + 7,
        990,
    )
    assert read.ids == {"customer_id": "C9", "email": "e9"} and read.model_version == "old-model"
    assert read.features.tolist() == [0.1, -2.5, 1e300]
    assert (read.score, read.decision, read.latency_us, read.key_id) == (0.875, "decline", 42, "k1")
    assert read.reasons == [("amount", 99.0, 0.5)]
    defaults = _fields(_decision("x", 0))
    assert {k: v for k, v in _fields(read).items() if k in EXTRAS} == {
        k: v for k, v in defaults.items() if k in EXTRAS
    }
    assert read.rules == () and read.numbers == {} and read.shadow_score is None
    assert read.list_hits is not decode_decision(blob).list_hits  # no shared default


def test_version_1_and_2_mixed_in_a_table_and_a_segment(tmp_path: Path, monkeypatch) -> None:
    blobs = [
        _v1_entry("A", T0),
        _entry("B", T0 + 1, **EXTRAS),
        _v1_entry("C", T0 + 2, decision="review"),
        _entry("D", T0 + 3, policy_version="policy-7", numbers={"items": 1.0, "coupons": 2.0}),
        _entry("E", T0 + 4),  # version 2 with every extra at its default
    ]
    log_ids = [f"5-{i}" for i in range(len(blobs))]

    table = log_table(list(zip(log_ids, blobs, strict=True)))
    assert table.column_names == [
        "log_id", "order_id", "t_s", "received_ms", "cents", "customer_id", "email",
        "namespace", "model_version", "features", "score", "decision", "reasons", "latency_us",
        "key_id", "policy_version", "rules", "segment", "list_hits", "new_kinds",
        "shadow_version", "shadow_score", "num:items", "num:weight_kg", "num:tiny", "num:coupons",
    ]  # fmt: skip
    assert table.schema.field("rules").type == pa.list_(pa.string())
    assert table.schema.field("shadow_score").type == pa.float64()
    assert table.schema.field("num:items").type == pa.float64()
    assert table.column("order_id").to_pylist() == ["A", "B", "C", "D", "E"]
    assert table.column("t_s").to_pylist() == [T0 + i for i in range(5)]
    assert table.column("log_id").to_pylist() == log_ids
    column = table.column
    assert column("policy_version").to_pylist() == ["", "policy-7", "", "policy-7", ""]
    assert column("rules").to_pylist() == [[], list(EXTRAS["rules"]), [], [], []]
    assert column("segment").to_pylist() == ["", "digital_goods", "", "", ""]
    assert column("list_hits").to_pylist() == [[], EXTRAS["list_hits"], [], [], []]
    assert column("new_kinds").to_pylist() == [[], EXTRAS["new_kinds"], [], [], []]
    assert column("shadow_version").to_pylist() == ["", EXTRAS["shadow_version"], "", "", ""]
    assert column("shadow_score").to_pylist() == [None, 0.1 + 0.2, None, None, None]
    assert column("num:items").to_pylist() == [None, 3.0, None, 1.0, None]
    assert column("num:weight_kg").to_pylist() == [None, 0.1, None, None, None]
    assert column("num:coupons").to_pylist() == [None, None, None, 2.0, None]
    # the old columns: what each entry decodes to, one by one
    for row, blob in zip(table.to_pylist(), blobs, strict=True):
        d = decode_decision(blob)
        assert row["features"] == d.features.tolist()
        assert (row["score"], row["decision"], row["cents"]) == (d.score, d.decision, d.cents)
        assert row["reasons"] == [r[0] for r in d.reasons] and row["email"] == d.ids.get("email")
    assert decision_report(table)["orders"] == 5  # unchanged by the new columns

    # the drain reads the heads with array operations, not one by one, on the mixed batch
    def one_by_one(_blobs):
        raise AssertionError("the fast path fell back")

    monkeypatch.setattr(decision_log, "_heads_one_by_one", one_by_one)
    batch = segment_batch(log_ids, blobs)
    assert batch.schema == SEGMENT_SCHEMA
    assert batch.column("order_id").to_pylist() == ["A", "B", "C", "D", "E"]
    assert batch.column("t_s").to_pylist() == [T0 + i for i in range(5)]
    assert batch.column("entry").to_pylist() == blobs
    monkeypatch.undo()

    # and a segment of the mixed batch, read back by day, gives the same table
    segment = tmp_path / "segment=5-0.parquet"
    pq.write_table(pa.Table.from_batches([batch]), segment)
    day = datetime.fromtimestamp(T0, UTC).date()
    assert scored_orders_of_day([segment], day).equals(table)


def test_vectorized_heads_equal_msgpack_on_version_2_entries() -> None:
    blobs = [
        _entry("O1", T0, **EXTRAS),
        _entry("Y" * 32, 2**33, **EXTRAS),
        _entry("é-ünï", -(2**40)),  # int64
        _v1_entry("old", T0),
    ]
    fast = _fast_heads(blobs)
    assert fast is not None
    ids, times = _heads_one_by_one(blobs)
    assert fast[0].to_pylist() == ids.to_pylist() == ["O1", "Y" * 32, "é-ünï", "old"]
    assert fast[1].tolist() == times.tolist() == [T0, 2**33, -(2**40), T0]


def test_vectorized_heads_equal_msgpack_for_every_shape() -> None:
    cases = [
        ("O1", 1_790_000_000),  # fixstr, uint32
        ("X" * 31, 12),  # the longest fixstr; a small time
        ("Y" * 32, 2**33),  # str8; uint64
        ("é-ünï-código", -5),  # multi-byte UTF-8; a negative int
        ("Z" * 64, 2**40),
    ]
    blobs = [_entry(o, t) for o, t in cases]
    batch = segment_batch([f"1-{i}" for i in range(len(blobs))], blobs)
    assert batch.column("order_id").to_pylist() == [o for o, _ in cases]
    assert batch.column("t_s").to_pylist() == [t for _, t in cases]
    assert batch.column("entry").to_pylist() == blobs
    assert batch.column("log_id").to_pylist() == [f"1-{i}" for i in range(len(blobs))]
    ids, times = _heads_one_by_one(blobs)
    assert ids.to_pylist() == batch.column("order_id").to_pylist()
    assert times.tolist() == batch.column("t_s").to_pylist()
    assert segment_batch([], []).num_rows == 0


def test_an_entry_of_another_shape_is_refused() -> None:
    good = _entry("O1", 1)
    other_version = msgpack.packb([2, "O1", 1, *range(11)])  # version 2 with version 1's length
    with pytest.raises(ValueError, match="another version"):
        segment_batch(["1-0", "1-1"], [good, other_version])
    with pytest.raises(ValueError, match="not a decision-log entry"):
        segment_batch(["1-0"], [b"\x9e\x01\xc1"])


def _repacked(blob: bytes, edit) -> bytes:
    row = msgpack.unpackb(blob, raw=False)
    edit(row)
    return msgpack.packb(row, use_bin_type=True)


@pytest.mark.parametrize(
    ("what", "edit"),
    [
        ("version 3", lambda row: row.__setitem__(0, 3)),
        ("16 elements", lambda row: row.append("more")),
        ("version 1 with the extras", lambda row: row.__setitem__(0, 1)),
        ("version 2 without the extras", lambda row: row.pop()),
    ],
)
def test_an_entry_of_another_version_or_length_is_refused(what, edit) -> None:
    good = _entry("O1", T0, **EXTRAS)
    bad = _repacked(good, edit)
    with pytest.raises(ValueError, match="is not supported"):
        decode_decision(bad)
    with pytest.raises(ValueError, match="is not supported"):
        log_table([("1-0", good), ("1-1", bad)])
    assert _fast_heads([good, bad]) is None
    with pytest.raises(ValueError, match="another version"):
        segment_batch(["1-0", "1-1"], [good, bad])


def test_extras_of_another_length_are_refused() -> None:
    bad = _repacked(_entry("O1", T0), lambda row: row[14].append("more"))
    with pytest.raises(ValueError, match="version 2 of 15 elements is not supported"):
        decode_decision(bad)
    with pytest.raises(ValueError, match="is not supported"):
        log_table([("1-0", bad)])
    for not_an_entry in (7, []):
        with pytest.raises(ValueError, match="not a decision-log entry"):
            decode_decision(msgpack.packb(not_an_entry))
        with pytest.raises(ValueError, match="not a decision-log entry"):
            log_table([("1-0", msgpack.packb(not_an_entry))])


@pytest.fixture(params=["local", "s3"])
def data_layout(request, tmp_path) -> DataLayout:
    """A data folder: local or in an S3 bucket (the session's moto server)."""
    if request.param == "local":
        return DataLayout(tmp_path)
    return DataLayout.at(request.getfixturevalue("s3_root"))


def test_a_day_is_read_from_segments_in_a_folder_or_a_bucket(data_layout) -> None:
    """`scored_orders` reads a day's orders from the drained segments wherever the data folder
    is: Arrow was handed the objects' URLs as local file names and failed on a bucket."""
    day = datetime.fromtimestamp(T0, UTC).date()
    drained = {
        "1-0": [
            ("1-0", _entry("A", T0)),
            ("1-1", _entry("B", T0 + 1)),
            ("1-2", _entry("Z", T0 - 86_400)),
        ],
        "2-0": [("2-0", _entry("A", T0 + 5)), ("2-1", _entry("C", T0 + 2))],  # A again: once
    }
    for first_id, rows in drained.items():
        ids, blobs = zip(*rows, strict=True)
        batch = segment_batch(list(ids), list(blobs))
        write_parquet(pa.Table.from_batches([batch]), data_layout.decision_log_segment(first_id))

    table = scored_orders_of_day(data_layout.decision_log_segments(), day)

    assert table.column("order_id").to_pylist() == ["A", "B", "C"]
    assert table.column("t_s").to_pylist() == [T0, T0 + 1, T0 + 2]  # A's first logged entry
