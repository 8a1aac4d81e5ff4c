"""Operations endpoints without a key: `/health` (the process answers), `/ready` (Redis reachable
and a model loaded: send traffic), `/metrics` (Prometheus)."""

from __future__ import annotations

from litestar import Controller, MediaType, Response, get
from litestar.datastructures import State
from litestar.openapi import ResponseSpec
from prometheus_client import CONTENT_TYPE_LATEST

from fraud_serving.schemas import Health, Readiness

# Litestar appends "; charset=utf-8" to a text media type itself: without this, /metrics
# announced the charset twice.
_EXPOSITION = CONTENT_TYPE_LATEST.replace("; charset=utf-8", "")


class OpsController(Controller):
    path = "/"
    tags = ("operations",)

    @get("/health", summary="The process is up")
    async def health(self) -> Health:
        return Health(status="ok")

    @get(
        "/ready",
        summary="Ready to score: Redis reachable and a model loaded (503 otherwise)",
        responses={
            503: ResponseSpec(
                data_container=Readiness, description="Not ready", generate_examples=False
            )
        },
    )
    async def ready(self, state: State) -> Response[Readiness]:
        services = state.services
        store, models = services.store, services.models
        model = models.current
        problems = []
        if not store.up:
            problems.append(f"online store unavailable ({store.last_error})")
        if model is None:
            problems.append(f"no model ({models.last_error or 'none deployed'})")
        ready = not problems
        body = Readiness(
            ready=ready,
            redis=store.up,
            model_version=model.version if model else None,
            namespace=store.namespace,
            detail="; ".join(problems) or "ok",
        )
        return Response(body, status_code=200 if ready else 503)

    @get("/metrics", summary="Prometheus metrics", media_type=MediaType.TEXT)
    async def metrics(self, state: State) -> Response[bytes]:
        return Response(state.metrics.exposition(), media_type=_EXPOSITION, status_code=200)
