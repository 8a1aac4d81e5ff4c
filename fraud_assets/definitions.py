"""The code location: what Dagster loads, assembled in one place, no logic here.

Add a new asset, check, job, schedule or sensor by appending it to its list below;
`from fraud_assets.definitions import defs` is what `workspace.yaml` and the tests load.
"""

from __future__ import annotations

from dagster import Definitions

from fraud_assets.assets.entity_features import entity_features, entity_features_checks
from fraud_assets.assets.orders_by_entity import orders_by_entity, orders_by_entity_checks
from fraud_assets.assets.raw_orders import raw_orders, raw_orders_checks
from fraud_assets.jobs import entity_features_job, ingest_orders_job
from fraud_assets.resources import DaskResource, DataLayoutResource, RedisResource

ASSETS = [
    raw_orders,
    orders_by_entity,
    entity_features,
]

ASSET_CHECKS = [
    raw_orders_checks,
    orders_by_entity_checks,
    entity_features_checks,
]

JOBS = [
    ingest_orders_job,
    entity_features_job,
]

SCHEDULES: list = []

SENSORS: list = []

# Defaults read the environment at run time: FRAUD_DATA_DIR, DASK_SCHEDULER_ADDRESS, REDIS_URL.
RESOURCES = {
    "layout": DataLayoutResource(),
    "dask": DaskResource(),
    "redis": RedisResource(),
}

defs = Definitions(
    assets=ASSETS,
    asset_checks=ASSET_CHECKS,
    jobs=JOBS,
    schedules=SCHEDULES,
    sensors=SENSORS,
    resources=RESOURCES,
)
