"""`GET /v1/model`: the card of the model being served."""

from __future__ import annotations

import dataclasses

from litestar import Controller, get
from litestar.di import NamedDependency

from fraud_serving.routes.responses import UNAUTHORIZED, UNAVAILABLE
from fraud_serving.schemas import ModelInfo
from fraud_serving.services.models import ModelHolder


class ModelController(Controller):
    path = "/model"
    tags = ("model",)

    @get("/", summary="The served model's card", responses={**UNAUTHORIZED, **UNAVAILABLE})
    async def get_model(self, models: NamedDependency[ModelHolder]) -> ModelInfo:
        served = models.require()
        return ModelInfo(
            version=served.version,
            loaded_at=served.loaded_at,
            card=dataclasses.asdict(served.scorer.card),
        )
