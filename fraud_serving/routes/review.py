"""`GET /v1/reviews`: the review queue as JSON, for tools beside the console (the console's
pages read the same `ReviewService`)."""

from __future__ import annotations

from datetime import date
from typing import Annotated

from litestar import Controller, get
from litestar.di import NamedDependency
from litestar.params import FromQuery, QueryParameter

from fraud_core.access import ANALYST
from fraud_core.review import MAX_PER_PAGE, SORTS, FilterError, QueueFilter, QueuePage
from fraud_serving.guards import needs
from fraud_serving.routes.responses import BAD_INPUT, FORBIDDEN, UNAUTHORIZED, UNAVAILABLE
from fraud_serving.schemas import ReviewQueue, ReviewRow
from fraud_serving.services.review import ReviewService
from fraud_serving.services.scoring import InvalidInputError


def queue_json(page: QueuePage) -> ReviewQueue:
    return ReviewQueue(
        orders=[
            ReviewRow(
                order_id=r.order_id,
                order_date=r.placed,
                order_amount=r.amount,
                score=r.score,
                model_version=r.model_version,
                segment=r.segment,
                rules=list(r.rules),
                list_hits=list(r.list_hits),
            )
            for r in page.rows
        ],
        total=page.total,
        pending=page.pending,
        backlog={d.isoformat(): n for d, n in page.backlog.items()},
        page=page.page,
        pages=page.pages,
    )


class ReviewController(Controller):
    path = "/reviews"
    tags = ("review",)
    opt = needs(ANALYST)

    @get(
        "/",
        summary="Orders waiting for review",
        description=(
            "Orders the service sent to REVIEW (from the decision log, the last "
            "`FRAUD_REVIEW_DAYS` order days) that have no verdict or label yet, ranked by "
            "score x amount (`sort=risk`), `newest`, `oldest` or `amount`. A verdict is a label "
            "with source `analyst` (`POST /v1/labels`, or the console at `/console`)."
        ),
        responses={**BAD_INPUT, **UNAUTHORIZED, **FORBIDDEN, **UNAVAILABLE},
    )
    async def review_queue(
        self,
        review_service: NamedDependency[ReviewService],
        day: FromQuery[date | None] = None,
        segment: FromQuery[str | None] = None,
        rule: FromQuery[str | None] = None,
        model_version: FromQuery[str | None] = None,
        min_amount: Annotated[float | None, QueryParameter(ge=0)] = None,
        max_amount: Annotated[float | None, QueryParameter(ge=0)] = None,
        sort: Annotated[str, QueryParameter(description=f"one of {', '.join(SORTS)}")] = "risk",
        page: Annotated[int, QueryParameter(ge=1)] = 1,
        per_page: Annotated[int, QueryParameter(ge=0, le=MAX_PER_PAGE)] = 50,
    ) -> ReviewQueue:
        try:
            wanted = QueueFilter(
                day, segment, rule, model_version, min_amount, max_amount, sort, page, per_page
            )
        except FilterError as err:
            raise InvalidInputError(err.field, err.reason) from None
        return queue_json(await review_service.queue(wanted))
