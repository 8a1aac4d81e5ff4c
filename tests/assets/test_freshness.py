"""Freshness (issue 16): raw orders, features, the online store and the deployed model judged
against the platform's clock, the data's own for historical data, through the real
`freshness_checks_job` on a real Redis."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta

import pandas as pd
import pytest
import redis
import xgboost as xgb
from dagster import instance_for_test

from fraud_assets.definitions import defs
from fraud_core.features.spec import DEFAULT_SPEC
from fraud_core.freshness import data_clock, freshness, limits_h, monitoring_clock
from fraud_core.model.artifact import ModelCard, save_version, set_current
from fraud_core.online_keys import OnlineKeys, new_namespace_id
from fraud_core.redis_server import ensure_redis
from fraud_core.storage import DataLayout, write_parquet

DAY = date(2026, 4, 10)


def _day_file(layout: DataLayout, path, day: date) -> None:
    write_parquet(pd.DataFrame({"order_id": [f"O-{day}"]}), path)


def test_limits_and_ages() -> None:
    assert (
        limits_h({"FRAUD_FRESHNESS_HOURS": "raw_orders=12, deployed_model=48"})["raw_orders"]
        == 12.0
    )
    with pytest.raises(ValueError, match="unknown name 'raw'"):
        limits_h({"FRAUD_FRESHNESS_HOURS": "raw=1"})
    with pytest.raises(ValueError, match="needs hours"):
        limits_h({"FRAUD_FRESHNESS_HOURS": "raw_orders=soon"})
    clock = datetime(2026, 4, 12, 6, tzinfo=UTC)
    assert freshness("x", DAY, clock, 36).age_h == 30.0 and freshness("x", DAY, clock, 36).fresh
    assert not freshness("x", DAY, clock, 24).fresh
    assert not freshness("x", None, clock, 24).fresh


def test_the_checks_read_the_data_clock_and_name_what_is_stale(tmp_path, monkeypatch) -> None:
    layout = DataLayout(tmp_path)
    handle = ensure_redis()
    prefix = f"test-fresh:{uuid.uuid4().hex[:8]}:"
    monkeypatch.setenv("FRAUD_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("REDIS_URL", handle.url)
    monkeypatch.setenv("FRAUD_REDIS_PREFIX", prefix)
    monkeypatch.setenv("FRAUD_CLOCK", "data")
    monkeypatch.delenv("FRAUD_FRESHNESS_HOURS", raising=False)
    # the newest order day is the 10th (a landing file not ingested yet); raw orders are one
    # day behind, features two, the store's snapshot five, the model learned up to the 1st
    layout.landing.mkdir(parents=True)
    (layout.landing / f"orders_{DAY}.csv").write_text("order_id\n")
    for back in (1, 2, 3):
        _day_file(layout, layout.raw_orders(DAY - timedelta(days=back)), DAY)
    _day_file(layout, layout.entity_features(DAY - timedelta(days=2)), DAY)
    client = redis.Redis.from_url(handle.url)
    client.set(OnlineKeys(prefix).active, new_namespace_id(DAY - timedelta(days=5)))
    booster = xgb.train({"nthread": 1}, xgb.DMatrix([[0.0] * 3], [0.0]), 1)
    card = ModelCard(
        version="",
        feature_names=DEFAULT_SPEC.feature_names[:3],
        thresholds={"review": 0.5, "decline": 0.9},
        training_window={"start": "2026-01-01", "end": "2026-03-01", "cutoff": "2026-03-02"},
    )
    set_current(layout.models, save_version(layout.models, booster, card).version)
    assert data_clock(layout) == datetime(2026, 4, 11, tzinfo=UTC)
    assert monitoring_clock(layout) == datetime(2026, 4, 11, tzinfo=UTC)

    try:
        with instance_for_test() as instance:
            job = defs.resolve_job_def("freshness_checks_job")
            result = job.execute_in_process(instance=instance)
        assert result.success
        verdicts = {e.asset_key.path[-1]: e for e in result.get_asset_check_evaluations()}
    finally:
        client.delete(OnlineKeys(prefix).active)
        client.close()
    assert set(verdicts) == {"raw_orders", "entity_features", "online_store", "deployed_model"}
    assert verdicts["raw_orders"].passed  # 24 h behind the data
    assert verdicts["raw_orders"].metadata["age_hours"].value == 24.0
    assert not verdicts["entity_features"].passed  # 48 h > 36 h
    assert "STALE" in verdicts["entity_features"].description
    assert not verdicts["online_store"].passed
    assert "2026-04-05" in verdicts["online_store"].description
    assert not verdicts["deployed_model"].passed  # learned up to 1 March: 40 days
    assert "2026-03-01" in verdicts["deployed_model"].description

    # with the wall clock (production), the same April days are months old
    monkeypatch.setenv("FRAUD_CLOCK", "wall")
    assert monitoring_clock(layout) > datetime(2026, 11, 1, tzinfo=UTC)
