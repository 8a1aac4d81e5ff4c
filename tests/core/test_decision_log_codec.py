"""The drain's segment rows: order ids and times read from the entries' msgpack heads with array
operations equal what msgpack itself reads, for every shape a head can take; an entry of another
shape is refused with the reason."""

from __future__ import annotations

import msgpack
import numpy as np
import pytest

from fraud_core.decision_log import (
    Decision,
    _heads_one_by_one,
    encode_decision,
    segment_batch,
)


def _entry(order_id: str, t_s: int) -> bytes:
    return encode_decision(
        Decision(
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
        )
    )


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
    other_version = msgpack.packb([2, "O1", 1, *range(11)])
    with pytest.raises(ValueError, match="another version"):
        segment_batch(["1-0", "1-1"], [good, other_version])
    with pytest.raises(ValueError, match="not a decision-log entry"):
        segment_batch(["1-0"], [b"\x9e\x01\xc1"])
