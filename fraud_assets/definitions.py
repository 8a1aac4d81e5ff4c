"""The code location: what Dagster loads, assembled in one place, no logic here.

Add a new asset, check, job, schedule or sensor by appending it to its list below;
`from fraud_assets.definitions import defs` is what `workspace.yaml` and the tests load. Every
asset gets its owner and catalog tags from its group here (`fraud_assets.lib.catalog`).
"""

from __future__ import annotations

from dagster import Definitions, in_process_executor, map_asset_specs

from fraud_assets.assets.backtest_report import backtest_report
from fraud_assets.assets.decision_log import decision_log
from fraud_assets.assets.deployed_model import (
    DEPLOYED_MODEL_CHECKS,
    PromotionGate,
    deployed_model,
)
from fraud_assets.assets.entity_features import entity_features, entity_features_checks
from fraud_assets.assets.feature_drift import feature_drift, feature_drift_checks
from fraud_assets.assets.fraud_model import fraud_model
from fraud_assets.assets.freshness import FRESHNESS_CHECKS
from fraud_assets.assets.labels import label_log, labels
from fraud_assets.assets.model_performance import model_performance
from fraud_assets.assets.model_selection import model_selection
from fraud_assets.assets.online_store import online_store
from fraud_assets.assets.orders_by_entity import orders_by_entity, orders_by_entity_checks
from fraud_assets.assets.policy import active_policy, policy_replay
from fraud_assets.assets.raw_orders import raw_orders, raw_orders_checks
from fraud_assets.assets.scored_orders import scored_orders
from fraud_assets.assets.serving_skew import serving_skew
from fraud_assets.assets.training_set import TRAINING_SET_CHECKS, training_set
from fraud_assets.jobs import (
    backtest_job,
    daily_features_dask_job,
    daily_features_job,
    entity_features_job,
    feature_drift_job,
    feedback_drain_job,
    freshness_checks_job,
    ingest_orders_job,
    labels_job,
    model_performance_job,
    model_selection_job,
    online_store_job,
    policy_job,
    retrain_job,
    select_and_retrain_job,
    served_days_job,
    serving_skew_job,
    train_model_job,
)
from fraud_assets.lib.catalog import catalogued
from fraud_assets.resources import DaskResource, DataLayoutResource, RedisResource
from fraud_assets.schedules import freshness_schedule
from fraud_assets.sensors import (
    decision_log_sensor,
    feature_drift_sensor,
    features_updated_sensor,
    label_feed_sensor,
    landing_folder_sensor,
    policy_candidate_sensor,
    serving_skew_sensor,
)

# Owners, `layer` and `dagster/storage_kind` tags by group, one policy for all (lib/catalog.py).
ASSETS = map_asset_specs(
    catalogued,
    [
        raw_orders,
        orders_by_entity,
        entity_features,
        feature_drift,
        training_set,
        model_selection,
        fraud_model,
        deployed_model,
        backtest_report,
        online_store,
        decision_log,
        scored_orders,
        label_log,
        labels,
        model_performance,
        serving_skew,
        policy_replay,
        active_policy,
    ],
)

ASSET_CHECKS = [
    raw_orders_checks,
    orders_by_entity_checks,
    entity_features_checks,
    feature_drift_checks,
    *TRAINING_SET_CHECKS,
    *DEPLOYED_MODEL_CHECKS,
    *FRESHNESS_CHECKS,
]

JOBS = [
    ingest_orders_job,
    entity_features_job,
    feature_drift_job,
    train_model_job,
    backtest_job,
    daily_features_job,
    daily_features_dask_job,
    retrain_job,
    model_selection_job,
    select_and_retrain_job,
    online_store_job,
    feedback_drain_job,
    served_days_job,
    labels_job,
    model_performance_job,
    serving_skew_job,
    freshness_checks_job,
    policy_job,
]

SCHEDULES: list = [freshness_schedule]

SENSORS: list = [
    landing_folder_sensor,
    features_updated_sensor,
    feature_drift_sensor,
    decision_log_sensor,
    label_feed_sensor,
    serving_skew_sensor,
    policy_candidate_sensor,
]

# Defaults read the environment at run time: FRAUD_DATA_DIR, DASK_SCHEDULER_ADDRESS, REDIS_URL.
RESOURCES = {
    "layout": DataLayoutResource(),
    "dask": DaskResource(),
    "redis": RedisResource(),
    "gate": PromotionGate(),
}

defs = Definitions(
    assets=ASSETS,
    # Every run in one process unless its job says otherwise (daily_features_dask_job): the
    # parallel work is Dask's, inside the steps. Dagster's default multiprocess executor starts
    # a process per step, which costs 10-25 s of imports each on 2 cores (measured: a 4-step
    # ingest_orders_job run spent 100 s of its 247 s starting step processes).
    executor=in_process_executor,
    asset_checks=ASSET_CHECKS,
    jobs=JOBS,
    schedules=SCHEDULES,
    sensors=SENSORS,
    resources=RESOURCES,
)
