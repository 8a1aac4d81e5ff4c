"""`POST /v1/score` and `POST /v1/score/batch`: orders in, scores, decisions and reasons out.
The order type is the data contract's (`schemas.order_types`), so the controller is made for it.
"""

# No `from __future__ import annotations`: the handlers' annotations name the contract's order
# type, a local of `score_controller`, and Litestar must see the type itself.
import msgspec
from litestar import Controller, Request, Response, post
from litestar.params import FromQuery, JSONBody

from fraud_serving.guards import request_key_id
from fraud_serving.routes.responses import (
    BAD_INPUT,
    UNAUTHORIZED,
    UNAVAILABLE,
    UNKNOWN_OUTCOME,
    problem,
)
from fraud_serving.schemas import BatchResult, OrderTypes, ScoreResult
from fraud_serving.services.scoring import ScoredOrder, ScoringService

REPLAY_HEADER = "Idempotent-Replayed"
_RESPONSES = {
    **BAD_INPUT,
    **UNAUTHORIZED,
    409: problem("This order_id was already scored with different content"),
    **UNAVAILABLE,
    **UNKNOWN_OUTCOME,
}


def _scoring(request: Request) -> ScoringService:
    # The app's service, taken from the state directly: a declared dependency costs a copy of
    # the app state and a type check of the value on every request (a tenth of the route's time)
    return request.app.state.services.scoring


def _result(scored: ScoredOrder, with_features: bool, names: list[str]) -> ScoreResult:
    if not with_features:
        return scored.result
    return msgspec.structs.replace(scored.result, features=scored.features_dict(names))


def score_controller(types: OrderTypes) -> type[Controller]:
    """The scoring routes for orders of `types` (the data contract's)."""
    Order, OrderBatch = types.order, types.batch

    class ScoreController(Controller):
        path = "/score"
        tags = ("scoring",)

        @post(
            "/",
            status_code=200,
            summary="Score one order",
            description=(
                "Reads the history of each of the order's entities, computes the features, predicts "
                "and appends the order to each history. Idempotent on `order_id`: a repeated request "
                f"gets the stored answer (header `{REPLAY_HEADER}: true`) and changes nothing. "
                "Unknown entities get cold-start features (`new_entities`). `features=true` adds the "
                "feature vector (not kept for replays)."
            ),
            responses=_RESPONSES,
        )
        async def score(
            self,
            data: JSONBody[Order],
            request: Request,
            features: FromQuery[bool] = False,
        ) -> Response[ScoreResult]:
            service = _scoring(request)
            (scored,) = await service.score([data], request_key_id(request))
            headers = {REPLAY_HEADER: "true"} if scored.replayed else {}
            return Response(_result(scored, features, service.feature_names), headers=headers)

        @post(
            "/batch",
            status_code=200,
            summary="Score up to 1,000 orders in order",
            description=(
                "Same as `/v1/score` for each order, one after another: an order sees the earlier "
                "ones. All or nothing: a 409 or 503 stores none of them."
            ),
            responses=_RESPONSES,
        )
        async def score_batch(
            self,
            data: JSONBody[OrderBatch],
            request: Request,
            features: FromQuery[bool] = False,
        ) -> BatchResult:
            service = _scoring(request)
            scored = await service.score(data.orders, request_key_id(request))
            return BatchResult(
                results=[_result(s, features, service.feature_names) for s in scored],
                replayed=sum(s.replayed for s in scored),
            )

    return ScoreController
