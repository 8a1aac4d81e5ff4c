"""`features_updated_sensor`: new `entity_features` days retrain, gate and deploy the model and
reload the online store, with no one pressing a button.

Each tick compares the storage id of the newest `entity_features` materialization with the
cursor, `{"seen": id, "trained": id, "retrain_requested_at": epoch s}`:

- nothing newer than `seen` and `trained`: skip;
- a run of the daily-features lane is queued or running (more days or a re-run of later days are
  coming, the features are not final yet), or a run of the retrain lane is (at most one retrain
  in flight): skip and keep the cursor, so the next tick looks again. A run that still says it is
  starting, running or cancelling but was created before the newest successful run of its lane
  is not waited on: a lane runs one run at a time (dagster.yaml), so such a run is the leftover
  of a dead run worker (killed, its machine restarted) that run monitoring has not failed yet;
  waiting on it would hold retraining until then even though a later run redid its work;
- newer than `trained` and the last retrain was requested at least `FRAUD_RETRAIN_MIN_INTERVAL_S`
  (default 1 h) ago: `retrain_job` (training_set, fraud_model, gate, deployed_model,
  online_store), run key `retrain:<storage id>`; when the latest `model_selection` is older than
  `FRAUD_SELECTION_EVERY_DAYS` (default 7; 0: never) or there is none, `select_and_retrain_job`
  instead, which selects the hyperparameters first (run key `select+retrain:<storage id>`);
- otherwise (a retrain is debounced): `online_store_job`, so serving gets the newest entity
  states now; the retrain stays due and is requested on the first tick after the interval.

A model that is already newer than the features is not retrained, with or without a cursor (new,
reset in the UI, or older than runs launched by hand): a `fraud_model` (or `online_store`)
materialized after the newest `entity_features` counts as having seen them.

Why not declarative automation: `AutomationCondition.eager()` on these unpartitioned assets never
fires, because they "miss" a dependency while any daily partition since FRAUD_START_DATE lacks
features, and conditions have no debounce or lane awareness; a sensor states both directly.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime

from dagster import (
    AssetKey,
    DagsterInstance,
    DagsterRunStatus,
    DefaultSensorStatus,
    RunRequest,
    RunsFilter,
    SensorEvaluationContext,
    SensorResult,
    SkipReason,
    sensor,
)

from fraud_assets.jobs import (
    DAILY_FEATURES_LANE,
    RETRAIN_LANE,
    online_store_job,
    retrain_job,
    select_and_retrain_job,
)
from fraud_assets.sensors.keys import ENTITY_FEATURES, FRAUD_MODEL, MODEL_SELECTION, ONLINE_STORE
from fraud_assets.sensors.ticks import (
    DEFAULT_SELECTION_EVERY_DAYS,
    MIN_INTERVAL_ENV,
    SELECTION_EVERY_ENV,
    tick_interval_s,
)
from fraud_core.env import env_number

DEFAULT_MIN_INTERVAL_S = 3600.0
TICK_INTERVAL_S = 60
# A run created but never launched (its launcher died) must not block retraining forever.
NOT_STARTED_GRACE_S = 3600.0
IN_FLIGHT = [
    DagsterRunStatus.QUEUED,
    DagsterRunStatus.STARTING,
    DagsterRunStatus.STARTED,
    DagsterRunStatus.CANCELING,
]
# The in-flight statuses that claim a run worker. A queued run is not superseded by a newer
# success: it has not run yet, and the queue will start it.
CLAIMS_A_WORKER = {DagsterRunStatus.STARTING, DagsterRunStatus.STARTED, DagsterRunStatus.CANCELING}


@dataclass
class RetrainCursor:
    seen: int = 0  # newest entity_features storage id the online store was (re)loaded for
    trained: int = 0  # newest entity_features storage id a retrain was requested for
    retrain_requested_at: float = 0.0

    @classmethod
    def read(cls, text: str | None) -> RetrainCursor | None:
        if not text:
            return None
        try:
            data = json.loads(text)
            return cls(int(data["seen"]), int(data["trained"]), float(data["retrain_requested_at"]))
        except (ValueError, TypeError, KeyError):
            return None  # unreadable: start over from the asset records

    def write(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)


def min_retrain_interval_s() -> float:
    text = os.environ.get(MIN_INTERVAL_ENV, "").strip()
    return float(text) if text else DEFAULT_MIN_INTERVAL_S


def selection_every_s() -> float:
    """How old the latest model selection may be before a retrain selects again (0: never)."""
    return 86_400.0 * env_number(SELECTION_EVERY_ENV, DEFAULT_SELECTION_EVERY_DAYS, float, low=0)


def selection_due(instance: DagsterInstance, now: float, every_s: float) -> bool:
    """Whether the next retrain selects first: never when `every_s` is 0, else when no
    `model_selection` was materialized or the latest is at least `every_s` old."""
    if every_s <= 0:
        return False
    records = instance.fetch_materializations(MODEL_SELECTION, limit=1).records
    return not records or now - records[0].timestamp >= every_s


def latest_storage_id(instance: DagsterInstance, key: AssetKey) -> int:
    """Storage id of the asset's newest materialization (any partition), 0 when none."""
    records = instance.fetch_materializations(key, limit=1).records
    return records[0].storage_id if records else 0


def initial_cursor(instance: DagsterInstance, features: int) -> RetrainCursor:
    """No cursor: what the asset records say was already done with the newest features."""
    model = latest_storage_id(instance, FRAUD_MODEL)
    store = latest_storage_id(instance, ONLINE_STORE)
    return RetrainCursor(
        seen=features if store > features else 0,
        trained=features if model > features else 0,
    )


@dataclass
class LaneRuns:
    in_flight: list[str]  # run ids the sensor waits for
    superseded: list[str]  # claim a worker, but a newer run of the lane has succeeded since


def lane_runs(instance: DagsterInstance, lane: dict[str, str], now: float) -> LaneRuns:
    """The lane's runs that are queued, starting, running or being cancelled (and the ones
    created but not launched yet, for a while), split into those to wait for and those that a
    newer successful run of the lane supersedes (see the module docstring)."""
    busy = instance.get_run_records(RunsFilter(tags=lane, statuses=IN_FLIGHT), limit=5)
    waiting = instance.get_run_records(
        RunsFilter(
            tags=lane,
            statuses=[DagsterRunStatus.NOT_STARTED],
            created_after=datetime.fromtimestamp(now - NOT_STARTED_GRACE_S, tz=UTC),
        ),
        limit=5,
    )
    success = instance.get_run_records(
        RunsFilter(tags=lane, statuses=[DagsterRunStatus.SUCCESS]), limit=1
    )
    # Storage ids grow with creation, without the ties of timestamps. Records come newest first,
    # so the five fetched always include any run newer than the newest success.
    newest_success = success[0].storage_id if success else 0
    result = LaneRuns(in_flight=[], superseded=[])
    for record in [*busy, *waiting]:
        dead = record.dagster_run.status in CLAIMS_A_WORKER and record.storage_id < newest_success
        (result.superseded if dead else result.in_flight).append(record.dagster_run.run_id)
    return result


def runs_in_flight(instance: DagsterInstance, lane: dict[str, str], now: float) -> list[str]:
    """Ids of the lane's runs the sensor waits for (see `lane_runs`)."""
    return lane_runs(instance, lane, now).in_flight


@dataclass
class RetrainPlan:
    cursor: RetrainCursor | None  # None: still no cursor (nothing materialized yet)
    run_request: RunRequest | None = None
    skip: str | None = None
    superseded: list[str] = field(default_factory=list)  # in-flight runs not waited on


def plan_retrain(
    instance: DagsterInstance,
    cursor: RetrainCursor | None,
    now: float,
    min_interval_s: float,
    selection_every_s: float = 0.0,
) -> RetrainPlan:
    """The decision of one tick (see the module docstring)."""
    features = latest_storage_id(instance, ENTITY_FEATURES)
    if features == 0:
        return RetrainPlan(cursor, skip="no entity_features materialized yet")
    # What the asset records say was done counts on every tick, not only without a cursor: a
    # model or store materialized after the newest features (a run launched by hand, the demo's
    # own runs) has seen them, so an old cursor does not retrain what is already trained.
    done, cursor = initial_cursor(instance, features), cursor or RetrainCursor()
    cursor = RetrainCursor(
        seen=max(cursor.seen, done.seen),
        trained=max(cursor.trained, done.trained),
        retrain_requested_at=cursor.retrain_requested_at,
    )
    retrain_due = features > cursor.trained
    store_due = features > cursor.seen
    if not (retrain_due or store_due):
        return RetrainPlan(
            cursor, skip=f"model and online store are up to date (entity_features #{features})"
        )
    superseded: list[str] = []
    for lane, what in ((DAILY_FEATURES_LANE, "features"), (RETRAIN_LANE, "retrain/store")):
        runs = lane_runs(instance, lane, now)
        superseded += runs.superseded
        if runs.in_flight:
            busy = ", ".join(runs.in_flight)
            return RetrainPlan(
                cursor, skip=f"waiting: {what} run(s) in flight ({busy})", superseded=superseded
            )
    tags = {"fraud/source": "features_updated_sensor", "fraud/entity_features_id": str(features)}
    wait_s = cursor.retrain_requested_at + min_interval_s - now
    if retrain_due and wait_s <= 0:
        if selection_due(instance, now, selection_every_s):
            key, job = f"select+retrain:{features}", select_and_retrain_job
        else:
            key, job = f"retrain:{features}", retrain_job
        request = RunRequest(run_key=key, job_name=job.name, tags={**tags, **RETRAIN_LANE})
        return RetrainPlan(
            RetrainCursor(features, features, now), run_request=request, superseded=superseded
        )
    if store_due:
        request = RunRequest(
            run_key=f"online_store:{features}",
            job_name=online_store_job.name,
            tags={**tags, **RETRAIN_LANE},
        )
        return RetrainPlan(
            RetrainCursor(features, cursor.trained, cursor.retrain_requested_at),
            run_request=request,
            superseded=superseded,
        )
    return RetrainPlan(
        cursor,
        skip=f"retrain due (entity_features #{features}), debounced for {wait_s:.0f} s more "
        f"(${MIN_INTERVAL_ENV} = {min_interval_s:.0f})",
        superseded=superseded,
    )


@sensor(
    name="features_updated_sensor",
    jobs=[retrain_job, select_and_retrain_job, online_store_job],
    minimum_interval_seconds=tick_interval_s(TICK_INTERVAL_S),
    default_status=DefaultSensorStatus.RUNNING,
    description=(
        "New entity_features materializations start retrain_job (training set, model, promotion "
        "gate, deployed model, online store) once the daily-features lane is idle, at most one "
        f"at a time and at most once per ${MIN_INTERVAL_ENV} (default 1 h); in between, "
        "online_store_job refreshes the entity states that serving reads. When the latest "
        f"model_selection is older than ${SELECTION_EVERY_ENV} days (default "
        f"{DEFAULT_SELECTION_EVERY_DAYS:g}; 0: never), select_and_retrain_job selects the "
        "hyperparameters first."
    ),
)
def features_updated_sensor(context: SensorEvaluationContext) -> SensorResult:
    plan = plan_retrain(
        context.instance,
        RetrainCursor.read(context.cursor),
        now=time.time(),
        min_interval_s=min_retrain_interval_s(),
        selection_every_s=selection_every_s(),
    )
    if plan.superseded:
        context.log.warning(
            "not waiting for run(s) still marked in flight that a newer successful run of their "
            f"lane superseded (dead run workers? run monitoring fails them): {plan.superseded}"
        )
    if plan.run_request is not None:
        context.log.info(f"requesting {plan.run_request.job_name} ({plan.run_request.run_key})")
    return SensorResult(
        run_requests=[plan.run_request] if plan.run_request else [],
        skip_reason=SkipReason(plan.skip) if plan.skip else None,
        cursor=plan.cursor.write() if plan.cursor else context.cursor,
    )
