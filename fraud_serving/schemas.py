"""The service's API contract: msgspec structs with their constraints. Litestar validates request
bodies against them (a violation is a 400 naming the field and the reason) and builds the
OpenAPI schema from them.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Literal

import msgspec
from msgspec import Meta, Struct

EntityKind = Literal["customer_id", "email", "ip_addr"]
Decision = Literal["approve", "review", "decline"]

EARLIEST = datetime(2000, 1, 1, tzinfo=UTC)  # dates outside are refused: the feature kernel
LATEST = datetime(2100, 1, 1, tzinfo=UTC)  # covers at most ~136 years in one call

OrderId = Annotated[
    str,
    Meta(
        min_length=1,
        max_length=128,
        pattern=r"^[A-Za-z0-9][A-Za-z0-9._:@/+=-]*$",
        description="Unique id of the order; the key of idempotency.",
        examples=["O000123456"],
    ),
]
EntityId = Annotated[str, Meta(min_length=1, max_length=256, pattern=r"\S")]
Timestamp = Annotated[
    datetime,
    Meta(tz=True, description="RFC 3339 with a time zone, between 2000 and 2099."),
]
Amount = Annotated[float, Meta(ge=0.0, le=1e9, description="Order value, >= 0.")]


def _check_time(value: datetime, name: str) -> None:
    if not EARLIEST <= value < LATEST:
        raise ValueError(f"{name} must be between 2000-01-01 and 2099-12-31")


class Order(Struct, forbid_unknown_fields=True):
    """An order to score (the landing file's columns; labels come later, via /v1/labels)."""

    order_id: OrderId
    order_date: Timestamp
    customer_id: Annotated[EntityId, Meta(examples=["C000042"])]
    email: Annotated[EntityId, Meta(examples=["u000042@example.com"])]
    ip_addr: Annotated[EntityId, Meta(examples=["83.12.200.7"])]
    order_amount: Amount
    location_lat: Annotated[float, Meta(ge=-90.0, le=90.0)] | None = None
    location_long: Annotated[float, Meta(ge=-180.0, le=180.0)] | None = None

    def __post_init__(self) -> None:
        _check_time(self.order_date, "order_date")


class OrderBatch(Struct, forbid_unknown_fields=True):
    """Orders scored one after another, in this order (an order sees the earlier ones)."""

    orders: Annotated[list[Order], Meta(min_length=1, max_length=1_000)]


class Reason(Struct):
    feature: str
    value: float | None  # null: the feature is empty (no history)
    contribution: float  # log-odds; > 0 pushes towards fraud


class ScoreResult(Struct, omit_defaults=True):
    order_id: str
    score: float  # fraud probability
    decision: Decision
    reasons: list[Reason]
    model_version: str
    new_entities: list[EntityKind]  # scored with cold-start features: never seen before
    features: dict[str, float | None] | None = None  # with ?features=true (not kept for replays)


class BatchResult(Struct):
    results: list[ScoreResult]
    replayed: int  # answers returned from an earlier request with the same order ids


class Label(Struct, forbid_unknown_fields=True):
    """Chargeback feedback: whether an order turned out fraudulent, known from `label_date`."""

    order_id: OrderId
    is_fraud: bool
    label_date: Timestamp

    def __post_init__(self) -> None:
        _check_time(self.label_date, "label_date")


class LabelResult(Struct):
    order_id: str
    is_fraud: bool
    updated_entities: list[EntityKind]  # entity states that hold the order and were updated
    changed: bool  # False: the same label was already there (a replay)


class EntityEvent(Struct):
    order_id: str
    order_date: datetime
    order_amount: float
    counterparts: dict[str, str]
    fraud_label_date: datetime | None


class EntityView(Struct):
    kind: EntityKind
    id: str
    as_of: datetime
    namespace: str
    events: list[EntityEvent]  # oldest first; what later orders' features can still see
    features: dict[str, float | None]  # this entity's features for an order at `as_of`


class ModelInfo(Struct):
    version: str
    loaded_at: datetime
    card: dict


class Health(Struct):
    status: Literal["ok"]


class Readiness(Struct):
    ready: bool
    redis: bool
    model_version: str | None
    namespace: str | None
    detail: str


class Problem(Struct):
    """Error body: what went wrong, and for bad input which field and why."""

    status_code: int
    detail: str
    errors: list[dict[str, str]] = msgspec.field(default_factory=list)
