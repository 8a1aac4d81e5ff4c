"""What lives as long as the app: the Redis client, the model holder, the micro-batcher and the
background tasks (store health probe, model reload). Built on start-up (which also loads the
compiled feature kernel), torn down on shutdown, reachable by the routes through `deps`.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass

from litestar import Litestar

from fraud_core.features.kernel import warm_up
from fraud_core.model.artifact import CHALLENGER_FILE
from fraud_core.online_keys import OnlineKeys, OrderIndexWindow
from fraud_core.policy import PolicyFields
from fraud_core.policy.registry import PolicyRegistry
from fraud_core.review import verdict_lifetime_s
from fraud_core.storage import DataLayout
from fraud_serving.metrics import ServiceMetrics
from fraud_serving.services.entities import EntityService
from fraud_serving.services.labels import LabelService
from fraud_serving.services.lists import ListService
from fraud_serving.services.models import ModelHolder
from fraud_serving.services.policies import PolicyHolder
from fraud_serving.services.review import ReviewService
from fraud_serving.services.scoring import ScoringService
from fraud_serving.services.store import OnlineStore, make_client, make_cluster_client
from fraud_serving.settings import Settings

log = logging.getLogger(__name__)
SHUTDOWN_WAIT_S = 5.0


@dataclass
class Services:
    settings: Settings
    metrics: ServiceMetrics
    store: OnlineStore
    models: ModelHolder
    scoring: ScoringService
    labels: LabelService
    entities: EntityService
    policies: PolicyHolder
    lists: ListService
    review: ReviewService


@contextlib.asynccontextmanager
async def lifespan(app: Litestar) -> AsyncIterator[None]:
    settings: Settings = app.state.settings
    metrics: ServiceMetrics = app.state.metrics
    client = make_client(
        settings.redis_url, settings.redis_timeout_ms, settings.redis_max_connections
    )
    cluster = (
        make_cluster_client(
            settings.redis_url, settings.redis_timeout_ms, settings.redis_max_connections
        )
        if settings.redis_cluster
        else None
    )
    store = OnlineStore(
        client,
        OnlineKeys(settings.key_prefix, settings.redis_cluster),
        settings.scored_ttl_s,
        metrics,
        order_index=OrderIndexWindow(settings.order_index_s),
        deadline_s=settings.redis_deadline_ms / 1000,
        cluster=cluster,
        url=settings.redis_url,
    )
    metrics.redis_up.set_function(lambda: 1.0 if store.up else 0.0)
    spec = settings.contract.spec
    models = ModelHolder(settings.models_dir, metrics, settings.contract)
    challengers = ModelHolder(settings.models_dir, metrics, settings.contract, CHALLENGER_FILE)
    layout = DataLayout(settings.data_dir)
    policies = PolicyHolder(PolicyRegistry(layout), PolicyFields.of(settings.contract), metrics)
    lists = ListService(store, settings.request_shape, layout.audit)
    await store.probe()
    await models.poll_once()
    await challengers.poll_once()
    await policies.poll_once()
    # load the compiled feature kernel now, not on the first order (compiles on a first run)
    await asyncio.to_thread(warm_up)
    # Everything built so far (libraries, numba's compiler objects, the model) lives as long as
    # the process: take it out of the cyclic GC, whose full passes over it stalled requests
    # (~150 ms each, seen as p99 at 500 requests/s).
    gc.collect()
    gc.freeze()
    scoring = ScoringService(
        store,
        models,
        metrics,
        settings.request_shape,
        spec,
        policies,
        lists,
        challengers=challengers,
        batch_max_orders=settings.batch_max_orders,
        batch_wait_s=settings.batch_wait_ms / 1000,
        max_future_s=settings.max_future_s,
        decline_holdout_share=settings.decline_holdout_share,
    )
    scoring.batcher.start()
    tasks = [
        asyncio.create_task(store.watch(), name="store-health"),
        asyncio.create_task(models.watch(settings.model_poll_s), name="model-reload"),
        asyncio.create_task(policies.watch(settings.model_poll_s), name="policy-reload"),
        asyncio.create_task(challengers.watch(settings.model_poll_s), name="shadow-reload"),
    ]
    if store.cluster is not None:
        tasks.append(asyncio.create_task(store.sweep(), name="commit-intent-sweep"))
    labels = LabelService(store, metrics, spec, verdict_lifetime_s(settings.review_days))
    entities = EntityService(store, settings.request_shape, spec)
    review = ReviewService(
        store, labels, lists, entities, layout, settings.contract, settings.review_days
    )
    tasks.append(asyncio.create_task(review.warm(), name="review-warm-up"))
    app.state.services = Services(
        settings=settings,
        metrics=metrics,
        store=store,
        models=models,
        scoring=scoring,
        labels=labels,
        entities=entities,
        policies=policies,
        lists=lists,
        review=review,
    )
    try:
        yield
    finally:
        for task in tasks:
            task.cancel()
        # Bounded: a task that does not stop is reported, and shutdown goes on without it.
        _, running = await asyncio.wait(tasks, timeout=SHUTDOWN_WAIT_S)
        for task in running:
            log.warning(
                "background task %s did not stop within %s s", task.get_name(), SHUTDOWN_WAIT_S
            )
        await scoring.batcher.stop(SHUTDOWN_WAIT_S)
        await store.close()
