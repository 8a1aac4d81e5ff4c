"""Dependency providers: routes ask for a service by name and get the app's instance.

Each route takes ONE dependency: with two or more, Litestar resolves them in an anyio task group,
which costs more per request than the rest of the routing.
"""

from __future__ import annotations

from litestar.datastructures import State
from litestar.di import Provide

from fraud_serving.lifespan import Services
from fraud_serving.services.entities import EntityService
from fraud_serving.services.labels import LabelService
from fraud_serving.services.lists import ListService
from fraud_serving.services.models import ModelHolder
from fraud_serving.services.policies import PolicyHolder
from fraud_serving.services.review import ReviewService
from fraud_serving.services.scoring import ScoringService
from fraud_serving.services.store import OnlineStore
from fraud_serving.settings import Settings


def _services(state: State) -> Services:
    return state.services


def provide_scoring(state: State) -> ScoringService:
    return _services(state).scoring


def provide_labels(state: State) -> LabelService:
    return _services(state).labels


def provide_entities(state: State) -> EntityService:
    return _services(state).entities


def provide_models(state: State) -> ModelHolder:
    return _services(state).models


def provide_store(state: State) -> OnlineStore:
    return _services(state).store


def provide_policies(state: State) -> PolicyHolder:
    return _services(state).policies


def provide_lists(state: State) -> ListService:
    return _services(state).lists


def provide_review(state: State) -> ReviewService:
    return _services(state).review


def provide_settings(state: State) -> Settings:
    return state.settings


DEPENDENCIES = {
    "scoring": Provide(provide_scoring, sync_to_thread=False),
    "label_service": Provide(provide_labels, sync_to_thread=False),
    "entity_service": Provide(provide_entities, sync_to_thread=False),
    "models": Provide(provide_models, sync_to_thread=False),
    "store": Provide(provide_store, sync_to_thread=False),
    "settings": Provide(provide_settings, sync_to_thread=False),
    "policies": Provide(provide_policies, sync_to_thread=False),
    "list_service": Provide(provide_lists, sync_to_thread=False),
    "review_service": Provide(provide_review, sync_to_thread=False),
    "services": Provide(_services, sync_to_thread=False),  # the console's pages read several
}
