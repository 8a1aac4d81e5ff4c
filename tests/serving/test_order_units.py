"""An order's time and amount reach the features in the same units on both paths: a request body
decoded into the service's `Order` and turned into an `OrderEvent` (online) gives the seconds and
cents that a landing row gives after validation and `order_times` (offline), down to the rounding
edges: half cents, sub-second times, other time zones."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone

import msgspec
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fraud_core.features.offline import order_times
from fraud_core.features.online import order_event
from fraud_core.validation import validate_orders
from fraud_serving.bodies import decode_strictly
from fraud_serving.schemas import Order

LATEST = datetime(2100, 1, 1, tzinfo=UTC)


def _both_paths(
    orders: list[tuple[str, float]],
) -> tuple[list[tuple[int, int]], list[tuple[int, int]]]:
    """(t_s, cents) of each (order_date text, amount): online from the JSON body as the service
    decodes it, offline from the landing row (all text, as a CSV gives) after validation."""
    bodies = [
        {
            "order_id": f"O{i}",
            "order_date": stamp,
            "customer_id": "C1",
            "email": "c1@example.org",
            "ip_addr": "192.0.2.1",
            "order_amount": amount,
        }
        for i, (stamp, amount) in enumerate(orders)
    ]
    online = []
    for body in bodies:
        event = order_event(decode_strictly(msgspec.json.encode(body), Order))
        online.append((event.t_s, event.cents))

    rows = pd.DataFrame(
        [
            {
                **body,
                "order_amount": repr(body["order_amount"]),
                "location_lat": "0.0",
                "location_long": "0.0",
            }
            for body in bodies
        ],
        dtype="object",
    )
    days = pd.Series([pd.Timestamp(s).tz_convert("UTC").date() for s, _ in orders])
    offline: dict[str, tuple[int, int]] = {}
    for day in days.unique():
        result = validate_orders(rows[days == day], day, latest=LATEST)
        assert result.quarantine.empty, result.quarantine.to_dict("records")
        t_s, cents = order_times(result.valid)
        pairs = zip(t_s.tolist(), cents.tolist(), strict=True)
        offline.update(zip(result.valid["order_id"], pairs, strict=True))
    return online, [offline[body["order_id"]] for body in bodies]


@pytest.mark.parametrize(
    ("amount", "cents"),
    [
        (0.0, 0),
        (0.005, 0),  # half a cent: to the even cent
        (0.015, 2),
        (0.025, 2),
        (0.125, 12),
        (0.135, 14),
        (1.005, 100),  # the double is just below 1.005
        (2.675, 268),
        (19.995, 2000),
        (10.004999, 1000),
        (999_999_999.995, 100_000_000_000),  # 99_999_999_999.5: to the even cent
        (1e9, 100_000_000_000),
    ],
)
def test_amounts_round_to_the_same_cents(amount: float, cents: int) -> None:
    online, offline = _both_paths([("2026-03-01T12:00:00Z", amount)])
    assert online == offline
    assert online[0][1] == cents


@pytest.mark.parametrize(
    "stamp",
    [
        "2026-03-01T12:00:00Z",
        "2026-03-01T12:00:00.000001Z",
        "2026-03-01T12:00:00.5Z",
        "2026-03-01T12:00:00.999999Z",
        "2026-03-01T23:59:59.999999Z",
        "2026-03-02T05:29:59.999999+05:30",  # 23:59:59.999999 UTC the day before
        "2026-02-28T21:00:00.000001-03:00",  # just after midnight UTC
        "2000-01-01T00:00:00.999999Z",
    ],
)
def test_times_floor_to_the_same_second(stamp: str) -> None:
    online, offline = _both_paths([(stamp, 1.0)])
    assert online == offline
    utc = pd.Timestamp(stamp).tz_convert("UTC")
    assert online[0][0] == int(utc.floor("s").timestamp())


@pytest.mark.xfail(
    strict=True,
    reason="known drift: msgspec rounds digits beyond the microsecond (to the next second here), "
    "the landing validation truncates them",
)
def test_sub_microsecond_digits_floor_to_the_same_second() -> None:
    online, offline = _both_paths([("2026-03-01T12:00:00.9999999Z", 1.0)])
    assert online == offline


@settings(max_examples=150, deadline=None)
@given(
    moment=st.datetimes(
        min_value=datetime(2000, 1, 2), max_value=datetime(2099, 12, 30), timezones=st.just(UTC)
    ),
    offset_min=st.integers(-12 * 60, 14 * 60),
    amount=st.one_of(
        st.floats(0.0, 1e9, allow_nan=False, allow_infinity=False),
        st.integers(0, 10**8).map(lambda m: m / 1000),  # a third decimal: half cents included
    ),
)
def test_any_order_converts_the_same_on_both_paths(
    moment: datetime, offset_min: int, amount: float
) -> None:
    local = moment.astimezone(timezone(timedelta(minutes=offset_min)))
    online, offline = _both_paths([(local.isoformat(), amount)])
    assert online == offline


def test_a_day_of_orders_converts_the_same_on_both_paths() -> None:
    """Several orders of one day in one validation call, as a landing file brings them."""
    start = datetime.combine(date(2026, 3, 1), datetime.min.time(), UTC)
    orders = [
        ((start + timedelta(seconds=k * 997.123457)).isoformat(), k * 0.005) for k in range(80)
    ]
    online, offline = _both_paths(orders)
    assert online == offline
