"""Risk features count the label feed's chargebacks (issue 16): features of twelve days through
Dagster on an in-process Dask cluster, then a chargeback file for an order of day 1 lands;
`labels` takes it in, `label_feed_sensor` asks for `entity_features` from the label's day on, and
the features after that run equal the pure offline path over orders whose own row had carried
the same label from the start. No order file is delivered again."""

from __future__ import annotations

from datetime import timedelta

import pandas as pd
import pyarrow.parquet as pq
import pytest
from dagster import Definitions, build_sensor_context, instance_for_test, materialize

from fraud_assets.assets.deployed_model import PromotionGate
from fraud_assets.definitions import ASSET_CHECKS, ASSETS
from fraud_assets.jobs import entity_features_job, labels_job
from fraud_assets.partitions import partition_range_tags
from fraud_assets.resources import DataLayoutResource, RedisResource
from fraud_assets.sensors.labels import label_feed_sensor
from fraud_core.features.offline import advance
from fraud_core.features.pipeline import day_end_s
from fraud_core.features.spec import DEFAULT_SPEC
from fraud_core.generator import GeneratorConfig, write_landing_files
from fraud_core.redis_server import ensure_redis
from fraud_core.storage import DataLayout

from ..configs import FEATURE_LANE, START, feature_resources

DAYS = [START + timedelta(days=i) for i in range(12)]
RISK = [n for n in DEFAULT_SPEC.feature_names if "__risk_" in n]


@pytest.fixture
def featured(data_dir, monkeypatch):
    monkeypatch.setenv("FRAUD_REDIS_PREFIX", "test:label-features:")  # no key is written
    cfg = GeneratorConfig(
        n_customers=300, n_emails=300, n_ips=200, orders_per_day=150, days=12, start=START, seed=3
    )
    write_landing_files(cfg, data_dir.landing)
    return data_dir


def _all_features(layout: DataLayout) -> pd.DataFrame:
    return pd.concat(
        [pq.read_table(layout.entity_features(d)).to_pandas() for d in DAYS], ignore_index=True
    )


def test_a_chargeback_through_the_feed_equals_one_on_the_order_row(featured) -> None:
    layout = featured
    handle = ensure_redis()
    defs = Definitions(
        assets=ASSETS,
        asset_checks=ASSET_CHECKS,
        jobs=[labels_job, entity_features_job],
        resources=feature_resources(redis=RedisResource(url=handle.url), gate=PromotionGate()),
    )
    with instance_for_test() as instance:
        assert materialize(
            FEATURE_LANE,
            resources=feature_resources(),
            instance=instance,
            tags=partition_range_tags(DAYS[0], DAYS[-1]),
        ).success
        before = _all_features(layout)

        # an honest-looking order of day 1 whose customer orders again a week later
        orders = pd.concat(pq.read_table(layout.raw_orders(d)).to_pandas() for d in DAYS)
        day = orders["order_date"].dt.floor("D").dt.date
        late = set(orders.loc[day >= DAYS[9], "customer_id"])
        first = orders[(day == DAYS[1]) & (orders["is_fraud"].fillna(0) == 0)]
        target = first[first["customer_id"].isin(late)].iloc[0]
        label_at = pd.Timestamp(DAYS[2], tz="UTC") + pd.Timedelta(hours=12)
        layout.label_landing.mkdir(parents=True)
        (layout.label_landing / "cb.csv").write_text(
            f"order_id,is_fraud,label_date\n{target['order_id']},1,{label_at.isoformat()}\n"
        )

        def tick(cursor):
            context = build_sensor_context(
                instance=instance, cursor=cursor, resources={"layout": DataLayoutResource()}
            )
            return label_feed_sensor(context)

        first_tick = tick(None)
        assert [r.job_name for r in first_tick.run_requests] == [labels_job.name]
        for request in first_tick.run_requests:
            job = defs.resolve_job_def(request.job_name)
            assert job.execute_in_process(instance=instance, tags=request.tags).success
        second = tick(first_tick.cursor)
        (request,) = second.run_requests
        assert request.job_name == entity_features_job.name
        assert request.tags["dagster/asset_partition_range_start"] == DAYS[2].isoformat()
        assert request.tags["dagster/asset_partition_range_end"] == DAYS[-1].isoformat()
        assert request.tags["fraud/lane"] == "daily_features"
        job = defs.resolve_job_def(request.job_name)
        assert job.execute_in_process(instance=instance, tags=request.tags).success
        assert tick(second.cursor).run_requests == []

    after = _all_features(layout)
    labelled = orders.copy()
    labelled.loc[labelled["order_id"] == target["order_id"], "is_fraud"] = 1
    labelled.loc[labelled["order_id"] == target["order_id"], "label_date"] = label_at
    expected, _ = advance({}, labelled.reset_index(drop=True), day_end_s(DAYS[-1]))
    assert after["order_id"].tolist() == expected["order_id"].tolist()
    for name in DEFAULT_SPEC.feature_names:
        pd.testing.assert_series_equal(after[name], expected[name], check_names=False, obj=name)
    moved = (after[RISK] != before[RISK]).any(axis=1)
    assert moved.any()  # the label reached later orders' risk features ...
    kinds = [e.kind for e in DEFAULT_SPEC.entities]
    assert any(target[k] in set(after.loc[moved, k]) for k in kinds)
    # ... and no order before it was known
    assert (after.loc[moved, "order_date"] > label_at).all()
