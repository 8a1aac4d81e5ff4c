"""The service's API contract: msgspec structs with their constraints. Litestar validates request
bodies against them (a violation is a 400 naming the field and the reason) and builds the
OpenAPI schema from them. The order's fields come from the data contract (`order_types`).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

import msgspec
from msgspec import Meta, Struct

from fraud_core.contract import Contract, builtin_contract
from fraud_core.contract.request import request_fields
from fraud_core.labels import API_SOURCE, POSTED_SOURCES

EntityKind = Annotated[str, Meta(description="An entity kind of the data contract")]
Decision = Literal["approve", "review", "decline"]
# who may say an order is fraud through the API: one owner, fraud_core.labels (an enum in OpenAPI)
LabelSource = Literal[POSTED_SOURCES]  # type: ignore[valid-type]

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


# Examples of the built-in contract's entity fields, for the OpenAPI page.
_EXAMPLES = {
    "customer_id": "C000042",
    "email": "u000042@example.com",
    "ip_addr": "83.12.200.7",
}


def _check_order_date(self: Any) -> None:
    _check_time(self.order_date, "order_date")


@dataclass(frozen=True)
class OrderTypes:
    """The request types of one data contract: an order, a batch of them, and the entity kinds
    (a Literal: the entity routes' `kind`)."""

    order: type[Struct]
    batch: type[Struct]
    kind: Any


@functools.lru_cache(maxsize=4)
def order_types(contract: Contract) -> OrderTypes:
    """An order to score has the contract's entity fields (`RequestShape`: one per entity
    column, clear values) and attributes (optional here unless the features aggregate them),
    besides the platform's own order
    fields; labels come later, via /v1/labels. Unknown fields are refused."""
    entity_fields = [
        (
            name,
            Annotated[EntityId, Meta(examples=[_EXAMPLES[name]])]
            if name in _EXAMPLES
            else EntityId,
        )
        for name in dict.fromkeys(request_fields(contract).values())
    ]
    aggregated, attributes = [], []
    for a in contract.attributes:
        if a.type == "numeric":
            meta = Meta(ge=a.range[0], le=a.range[1]) if a.range else Meta()
            kind: Any = Annotated[float, meta]
        else:
            kind = Annotated[str, Meta(min_length=1, max_length=256)]
        if a.aggregate:  # the features sum it: an order without it cannot be scored
            aggregated.append((a.name, kind))
        else:
            attributes.append((a.name, kind | None, None))
    order = msgspec.defstruct(
        "Order",
        [
            ("order_id", OrderId),
            ("order_date", Timestamp),
            *entity_fields,
            ("order_amount", Amount),
            *aggregated,  # required fields come before those with a default
            *attributes,
        ],
        namespace={
            "__post_init__": _check_order_date,
            "__doc__": "An order to score (the contract's fields; labels come later, via "
            "/v1/labels).",
        },
        module=__name__,
        forbid_unknown_fields=True,
    )
    batch = msgspec.defstruct(
        "OrderBatch",
        [("orders", Annotated[list[order], Meta(min_length=1, max_length=1_000)])],  # type: ignore[valid-type]
        namespace={
            "__doc__": "Orders scored one after another, in this order (an order sees the "
            "earlier ones)."
        },
        module=__name__,
        forbid_unknown_fields=True,
    )
    return OrderTypes(order, batch, Literal[contract.entity_kinds])  # type: ignore[valid-type]


_BUILTIN = order_types(builtin_contract())
Order = _BUILTIN.order
"""The built-in contract's order (tests and tools that speak the built-in contract)."""
OrderBatch = _BUILTIN.batch


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
    # the policy's part (fraud_core.policy): the rules the order matched, in policy order; the
    # one that decided ("" when the score did, by the segment's thresholds); the lists its
    # entities are on ("block:email"); the rules' tags; the policy version
    rules: list[str] = msgspec.field(default_factory=list)
    decided_by: str = ""
    segment: str = ""
    list_hits: list[str] = msgspec.field(default_factory=list)
    tags: list[str] = msgspec.field(default_factory=list)
    policy_version: str = ""


class BatchResult(Struct):
    results: list[ScoreResult]
    replayed: int  # answers returned from an earlier request with the same order ids


class Label(Struct, forbid_unknown_fields=True):
    """Chargeback feedback: whether an order turned out fraudulent, known from `label_date`, and
    who says so (`source`: chargeback, dispute, api, analyst)."""

    order_id: OrderId
    is_fraud: bool
    label_date: Timestamp
    source: LabelSource = API_SOURCE  # type: ignore[assignment]

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
    numbers: dict[str, float] = {}  # the contract's aggregated numeric attributes


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


ListName = Literal["block", "allow", "watch"]  # fraud_core.policy.LIST_NAMES (checked in a test)
Reason500 = Annotated[str, Meta(min_length=1, max_length=500, pattern=r"\S")]


class ListEntryIn(Struct, forbid_unknown_fields=True):
    """An entity to put on a list: the value an order sends (`kind` names the entity), why, and
    for how long (`ttl_s`; none: until removed)."""

    list: ListName
    kind: EntityKind
    value: EntityId
    reason: Reason500
    ttl_s: Annotated[float, Meta(gt=0, le=10 * 365 * 86_400)] | None = None


class ListEntryOut(Struct):
    list: str
    kind: str
    key: str  # the entity's key as the store keeps it (a keyed digest for a personal entity)
    reason: str
    author: str  # "key:<id>" or "cli:<login>"
    added_at: datetime
    expires_at: datetime | None = None


class ListPage(Struct):
    entries: list[ListEntryOut]
    total: int
    offset: int
    limit: int


class PolicyRuleView(Struct):
    name: str
    when: str
    action: str | None
    tags: list[str]


class PolicySegmentView(Struct):
    name: str
    when: str
    thresholds: dict[str, float] | None


class PolicyView(Struct):
    version: str
    name: str
    description: str
    default: bool  # the built-in policy: no policy was activated
    loaded_at: datetime
    rules: list[PolicyRuleView]
    segments: list[PolicySegmentView]
    thresholds: dict[str, float] | None  # None: the model card's


class PolicySubmission(Struct, forbid_unknown_fields=True):
    """A policy's YAML text (see the README's Policies section), kept as the candidate that the
    next `policy_replay` judges."""

    text: Annotated[str, Meta(min_length=1, max_length=200_000)]
    reason: Reason500


class PolicyActivation(Struct, forbid_unknown_fields=True):
    """Apply a kept version at once, without a replay: an override, audited with its reason."""

    version: Annotated[str, Meta(pattern=r"^p-[0-9a-f]{12}$")]
    reason: Reason500


class PolicySaved(Struct):
    version: str
    name: str
    pointer: str  # which pointer now names it: candidate or active


class AuditEntry(Struct):
    at: str
    action: str
    actor: str
    target: str
    reason: str = ""
    before: Any = None
    after: Any = None


class ReviewRow(Struct):
    order_id: str
    order_date: datetime
    order_amount: float
    score: float
    model_version: str
    segment: str
    rules: list[str]
    list_hits: list[str]


class ReviewQueue(Struct):
    """The pending REVIEW orders (no verdict yet) that pass the filter, one page of them."""

    orders: list[ReviewRow]
    total: int  # pending orders that pass the filter
    pending: int  # pending orders in the window
    backlog: dict[str, int]  # pending orders per order day (YYYY-MM-DD), newest first
    page: int
    pages: int
