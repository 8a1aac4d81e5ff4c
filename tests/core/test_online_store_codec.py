"""The online store's bulk encoding equals the state codec, and carrying the service's writes
into a fresh snapshot keeps time order, labels and the retention rule."""

from __future__ import annotations

import msgpack
import numpy as np
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fraud_core.contract import contract_from_text
from fraud_core.features.kernel import NO_LABEL
from fraud_core.features.offline import advance
from fraud_core.features.online import OrderEvent, append_order
from fraud_core.features.spec import DEFAULT_SPEC
from fraud_core.features.state import EntityState, decode_state, states_from_frame
from fraud_core.online_store import carry_over, encode_states

from .conftest import random_orders

DAY = 86_400


@settings(max_examples=25, deadline=None)
@given(n=st.integers(1, 400), seed=st.integers(0, 10_000), pool=st.integers(1, 30))
def test_bulk_encoding_decodes_to_the_offline_state(n, seed, pool) -> None:
    orders = random_orders(n, seed, span_s=60 * DAY, pool=pool)
    _, states = advance({}, orders, int(orders["order_date"].max().timestamp()) + 1)
    for kind, frame in states.items():
        encoded = encode_states(pa.Table.from_pandas(frame, preserve_index=False), kind)
        expected = states_from_frame(frame, DEFAULT_SPEC.entity(kind).counterparts)
        assert encoded.entities.to_pylist() == list(expected)
        assert [decode_state(b) for b in encoded.blobs.to_pylist()] == list(expected.values())


# one entity without counterparts (an empty map), one following a categorical attribute, both
# aggregating a numeric one: the codec's version-2 fields
_NUMERIC_CONTRACT = """
version: 1
name: numbers
source: {order_id: id, order_time: {column: ts}, amount: {column: total}}
entities:
  - {name: card, column: card_col, primary: true}
  - {name: shop, column: shop_col, counterparts: [card]}
attributes:
  - {name: items, type: numeric, aggregate: true, decimals: 1}
features: {history_n: 3, windows: [1h, 1d], distinct_windows: [1d], risk_windows: [1d],
           risk_delay: 1h}
"""


@settings(max_examples=10, deadline=None)
@given(n=st.integers(1, 200), seed=st.integers(0, 10_000), pool=st.integers(1, 10))
def test_bulk_encoding_keeps_numeric_attributes_and_empty_maps(n, seed, pool) -> None:
    spec = contract_from_text(_NUMERIC_CONTRACT).spec
    assert spec.entity("card").counterparts == ()
    orders = random_orders(n, seed, span_s=3 * DAY, pool=pool).rename(
        columns={"customer_id": "card", "email": "shop"}
    )
    orders["items"] = np.arange(n) % 7 - 2.25
    _, states = advance({}, orders, int(orders["order_date"].max().timestamp()) + 1, spec)
    for kind, frame in states.items():
        encoded = encode_states(pa.Table.from_pandas(frame, preserve_index=False), kind, spec)
        expected = states_from_frame(frame, spec.entity(kind).counterparts, ("items",))
        decoded = [decode_state(b) for b in encoded.blobs.to_pylist()]
        assert decoded == list(expected.values())
        assert all(len(s.numbers["items"]) == len(s) for s in decoded)
        assert {u % 10 for s in decoded for u in s.numbers["items"]} <= {8}  # x.x5 -> even


def test_a_version_1_state_still_decodes() -> None:
    old = msgpack.packb([1, [5], [100], {"email": ["e"]}, ["o1"], [-1]], use_bin_type=True)
    state = decode_state(old)
    assert state.t_s == [5] and state.label_s == [NO_LABEL] and state.numbers == {}
    with pytest.raises(ValueError, match="version 3"):
        decode_state(msgpack.packb([3, [], [], {}, [], [], {}]))


def test_bulk_encoding_of_unusual_values() -> None:
    table = pa.table(
        {
            "entity": ["ü-ß 客户", "ü-ß 客户", "x" * 300],
            "t_s": [1, 2**40, 3],
            "cents": [0, 2**40, 5],
            "email": ["", "é", "a"],
            "ip_addr": ["::1", "::1", "1.2.3.4"],
            "order_id": ["o1", "o2", "o3"],
            "label_s": [NO_LABEL, 7, NO_LABEL],
        }
    )
    encoded = encode_states(table, "customer_id")
    first = decode_state(encoded.blobs[0].as_py())
    assert first.t_s == [1, 2**40] and first.counterparts["email"] == ["", "é"]
    assert first.label_s == [NO_LABEL, 7]
    assert len(encode_states(table.slice(0, 0), "customer_id")) == 0


def _state(events: list[tuple[int, str]], labels: dict[str, int] | None = None) -> EntityState:
    labels = labels or {}
    return EntityState(
        t_s=[t for t, _ in events],
        cents=[100] * len(events),
        counterparts={"email": ["e"] * len(events), "ip_addr": ["i"] * len(events)},
        order_ids=[o for _, o in events],
        label_s=[labels.get(o, NO_LABEL) for _, o in events],
    )


def test_carry_over_adds_newer_orders_in_time_order_and_keeps_labels() -> None:
    since = 10 * DAY
    loaded = _state([(since - 50, "a"), (since - 10, "b")])
    served = _state(
        [(since - 50, "a"), (since + 5, "c"), (since + 1, "d")], labels={"a": since - 1}
    )
    merged = carry_over(loaded, served, since, "customer_id")
    assert merged is not None
    assert merged.order_ids == ["a", "b", "d", "c"]
    assert merged.label_s[0] == since - 1
    assert carry_over(merged, served, since, "customer_id") is None  # idempotent
    assert carry_over(loaded, _state([(since - 5, "old")]), since, "customer_id") is None
    fresh = carry_over(None, served, since, "customer_id")
    assert fresh is not None and fresh.order_ids == ["d", "c"]


def test_carry_over_applies_the_retention_rule() -> None:
    since = 100 * DAY
    loaded = _state([(since - 60 * DAY + i, f"old{i}") for i in range(12)])
    served = _state([(since + 1, "new")])
    merged = carry_over(loaded, served, since, "customer_id")
    reference = loaded
    reference = append_order(
        reference, OrderEvent("new", since + 1, 100, {"email": "e", "ip_addr": "i"}), "customer_id"
    )
    assert merged == reference and len(merged) == DEFAULT_SPEC.history_n
