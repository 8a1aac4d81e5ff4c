"""`POST /v1/labels`: chargeback feedback."""

from __future__ import annotations

from litestar import Controller, Request, post
from litestar.di import NamedDependency
from litestar.params import JSONBody

from fraud_core.access import ANALYST
from fraud_serving.guards import needs, request_key_id
from fraud_serving.routes.responses import (
    BAD_INPUT,
    FORBIDDEN,
    UNAUTHORIZED,
    UNAVAILABLE,
    UNKNOWN_OUTCOME,
    problem,
)
from fraud_serving.schemas import Label, LabelResult
from fraud_serving.services.labels import LabelService


class LabelController(Controller):
    path = "/labels"
    tags = ("feedback",)
    opt = needs(ANALYST)  # a label changes what later orders' features see

    @post(
        "/",
        status_code=200,
        summary="Record whether an order was fraud",
        description=(
            "Marks the order in its customer's, e-mail's and IP's history; later orders see the "
            "label in their risk features from `label_date` on. `is_fraud: false` clears a label. "
            "Idempotent. The label also joins the label feed (the `labels` asset), which training "
            "sets and model_performance read."
        ),
        responses={
            **BAD_INPUT,
            **UNAUTHORIZED,
            **FORBIDDEN,
            404: problem("The order is in no entity history (unknown or too old to matter)"),
            **UNAVAILABLE,
            **UNKNOWN_OUTCOME,
        },
    )
    async def add_label(
        self,
        request: Request,
        data: JSONBody[Label],
        label_service: NamedDependency[LabelService],
    ) -> LabelResult:
        return await label_service.apply(data, request_key_id(request))
