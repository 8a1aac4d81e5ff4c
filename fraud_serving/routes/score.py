"""`POST /v1/score` and `POST /v1/score/batch`: orders in, scores, decisions and reasons out.
The order type is the data contract's (`schemas.order_types`), so the controller is made for it.

`POST /v1/score` without a query string, the call a shop makes for every order, is answered by
the route's own middleware (`_answer_directly`): after Litestar's routing, the API key check and
its error handling, which still turn every exception into its answer, but without the
framework's per-request parameter parsing and response building (bench/RESULTS.md, issue 14).
The body is decoded by the same strict decoder; a request with a query (`features=true`) goes on
to the handler, which documents the route in OpenAPI.
"""

# No `from __future__ import annotations`: the handlers' annotations name the contract's order
# type, a local of `score_controller`, and Litestar must see the type itself.
from collections.abc import Callable

import msgspec
from litestar import Controller, Request, Response, post
from litestar.params import FromQuery, JSONBody
from litestar.types import ASGIApp, Receive, Scope, Send

from fraud_serving.bodies import decode_strictly
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
_REPLAYED = (REPLAY_HEADER.lower().encode(), b"true")  # as an ASGI header
_JSON = b"application/json"  # what Litestar's `Response` of a struct says
_encode = msgspec.json.Encoder().encode  # Litestar's encoder, without its hooks: none are needed
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


async def _score_one(request: Request, order: object) -> ScoredOrder:
    (scored,) = await _scoring(request).score([order], request_key_id(request))
    return scored


def _answer_directly(order_type: type) -> Callable[[ASGIApp], ASGIApp]:
    """The middleware of `POST /v1/score` that answers a request without a query string itself
    (see the module doc); `order_type` is the contract's order."""

    def factory(app: ASGIApp) -> ASGIApp:
        async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
            if scope["query_string"]:
                await app(scope, receive, send)
                return
            request: Request = Request(scope, receive)  # the body limit is the route's
            order = decode_strictly(await request.body(), order_type)
            scored = await _score_one(request, order)
            body = _encode(scored.result)
            headers = [(b"content-type", _JSON), (b"content-length", b"%d" % len(body))]
            if scored.replayed:
                headers.append(_REPLAYED)
            await send({"type": "http.response.start", "status": 200, "headers": headers})
            await send({"type": "http.response.body", "body": body})

        return middleware

    return factory


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
            middleware=[_answer_directly(Order)],
        )
        async def score(
            self,
            data: JSONBody[Order],
            request: Request,
            features: FromQuery[bool] = False,
        ) -> Response[ScoreResult]:
            # the requests with a query string: the others are answered by `_answer_directly`
            scored = await _score_one(request, data)
            headers = {REPLAY_HEADER: "true"} if scored.replayed else {}
            result = _result(scored, features, _scoring(request).feature_names)
            return Response(result, headers=headers)

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
