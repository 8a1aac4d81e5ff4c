"""The two execution paths and their promises: incremental by day equals one run over history;
online replay (state codec included) equals offline; nothing looks into the future."""

from __future__ import annotations

import heapq

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fraud_core.features.kernel import NO_LABEL
from fraud_core.features.offline import advance, label_seconds, order_numbers, order_times
from fraud_core.features.online import OrderEvent, append_order, apply_label, order_features
from fraud_core.features.spec import DEFAULT_SPEC, NO_VALUE
from fraud_core.features.state import EntityState, decode_state, encode_state, states_from_frame

from .conftest import SMALL_SPEC, random_orders
from .feature_reference import assert_frames_close

DAY = 86_400


def _by_day(orders: pd.DataFrame) -> list[tuple[int, pd.DataFrame]]:
    day = orders["order_date"].dt.floor("D")
    return [
        (int(d.timestamp()) + DAY, part.reset_index(drop=True))
        for d, part in orders.groupby(day, sort=True)
    ]


def _incremental(orders: pd.DataFrame, spec) -> tuple[pd.DataFrame, dict]:
    states: dict = {}
    parts = []
    for end_s, part in _by_day(orders):
        feats, states = advance(states, part, end_s, spec)
        parts.append(feats)
    return pd.concat(parts, ignore_index=True), states


@pytest.mark.parametrize("spec", [SMALL_SPEC, DEFAULT_SPEC], ids=["small", "default"])
def test_incremental_by_day_equals_one_run(spec) -> None:
    orders = random_orders(1_500, 11, span_s=50 * DAY, pool=25)
    full, _ = advance({}, orders, int(orders["order_date"].max().timestamp()) + 1, spec)
    daily, states = _incremental(orders, spec)
    pd.testing.assert_frame_equal(daily, full)
    # the carried state stays bounded: no entity keeps events it can no longer use
    for kind, state in states.items():
        assert len(state) < len(orders), kind


def _online_replay(orders: pd.DataFrame, spec) -> pd.DataFrame:
    """Score orders one by one the way the service does: per-entity states kept as encoded
    bytes, labels applied when they become known, each order appended after scoring."""
    t_s, cents = order_times(orders)
    labels = label_seconds(orders)
    units = order_numbers(orders, spec)
    store: dict[tuple[str, str], bytes] = {}
    pending: list[tuple[int, int]] = []  # (label_s, row) of labels not yet delivered
    rows = []
    for i in range(len(orders)):
        o = orders.iloc[i]
        while pending and pending[0][0] < t_s[i]:  # chargebacks that arrived before this order
            label_at, j = heapq.heappop(pending)
            for e in spec.entities:
                key = (e.kind, orders.iloc[j][e.kind])
                state = decode_state(store[key])
                apply_label(state, orders.iloc[j]["order_id"], label_at)
                store[key] = encode_state(state)
        event = OrderEvent(
            order_id=o["order_id"],
            t_s=int(t_s[i]),
            cents=int(cents[i]),
            ids={  # entities and the attributes they follow (a missing one: NO_VALUE)
                name: NO_VALUE if pd.isna(o[name]) else o[name]
                for name in {e.kind for e in spec.entities}
                | {c for e in spec.entities for c in e.counterparts}
            },
            numbers={v: int(col[i]) for v, col in units.items()},
        )
        states = {
            e.kind: decode_state(store[(e.kind, o[e.kind])])
            if (e.kind, o[e.kind]) in store
            else None
            for e in spec.entities
        }
        rows.append({"order_id": o["order_id"], **order_features(states, event, spec)})
        for e in spec.entities:
            store[(e.kind, o[e.kind])] = encode_state(
                append_order(states[e.kind], event, e.kind, spec)
            )
        if labels[i] != NO_LABEL:
            heapq.heappush(pending, (int(labels[i]), i))
    return pd.DataFrame(rows)


@pytest.mark.parametrize("spec", [SMALL_SPEC, DEFAULT_SPEC], ids=["small", "default"])
def test_online_replay_matches_offline(spec) -> None:
    orders = random_orders(700, 5, span_s=45 * DAY, pool=12)
    offline, _ = _incremental(orders, spec)
    assert_frames_close(_online_replay(orders, spec), offline, tol=1e-9)


def test_offline_state_seeds_the_online_path() -> None:
    """What the Redis loader does: the offline end-of-day state, split per entity, continues
    online exactly where the offline path would have gone on."""
    spec = SMALL_SPEC
    orders = random_orders(600, 9, span_s=6 * DAY, pool=8)
    days = _by_day(orders)
    history = pd.concat([p for _, p in days[:-1]], ignore_index=True)
    last_end, last_day = days[-1]
    _, states = advance({}, history, days[-2][0], spec)
    expected, _ = advance(states, last_day, last_end, spec)

    per_entity = {
        kind: states_from_frame(frame, spec.entity(kind).counterparts)
        for kind, frame in states.items()
    }
    t_s, cents = order_times(last_day)
    labels = label_seconds(last_day)  # the landing file carries them; the kernel hides unknown ones
    got = []
    for i in range(len(last_day)):
        o = last_day.iloc[i]
        ids = {k: o[k] for k in per_entity}
        event = OrderEvent(o["order_id"], int(t_s[i]), int(cents[i]), ids, int(labels[i]))
        current = {k: per_entity[k].get(o[k]) for k in per_entity}
        got.append({"order_id": o["order_id"], **order_features(current, event, spec)})
        for k in per_entity:
            per_entity[k][o[k]] = append_order(current[k], event, k, spec)
    assert_frames_close(pd.DataFrame(got), expected)


def test_later_orders_never_change_earlier_features() -> None:
    orders = random_orders(400, 21, span_s=4 * DAY, pool=5)
    end = int(orders["order_date"].max().timestamp()) + DAY
    full, _ = advance({}, orders, end, SMALL_SPEC)
    head = orders.iloc[:250].reset_index(drop=True)
    early, _ = advance({}, head, end, SMALL_SPEC)
    pd.testing.assert_frame_equal(early, full.iloc[:250].reset_index(drop=True))


def test_labels_count_only_once_known() -> None:
    """Moving every label to after all orders must zero every risk share; moving labels to just
    before their order's successors must not change any feature of orders before the label."""
    orders = random_orders(400, 4, span_s=3 * DAY, pool=4)
    end = int(orders["order_date"].max().timestamp()) + DAY
    known, _ = advance({}, orders, end, SMALL_SPEC)
    assert (known.filter(like="risk_fraud_share").to_numpy() > 0).any()

    late = orders.copy()
    late["label_date"] = late["label_date"].where(
        late["is_fraud"] == 0, pd.Timestamp("2030-01-01", tz="UTC")
    )
    unknown, _ = advance({}, late, end, SMALL_SPEC)
    assert (unknown.filter(like="risk_fraud_share").to_numpy() == 0).all()
    non_label = [c for c in known.columns if "risk_fraud_share" not in c]
    pd.testing.assert_frame_equal(unknown[non_label], known[non_label])


def test_order_on_unknown_entities_gets_cold_start_features() -> None:
    event = OrderEvent(
        "O1", 1_800_000_000, 12_345, {"customer_id": "new", "email": "n@x", "ip_addr": "1.1.1.1"}
    )
    feats = order_features({}, event)
    assert feats["customer_id__first_seen"] == 1.0
    assert feats["email__order_count__30d"] == 0.0
    assert np.isnan(feats["customer_id__amount_mean__last10"])
    assert feats["order_amount"] == 123.45
    assert list(feats) == DEFAULT_SPEC.feature_names


@settings(max_examples=60, deadline=None)
@given(
    events=st.lists(
        st.tuples(
            st.integers(0, 2**40),
            st.integers(0, 10**12),
            st.text(max_size=12),
            st.text(max_size=12),
            st.text(min_size=1, max_size=20),
            st.one_of(st.just(NO_LABEL), st.integers(0, 2**40)),
        ),
        max_size=30,
    )
)
def test_state_codec_round_trips(events) -> None:
    state = EntityState(
        t_s=[e[0] for e in events],
        cents=[e[1] for e in events],
        counterparts={"email": [e[2] for e in events], "ip_addr": [e[3] for e in events]},
        order_ids=[e[4] for e in events],
        label_s=[e[5] for e in events],
    )
    assert decode_state(encode_state(state)) == state


def test_state_codec_rejects_garbage() -> None:
    with pytest.raises(ValueError, match="entity state"):
        decode_state(b"\x93\x01\x02")
    with pytest.raises(ValueError, match="not supported"):
        decode_state(b"\x96\x09\x90\x90\x80\x90\x90")  # a well-formed payload of version 9


def test_batch_features_equal_one_by_one() -> None:
    """The service's micro-batch path: a batch sees its own earlier orders, like a sequence."""
    from fraud_core.features.online import batch_features

    spec = SMALL_SPEC
    orders = random_orders(300, 13, span_s=2 * DAY, pool=5)
    t_s, cents = order_times(orders)
    labels = label_seconds(orders)
    events = [
        OrderEvent(
            o.order_id,
            int(t_s[i]),
            int(cents[i]),
            {k: getattr(o, k) for k in ("customer_id", "email", "ip_addr")},
            int(labels[i]),
        )
        for i, o in enumerate(orders.itertuples())
    ]
    store: dict[str, dict[str, EntityState]] = {e.kind: {} for e in spec.entities}
    sequential, batched = [], []
    for start in range(0, len(events), 37):  # uneven batches, entities repeating inside them
        batch = events[start : start + 37]
        snapshot = {k: dict(v) for k, v in store.items()}
        batched.append(batch_features(snapshot, batch, spec))
        for ev in batch:
            current = {k: store[k].get(ev.ids[k]) for k in store}
            sequential.append(list(order_features(current, ev, spec).values()))
            for k in store:
                store[k][ev.ids[k]] = append_order(current[k], ev, k, spec)
    np.testing.assert_allclose(np.vstack(batched), np.array(sequential), rtol=1e-12, atol=1e-12)
