"""The platform running itself, from a landing file to the running scoring service.

Days 1..N-1 land, `landing_folder_sensor` turns them into one `daily_features_job` run and
`features_updated_sensor` into a `retrain_job` run (training set, model, gate, deployment, online
store). The service starts (uvicorn, real HTTP, the real Redis under a key prefix of its own).
The test runs in two configurations: today's (a local data folder, a single Redis) and the
scale-out one (FRAUD_DATA_DIR an S3 bucket on a moto server, a 3-master Redis Cluster).
Then day N lands: the landing sensor's run computes its features; the retrain sensor first
refreshes only the online store (the retrain is debounced) and, once the interval is over,
retrains: a new model version is deployed, the store's `active` namespace moves, and the service
that never restarted serves the new version and the new day's entity state.

Sensors are ticked with `build_sensor_context` against a persistent temporary instance and the
runs they request are executed in process, as the daemon would launch them.
"""

from __future__ import annotations

import contextlib
import json
import uuid
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path

import httpx
import pandas as pd
import pytest
from dagster import (
    Definitions,
    ExecuteInProcessResult,
    SensorDefinition,
    SensorResult,
    build_sensor_context,
    instance_for_test,
)

from fraud_assets.assets.deployed_model import PromotionGate
from fraud_assets.definitions import ASSET_CHECKS, ASSETS
from fraud_assets.jobs import daily_features_job, online_store_job, retrain_job
from fraud_assets.lib.redis_clients import connect
from fraud_assets.resources import DataLayoutResource, RedisResource
from fraud_assets.sensors import features_updated_sensor, landing_folder_sensor
from fraud_assets.sensors.retrain import MIN_INTERVAL_ENV
from fraud_assets.sensors.ticks import SELECTION_EVERY_ENV
from fraud_core.generator import write_landing_files
from fraud_core.model.artifact import current_version
from fraud_core.online_keys import CLUSTER_ENV, OnlineKeys
from fraud_core.redis_server import ensure_redis
from fraud_core.storage import DataLayout
from fraud_serving.settings import Settings

from ..configs import MODEL_DATA as DATA
from ..configs import START, TRAINING_OPS, feature_resources
from ..serving.support import app_in_thread
from .conftest import poll

NEW_DAY = START + timedelta(days=DATA.days - 1)
# The deployment's run config per job (what the daemon would launch the sensors' requests with).
RUN_CONFIG = {retrain_job.name: {"ops": TRAINING_OPS}}
API_KEY = "e2e-key"


def _defs(redis_url: str, gate: PromotionGate | None = None) -> Definitions:
    return Definitions(
        assets=ASSETS,
        asset_checks=ASSET_CHECKS,
        jobs=[daily_features_job, retrain_job, online_store_job],
        sensors=[landing_folder_sensor, features_updated_sensor],
        resources=feature_resources(  # the data folder is $FRAUD_DATA_DIR
            redis=RedisResource(url=redis_url),
            # The production gate: a retrain on one more day moves the point AP by about +-0.01
            # here, which the gate's paired bootstrap tells apart from a worse model.
            gate=gate or PromotionGate(),
        ),
    )


class Platform:
    """Ticks sensors with the cursor of their previous tick and executes what they request."""

    def __init__(self, instance, defs: Definitions) -> None:
        self.instance, self.defs = instance, defs
        self.cursors: dict[str, str | None] = {}

    def tick(self, sensor: SensorDefinition) -> SensorResult:
        context = build_sensor_context(
            instance=self.instance,
            cursor=self.cursors.get(sensor.name),
            resources={"layout": DataLayoutResource()},
        )
        result = sensor(context)
        assert isinstance(result, SensorResult)
        self.cursors[sensor.name] = result.cursor
        return result

    def execute(self, result: SensorResult, default_job: str) -> list[ExecuteInProcessResult]:
        runs = []
        for request in result.run_requests:
            job = self.defs.resolve_job_def(request.job_name or default_job)
            run = job.execute_in_process(
                instance=self.instance, tags=request.tags, run_config=RUN_CONFIG.get(job.name)
            )
            assert run.success, f"{job.name} failed"
            runs.append(run)
        return runs


def _jobs(result: SensorResult) -> list[str]:
    return [r.job_name for r in result.run_requests]


def _skip(result: SensorResult) -> str:
    assert not result.run_requests and result.skip_reason is not None
    return result.skip_reason.skip_message or ""


@pytest.fixture(params=["local-single", "s3-cluster"])
def cluster(request, monkeypatch) -> bool:
    """Both configurations: a local folder and a single Redis; an S3 bucket and the session's
    3-master Redis Cluster ($FRAUD_REDIS_CLUSTER=1 for the code location, as a deployment sets
    it). True for the second."""
    scale_out = request.param == "s3-cluster"
    monkeypatch.setenv(CLUSTER_ENV, "1" if scale_out else "0")
    return scale_out


@pytest.fixture
def redis_url(cluster: bool, request) -> Iterator[str]:
    if cluster:
        yield request.getfixturevalue("redis_cluster").url
        return
    handle = ensure_redis()
    yield handle.url
    handle.stop()


@pytest.fixture
def prefix(redis_url: str, cluster: bool, monkeypatch) -> Iterator[str]:
    """A key prefix of this test for the loader ($FRAUD_REDIS_PREFIX) and the service; its keys
    are deleted afterwards."""
    value = f"test:e2e:{uuid.uuid4().hex}:"
    monkeypatch.setenv("FRAUD_REDIS_PREFIX", value)
    yield value
    client = connect(redis_url, cluster=cluster)
    try:
        keys = list(client.scan_iter(match=value + "*", count=10_000))
        for start in range(0, len(keys), 5_000):
            client.unlink(*keys[start : start + 5_000])
    finally:
        client.close()


@pytest.fixture
def data_dir(tmp_path: Path, cluster: bool, request, monkeypatch) -> DataLayout:
    layout = DataLayout.at(request.getfixturevalue("s3_root") if cluster else tmp_path / "data")
    monkeypatch.setenv("FRAUD_DATA_DIR", str(layout.root))
    monkeypatch.delenv("DASK_SCHEDULER_ADDRESS", raising=False)
    monkeypatch.delenv("FRAUD_MAX_QUARANTINE_SHARE", raising=False)
    monkeypatch.delenv(MIN_INTERVAL_ENV, raising=False)  # the default debounce: 1 h
    # retrains without a model selection first (tests/assets/test_retrain_sensor.py covers it)
    monkeypatch.setenv(SELECTION_EVERY_ENV, "0")
    return layout


def _deliver(path: Path, layout: DataLayout) -> None:
    """A delivery into the landing folder or bucket: a new file (a fresh ctime) or object."""
    (layout.landing / path.name).write_bytes(path.read_bytes())


@pytest.fixture
def service(
    data_dir: DataLayout, redis_url: str, cluster: bool, prefix: str
) -> Iterator[Callable[[], httpx.Client]]:
    """Starts the scoring service (uvicorn in a thread, real HTTP) when called; it polls the
    registry every 0.1 s (0.5 s in a bucket: a look is 3-5 requests, each a few ms of the local
    S3 server's time) and is stopped at the end of the test."""
    settings = Settings(
        api_keys=frozenset({API_KEY}),
        redis_url=redis_url,
        redis_cluster=cluster,
        key_prefix=prefix,
        data_dir=data_dir.root,
        model_poll_s=0.5 if cluster else 0.1,
    )
    with contextlib.ExitStack() as stack:

        def start() -> httpx.Client:
            url = stack.enter_context(app_in_thread(settings))
            return stack.enter_context(
                httpx.Client(base_url=url, headers={"X-API-Key": API_KEY}, timeout=10)
            )

        yield start


def _wait_for(predicate, timeout_s: float = 15.0):
    value = poll(predicate, timeout_s)
    if not value:
        raise AssertionError("condition not met in time")
    return value


def _active(redis_url: str, prefix: str) -> str | None:
    keys = OnlineKeys.from_env(prefix)
    client = connect(redis_url, cluster=keys.cluster)
    try:
        value = client.get(keys.active)
    finally:
        client.close()
    return value.decode() if value is not None else None


def test_a_landed_day_retrains_deploys_and_reaches_the_running_service(
    tmp_path, data_dir: DataLayout, redis_url: str, prefix: str, service, monkeypatch
) -> None:
    incoming = tmp_path / "incoming"
    files = sorted(write_landing_files(DATA, incoming))
    data_dir.landing.mkdir(parents=True, exist_ok=True)
    for path in files[:-1]:
        _deliver(path, data_dir)
    registry = data_dir.models

    with instance_for_test() as instance:
        platform = Platform(instance, _defs(redis_url))

        # Days 1..N-1: one features run, then a retrain with nothing deployed yet.
        landing = platform.tick(landing_folder_sensor)
        assert len(landing.run_requests) == 1
        platform.execute(landing, daily_features_job.name)
        first = platform.tick(features_updated_sensor)
        assert _jobs(first) == [retrain_job.name]
        [run] = platform.execute(first, retrain_job.name)
        materialized = {e.asset_key.path[0] for e in run.get_asset_materialization_events()}
        assert materialized == {"training_set", "fraud_model", "deployed_model", "online_store"}
        champion = current_version(registry)
        namespace = _active(redis_url, prefix)
        assert champion is not None and namespace is not None
        assert "up to date" in _skip(platform.tick(features_updated_sensor))

        client = service()
        assert client.get("/v1/model").json()["version"] == champion
        assert client.get("/ready").json()["namespace"] == namespace

        # Day N lands.
        _deliver(files[-1], data_dir)
        landing = platform.tick(landing_folder_sensor)
        assert [(r.tags["dagster/asset_partition_range_start"]) for r in landing.run_requests] == [
            NEW_DAY.isoformat()
        ]
        platform.execute(landing, daily_features_job.name)

        # The retrain is debounced (the last one was requested moments ago): serving gets the
        # new day's entity states at once, the model stays.
        debounced = platform.tick(features_updated_sensor)
        assert _jobs(debounced) == [online_store_job.name]
        platform.execute(debounced, online_store_job.name)
        refreshed = _active(redis_url, prefix)
        assert refreshed != namespace
        assert current_version(registry) == champion
        assert "debounced" in _skip(platform.tick(features_updated_sensor))

        # The interval is over: one retrain of the four assets, deployed and loaded.
        monkeypatch.setenv(MIN_INTERVAL_ENV, "0")
        due = platform.tick(features_updated_sensor)
        assert _jobs(due) == [retrain_job.name]
        [run] = platform.execute(due, retrain_job.name)
        model_meta = {
            e.asset_key.path[0]: {k: v.value for k, v in e.materialization.metadata.items()}
            for e in run.get_asset_materialization_events()
        }
        assert model_meta["training_set"]["cutoff"] == str(NEW_DAY + timedelta(days=1))
        assert model_meta["deployed_model"]["action"] == "promoted"
        new_version = current_version(registry)
        assert new_version == model_meta["fraud_model"]["version"] != champion
        assert json.loads((registry / "current.json").read_text())["version"] == new_version
        switched = _active(redis_url, prefix)
        assert switched not in (namespace, refreshed)
        assert "up to date" in _skip(platform.tick(features_updated_sensor))

        # A model the gate refuses (here: below an AP floor of 0.99) is not deployed, but the
        # run still loads the online store.
        strict = _defs(redis_url, PromotionGate(min_average_precision=0.99))
        refused = strict.resolve_job_def(retrain_job.name).execute_in_process(
            instance=instance, run_config=RUN_CONFIG[retrain_job.name], raise_on_error=False
        )
        assert not refused.success
        [gate] = [
            c for c in refused.get_asset_check_evaluations() if c.asset_key.path == ["fraud_model"]
        ]
        assert not gate.passed and "below the floor" in gate.description
        materialized = {e.asset_key.path[0] for e in refused.get_asset_materialization_events()}
        assert materialized == {"training_set", "fraud_model", "online_store"}
        assert current_version(registry) == new_version
        reloaded = _active(redis_url, prefix)
        assert reloaded != switched

    # The service, never restarted, serves the new model on the new namespace...
    _wait_for(lambda: client.get("/v1/model").json()["version"] == new_version)
    assert client.get("/ready").json()["namespace"] == reloaded
    # ... with the new day's orders in the entity state, and scores a new-day customer's order.
    new_orders = pd.read_parquet(files[-1])
    row = new_orders.sort_values("order_date").iloc[-1]
    history = client.get(f"/v1/entities/customer_id/{row['customer_id']}").json()
    assert str(row["order_id"]) in {e["order_id"] for e in history["events"]}
    order = {
        "order_id": f"e2e-{uuid.uuid4().hex[:8]}",
        "order_date": (
            pd.Timestamp(NEW_DAY, tz="UTC") + pd.Timedelta(hours=23, minutes=59, seconds=59)
        )
        .isoformat()
        .replace("+00:00", "Z"),
        "customer_id": str(row["customer_id"]),
        "email": str(row["email"]),
        "ip_addr": str(row["ip_addr"]),
        "order_amount": float(row["order_amount"]),
    }
    scored = client.post("/v1/score", json=order)
    assert scored.status_code == 200, scored.text
    answer = scored.json()
    assert answer["model_version"] == new_version
    assert answer["new_entities"] == []
    assert 0.0 <= answer["score"] <= 1.0
    # the audit trail is read from the data folder or bucket (promotions are recorded there)
    audit = client.get("/v1/audit")
    assert audit.status_code == 200, audit.text
    assert isinstance(audit.json(), list)
