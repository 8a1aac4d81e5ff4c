"""Time sanity over HTTP on a real Redis: an order dated further ahead than the allowed clock skew
is refused by default, and no entity's clock can be dragged into the future, not by a refused
order and not by a future event already in a stored state."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import redis

from fraud_core.clock import DEFAULT_MAX_FUTURE_S
from fraud_core.features.kernel import NO_LABEL
from fraud_core.features.offline import epoch_seconds
from fraud_core.features.state import EntityState, encode_state
from fraud_core.online_keys import OnlineKeys
from fraud_serving.settings import Settings


def _stamp(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def _order(order_id: str, moment: datetime, customer: str, ip: str) -> dict:
    return {
        "order_id": order_id,
        "order_date": _stamp(moment),
        "customer_id": customer,
        "email": f"{customer}@example.org",
        "ip_addr": ip,
        "order_amount": 25.0,
    }


def test_a_far_future_order_is_refused_and_moves_no_clock(client) -> None:
    """The hostile sequence of issue 12 #5, with FRAUD_MAX_FUTURE_S unset: an order dated 2099
    is a 400 naming `order_date`; the customer's next order of today (and another customer's on
    the same IP) is scored against today's history and stored with today's time."""
    now = datetime.now(UTC).replace(microsecond=0)
    hour_ago = now - timedelta(hours=1)
    r = client.post("/v1/score", json=_order("clock-1", hour_ago, "clock-c1", "198.51.100.77"))
    assert r.status_code == 200, r.text

    r = client.post(
        "/v1/score",
        json=_order("clock-2", datetime(2099, 12, 31, tzinfo=UTC), "clock-c1", "198.51.100.77"),
    )
    assert r.status_code == 400, r.text
    (error,) = r.json()["errors"]
    assert error["field"] == "order_date"
    assert "future" in error["reason"] and str(DEFAULT_MAX_FUTURE_S) in error["reason"]

    r = client.post(
        "/v1/score?features=true", json=_order("clock-3", now, "clock-c1", "198.51.100.77")
    )
    assert r.status_code == 200, r.text
    assert r.json()["features"]["customer_id__seconds_since_prev"] == 3600.0
    r = client.post(
        "/v1/score?features=true", json=_order("clock-4", now, "clock-c2", "198.51.100.77")
    )
    assert r.json()["features"]["ip_addr__seconds_since_prev"] == 0.0  # clock-3, at `now`

    for kind, value in (("customer_id", "clock-c1"), ("ip_addr", "198.51.100.77")):
        events = client.get(f"/v1/entities/{kind}/{value}").json()["events"]
        assert "clock-2" not in [e["order_id"] for e in events]
        assert max(e["order_date"] for e in events) == _stamp(now)


def test_a_future_event_already_stored_does_not_drag_todays_orders(
    client, redis_url, prefix
) -> None:
    """A state written before time sanity existed (or by a loader allowing more skew) holds an
    order dated 2099: the next order of today is still scored and stored at today's time, and
    the impossible event leaves the entity's history."""
    now = datetime.now(UTC).replace(microsecond=0)
    namespace = client.get("/ready").json()["namespace"]
    day_ago, far = (
        epoch_seconds(now - timedelta(days=1)),
        epoch_seconds(datetime(2099, 1, 1, tzinfo=UTC)),
    )
    state = EntityState(
        t_s=[day_ago, far],
        cents=[1000, 1000],
        counterparts={"email": ["old@example.org"] * 2, "ip_addr": ["192.0.2.50"] * 2},
        order_ids=["legacy-1", "legacy-future"],
        label_s=[NO_LABEL] * 2,
    )
    store = redis.Redis.from_url(redis_url)
    try:
        store.set(
            OnlineKeys(prefix).entity(namespace, "customer_id", "clock-legacy"), encode_state(state)
        )
    finally:
        store.close()

    r = client.post(
        "/v1/score?features=true", json=_order("clock-5", now, "clock-legacy", "192.0.2.51")
    )
    assert r.status_code == 200, r.text
    assert r.json()["features"]["customer_id__seconds_since_prev"] == 86_400.0
    events = client.get("/v1/entities/customer_id/clock-legacy").json()["events"]
    assert [e["order_id"] for e in events] == ["legacy-1", "clock-5"]
    assert events[-1]["order_date"] == _stamp(now)


def test_the_allowed_skew_has_one_owner() -> None:
    """Settings read FRAUD_MAX_FUTURE_S through fraud_core.clock: same default, same checks."""
    assert Settings().max_future_s == DEFAULT_MAX_FUTURE_S
    assert Settings.from_env({}).max_future_s == DEFAULT_MAX_FUTURE_S
    assert Settings.from_env({"FRAUD_MAX_FUTURE_S": "60"}).max_future_s == 60
    with pytest.raises(ValueError, match="FRAUD_MAX_FUTURE_S"):
        Settings.from_env({"FRAUD_MAX_FUTURE_S": "-5"})
