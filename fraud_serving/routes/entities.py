"""`GET /v1/entities/{kind}?id=...` and `GET /v1/entities/{kind}/{id}`: one entity's history and
features (a customer, an e-mail, an IP: the data contract's kinds). The query form takes any id
exactly (one with `/` too: a path segment cannot carry it); the path form is kept for ids
without `/`. An id is the value an order sends; the entity's key is derived from it as for an
order (the contract's transform, a personal entity's keyed digest)."""

# No `from __future__ import annotations`: the handlers' `kind` is the contract's kinds, a local
# of `entity_controller`, and Litestar must see the type itself.
from datetime import datetime
from typing import Annotated

from litestar import Controller, get
from litestar.di import NamedDependency
from litestar.exceptions import ValidationException
from litestar.params import FromQuery, PathParameter, QueryParameter

from fraud_core.access import ANALYST
from fraud_serving.guards import needs
from fraud_serving.routes.responses import (
    BAD_INPUT,
    FORBIDDEN,
    UNAUTHORIZED,
    UNAVAILABLE,
    problem,
)
from fraud_serving.schemas import EARLIEST, LATEST, EntityView, OrderTypes
from fraud_serving.services.entities import EntityService

_DESCRIPTION = (
    "The orders still kept for the entity (what later orders' features look at) and the "
    "entity's features for an order at `as_of` (default now), without those that depend "
    "on the order itself."
)
_RESPONSES = {
    **BAD_INPUT,
    **UNAUTHORIZED,
    **FORBIDDEN,
    404: problem("The entity is not in the online store"),
    **UNAVAILABLE,
}


def _check_as_of(as_of: datetime | None) -> None:
    if as_of is not None and not (as_of.tzinfo and EARLIEST <= as_of < LATEST):
        reason = "must have a time zone and lie between 2000-01-01 and 2099-12-31"
        raise ValidationException(extra=[{"key": "as_of", "message": reason, "source": "query"}])


def entity_controller(types: OrderTypes) -> type[Controller]:
    """The entity routes for the kinds of `types` (the data contract's)."""
    kinds = ", ".join(types.kind.__args__)
    Kind = Annotated[types.kind, PathParameter(description=f"One of: {kinds}")]

    class EntityController(Controller):
        path = "/entities"
        tags = ("entities",)
        opt = needs(ANALYST)  # an entity's history: more than a scoring client needs

        @get(
            "/{kind:str}",
            summary="An entity's history and current features (any id, as a query parameter)",
            description=_DESCRIPTION,
            responses=_RESPONSES,
        )
        async def find_entity(
            self,
            kind: Kind,
            entity_id: Annotated[
                str,
                QueryParameter(
                    name="id",
                    min_length=1,
                    max_length=256,
                    description="The entity's id, exactly as in the orders (URL-encoded)",
                ),
            ],
            entity_service: NamedDependency[EntityService],
            as_of: FromQuery[datetime | None] = None,
        ) -> EntityView:
            _check_as_of(as_of)
            return await entity_service.view(kind, entity_id, as_of)

        @get(
            "/{kind:str}/{entity_id:str}",
            summary="An entity's history and current features (an id without `/`)",
            description=_DESCRIPTION,
            responses=_RESPONSES,
        )
        async def get_entity(
            self,
            kind: Kind,
            entity_id: Annotated[str, PathParameter(min_length=1, max_length=256)],
            entity_service: NamedDependency[EntityService],
            as_of: FromQuery[datetime | None] = None,
        ) -> EntityView:
            _check_as_of(as_of)
            return await entity_service.view(kind, entity_id, as_of)

    return EntityController
