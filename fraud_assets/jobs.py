"""Jobs of the code location: named selections that the CLI, schedules and sensors launch."""

from __future__ import annotations

from dagster import AssetSelection, define_asset_job, in_process_executor

from fraud_assets.assets.backtest_report import backtest_report
from fraud_assets.assets.decision_log import decision_log
from fraud_assets.assets.deployed_model import deployed_model
from fraud_assets.assets.entity_features import entity_features, entity_features_checks
from fraud_assets.assets.feature_drift import feature_drift
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
from fraud_assets.assets.training_set import training_set
from fraud_assets.lib.dask_executor import partition_safe_dask_executor

# Landing files in, validated and bucketed orders out, with their checks (partitioning is
# inferred from the assets: daily).
ingest_orders_job = define_asset_job(
    "ingest_orders_job",
    selection=AssetSelection.assets(raw_orders, orders_by_entity),
    description="Validate the landing files of the selected days and bucket them by entity.",
)

# Behavioural features of the selected days, carried over from the day before (their drift
# follows: feature_drift_sensor).
entity_features_job = define_asset_job(
    "entity_features_job",
    selection=AssetSelection.assets(entity_features),
    description="Compute every order's point-in-time features for the selected days (one pass).",
)

# What the landing-folder sensor launches: landing files -> validated orders -> buckets ->
# features, with every check, over one day or a range of days in ONE run. Its runs share the
# "daily_features" lane (dagster.yaml limits the lane to one run at a time), so two ranges never
# write the carried-over entity state at once and run in the order they were requested. The
# features' drift is not on this path to serving: feature_drift_sensor requests it afterwards.
DAILY_FEATURES_LANE = {"fraud/lane": "daily_features"}
# The daily lane's assets and their checks: one list for both daily jobs and for anything that
# assembles a code location of just this lane (the tests do).
DAILY_FEATURE_ASSETS = (raw_orders, orders_by_entity, entity_features)
DAILY_FEATURE_CHECKS = (raw_orders_checks, orders_by_entity_checks, entity_features_checks)
daily_features_job = define_asset_job(
    "daily_features_job",
    selection=AssetSelection.assets(*DAILY_FEATURE_ASSETS),
    # One process for the run: the parallel work is Dask's, inside the steps. The default
    # multiprocess executor paid ~10 s of interpreter start-up per step (measured: 115 s for a
    # 100-order day under the daemon, 2 cores).
    executor_def=in_process_executor,
    tags=DAILY_FEATURES_LANE,
    description="Ingest the selected days' landing files and compute their features, checked.",
)

# The same pipeline with each step a Dask task (dagster-dask's executor, made safe for
# partitioned runs): run config `execution: {config: {cluster: {existing: {address: tcp://…}}}}`
# or, without it, a LocalCluster for the run. Steps' own Dask work runs on that cluster too.
daily_features_dask_job = define_asset_job(
    "daily_features_dask_job",
    selection=AssetSelection.assets(*DAILY_FEATURE_ASSETS),
    executor_def=partition_safe_dask_executor,
    tags=DAILY_FEATURES_LANE,
    description="daily_features_job with every step run as a task on a Dask cluster.",
)

# Everything that writes the model registry or the online store shares the "retrain" lane
# (dagster.yaml: one run at a time), so two trainings never race on the registry's candidate and
# two loads never race on the store's `active` pointer; features_updated_sensor also waits for it.
RETRAIN_LANE = {"fraud/lane": "retrain"}

# Training set -> model -> promotion gate -> deployed model (unpartitioned; a refused model
# stops at the gate and the champion keeps serving).
train_model_job = define_asset_job(
    "train_model_job",
    selection=AssetSelection.assets(training_set, fraud_model, deployed_model),
    tags=RETRAIN_LANE,
    description="Build the training set at the cutoff, train and evaluate a model, and deploy "
    "it if it passes the promotion gate.",
)

# What features_updated_sensor launches when new entity_features days arrive: the model path
# above plus a fresh online store (its entity states do not depend on the model, so a model
# refused by the gate still leaves serving with the newest states). One process per run, as
# daily_features_job.
retrain_job = define_asset_job(
    "retrain_job",
    selection=AssetSelection.assets(training_set, fraud_model, deployed_model, online_store),
    executor_def=in_process_executor,
    tags=RETRAIN_LANE,
    description="Retrain, gate and deploy the model on the newest features and load their "
    "entity states into the online store.",
)

# The same after a fresh model selection: features_updated_sensor's choice when the latest
# selection is older than $FRAUD_SELECTION_EVERY_DAYS (fraud_model then trains with its setting).
select_and_retrain_job = define_asset_job(
    "select_and_retrain_job",
    selection=AssetSelection.assets(
        model_selection, training_set, fraud_model, deployed_model, online_store
    ),
    executor_def=in_process_executor,
    tags=RETRAIN_LANE,
    description="Select hyperparameters on time-ordered folds, then retrain, gate and deploy "
    "the model and load the online store.",
)

# Model selection alone, on demand (its result serves the next fraud_model run).
model_selection_job = define_asset_job(
    "model_selection_job",
    selection=AssetSelection.assets(model_selection),
    tags=RETRAIN_LANE,
    description="Select the model's hyperparameters on time-ordered folds of the features.",
)

# A candidate decision policy replayed next to the active one and, when its guardrails hold,
# made active: what policy_candidate_sensor launches when a policy is submitted.
policy_job = define_asset_job(
    "policy_job",
    selection=AssetSelection.assets(policy_replay, active_policy),
    description="Replay the candidate policy next to the active one; activate it when the "
    "guardrails hold.",
)

# The online store alone: the sensor's choice when new features arrive while a retrain is
# debounced (serving gets the newest entity states now, the model later).
online_store_job = define_asset_job(
    "online_store_job",
    selection=AssetSelection.assets(online_store),
    executor_def=in_process_executor,
    tags=RETRAIN_LANE,
    description="Load the newest end-of-day entity states into a new Redis namespace and switch "
    "the service to it.",
)

# The feedback loop's jobs (the drains, the judged days, freshness) run in one process and yield
# to the daily lane and retraining in the run queue (QueuedRunCoordinator dequeues higher
# `dagster/priority` first): what the service scores with comes first, what judges it follows.
MONITORING_PRIORITY = {"dagster/priority": "-1"}


def _monitoring_job(name: str, selection: AssetSelection, description: str):
    return define_asset_job(
        name,
        selection=selection,
        executor_def=in_process_executor,
        tags=MONITORING_PRIORITY,
        description=description,
    )


# The drift of the selected days against the model served now (its training window; before the
# first model, the days before): what feature_drift_sensor launches over the days with new
# features, and over every day with features when a new model is served. It only reads features,
# so it takes no lane, and it yields to what serves in the run queue.
feature_drift_job = _monitoring_job(
    "feature_drift_job",
    AssetSelection.assets(feature_drift),
    "Compute the selected days' feature drift (PSI) against the deployed model's training "
    "window, checked.",
)

# The feedback loop in two runs: one drain of both streams the service writes (decisions and
# posted labels; unpartitioned), then one run over the days the drain touched (daily partitions:
# a job holds assets of one partitioning) that brings each day's scored orders and labels up to
# date and judges it. The single-asset jobs below are what the other sensors and people run.
feedback_drain_job = _monitoring_job(
    "feedback_drain_job",
    AssetSelection.assets(decision_log, label_log),
    "Move the scoring service's decision log and posted labels from Redis into parquet segments.",
)
served_days_job = _monitoring_job(
    "served_days_job",
    AssetSelection.assets(scored_orders, labels, model_performance, serving_skew),
    "Each selected day's scored orders and labels, then its realized performance and serving skew.",
)
labels_job = _monitoring_job(
    "labels_job",
    AssetSelection.assets(labels),
    "Each selected label day's events from the label files and the posted labels.",
)
model_performance_job = _monitoring_job(
    "model_performance_job",
    AssetSelection.assets(model_performance),
    "Each selected served day's realized performance with the labels known so far.",
)
serving_skew_job = _monitoring_job(
    "serving_skew_job",
    AssetSelection.assets(serving_skew),
    "Each selected served day's features as served against the offline ones.",
)
# The freshness checks of the data the service depends on (no asset is materialized).
freshness_checks_job = _monitoring_job(
    "freshness_checks_job",
    AssetSelection.checks(*FRESHNESS_CHECKS),
    "Check that raw orders, features, the online store and the deployed model are recent "
    "enough, against the platform's clock.",
)

# The prequential backtest of the model against the rules baseline.
backtest_job = define_asset_job(
    "backtest_job",
    selection=AssetSelection.assets(backtest_report),
    description="Backtest the training code fold by fold against the rules baseline.",
)
