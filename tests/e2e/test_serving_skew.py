"""Online/offline skew on real traffic (issue 16): a real Redis, the Litestar app over HTTP and
Dagster `materialize` on generated data.

Days 0..3 land and get features; the online store loads their snapshot. One service (its own key
prefix) scores day 4's orders as they happen: a consistent setup. Another, on a store loaded from
the same day-3 snapshot, scores day 5's orders without ever seeing day 4: a stale store. Then days
4 and 5 land, and `serving_skew_sensor` asks for both days: day 4 matches to the last feature,
day 5 fails its check, naming the velocity features and the cause.
"""

from __future__ import annotations

import json
import uuid
from datetime import timedelta

import pandas as pd
import pytest
import redis
from dagster import build_sensor_context, instance_for_test, materialize
from litestar.testing import TestClient

from fraud_assets.assets.decision_log import decision_log
from fraud_assets.assets.online_store import online_store
from fraud_assets.assets.scored_orders import scored_orders
from fraud_assets.assets.serving_skew import SERVING_FEATURES_MATCH_OFFLINE
from fraud_assets.definitions import defs
from fraud_assets.partitions import partition_range_tags
from fraud_assets.resources import DataLayoutResource, RedisResource
from fraud_assets.sensors.skew import serving_skew_sensor
from fraud_core.generator import GeneratorConfig, write_landing_files
from fraud_core.redis_server import ensure_redis
from fraud_core.storage import DataLayout
from fraud_serving.app import create_app
from fraud_serving.settings import Settings

from ..configs import FEATURE_LANE, START, feature_resources
from ..serving.support import delete_prefix, deploy, payload, trained_booster

API_KEY = "skew-key"
DAYS = [START + timedelta(days=i) for i in range(6)]


@pytest.fixture
def platform(tmp_path, monkeypatch):
    handle = ensure_redis()
    monkeypatch.setenv("FRAUD_DATA_DIR", str(tmp_path))
    monkeypatch.delenv("DASK_SCHEDULER_ADDRESS", raising=False)
    monkeypatch.delenv("FRAUD_SKEW_MAX_SHARE", raising=False)
    prefixes = [f"test-skew:{uuid.uuid4().hex[:8]}:{name}:" for name in ("fresh", "stale")]
    yield handle.url, prefixes, DataLayout(tmp_path)
    for prefix in prefixes:
        delete_prefix(handle.url, prefix)


def _score(url: str, prefix: str, layout: DataLayout, orders: pd.DataFrame) -> None:
    settings = Settings(
        api_keys=frozenset({API_KEY}), redis_url=url, key_prefix=prefix, data_dir=layout.root
    )
    with TestClient(create_app(settings)) as http:
        http.headers["X-API-Key"] = API_KEY
        for _, row in orders.sort_values(["order_date", "order_id"]).iterrows():
            got = http.post("/v1/score", json=payload(row))
            assert got.status_code == 200, got.text


def test_skew_is_zero_on_a_consistent_setup_and_named_on_a_stale_store(platform, tmp_path):
    url, (fresh, stale), layout = platform
    incoming = tmp_path / "incoming"
    config = GeneratorConfig(
        n_customers=150, n_emails=150, n_ips=100, orders_per_day=80, days=6, start=START, seed=9
    )
    files = dict(zip(DAYS, sorted(write_landing_files(config, incoming)), strict=True))
    frames = {day: pd.read_parquet(path) for day, path in files.items()}
    layout.landing.mkdir(parents=True, exist_ok=True)
    for day in DAYS[:4]:
        files[day].rename(layout.landing / files[day].name)
    resources = feature_resources(redis=RedisResource(url=url))
    deploy(layout.models, trained_booster())

    with instance_for_test() as instance:

        def run(assets, **kwargs):
            result = materialize(assets, resources=resources, instance=instance, **kwargs)
            assert result.success
            return result

        run(FEATURE_LANE, tags=partition_range_tags(DAYS[0], DAYS[3]))
        for prefix in (fresh, stale):
            config = {"ops": {"online_store": {"config": {"key_prefix": prefix}}}}
            run([online_store], run_config=config)

        _score(url, fresh, layout, frames[DAYS[4]])
        _score(url, stale, layout, frames[DAYS[5]])
        for prefix in (fresh, stale):
            run(
                [decision_log],
                run_config={"ops": {"decision_log": {"config": {"key_prefix": prefix}}}},
            )
        run([scored_orders], tags=partition_range_tags(DAYS[4], DAYS[5]))

        # before the days land: nothing to compare
        context = build_sensor_context(
            instance=instance, resources={"layout": DataLayoutResource()}
        )
        early = serving_skew_sensor(context)
        assert not early.run_requests

        for day in DAYS[4:]:
            files[day].rename(layout.landing / files[day].name)
        run(FEATURE_LANE, tags=partition_range_tags(DAYS[4], DAYS[5]))
        context = build_sensor_context(
            instance=instance, cursor=early.cursor, resources={"layout": DataLayoutResource()}
        )
        (request,) = serving_skew_sensor(context).run_requests
        assert request.tags == partition_range_tags(DAYS[4], DAYS[5])
        job = defs.resolve_job_def(request.job_name)
        result = job.execute_in_process(instance=instance, tags=request.tags)
        assert result.success

    fine = json.loads(layout.serving_skew(DAYS[4]).read_text())
    served = len(frames[DAYS[4]])
    assert fine["served"] == fine["compared"] == served and fine["never_arrived"] == 0
    assert fine["mismatched"] == 0 and fine["share"] == 0 and fine["features"] == {}

    off = json.loads(layout.serving_skew(DAYS[5]).read_text())
    assert off["compared"] == len(frames[DAYS[5]])
    assert off["share"] > 0.3
    assert off["causes"] == {"store_stale": off["mismatched"]}
    assert "customer_id__order_count__7d" in off["features"]
    assert off["features"]["customer_id__order_count__7d"]["max_abs_diff"] >= 1

    (check,) = result.get_asset_check_evaluations()
    assert check.check_name == SERVING_FEATURES_MATCH_OFFLINE and not check.passed
    assert DAYS[5].isoformat() in check.description and "store_stale" in check.description
    assert DAYS[4].isoformat() not in check.description.split("failed:")[1]
    client = redis.Redis.from_url(url)
    try:
        assert client.xlen(f"{fresh}decisions") == 0 and client.xlen(f"{stale}decisions") == 0
    finally:
        client.close()
