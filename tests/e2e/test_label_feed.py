"""The label feed end to end (issue 16) on a real Redis, the Litestar app and Dagster's
`materialize`:

- a label posted to `/v1/labels` and a chargeback file dropped into `landing/labels/` reach the
  next training set (and a retraction clears an order row's label), with no order file delivered
  again;
- `model_performance` of a served day equals a computation from the labels written out here, and
  `label_feed_sensor` runs the day again when a late label lands, which changes its figures.
"""

from __future__ import annotations

import json
from datetime import timedelta

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
from dagster import (
    AssetKey,
    AssetRecordsFilter,
    build_sensor_context,
    instance_for_test,
    materialize,
)
from litestar.testing import TestClient
from sklearn.metrics import average_precision_score

from fraud_assets.assets.labels import LABEL_FILES_ARE_VALID, label_log, labels
from fraud_assets.assets.training_set import TRAINING_SET_CHECKS, training_set
from fraud_assets.definitions import defs
from fraud_assets.partitions import partition_range_tags
from fraud_assets.resources import DataLayoutResource, RedisResource
from fraud_assets.sensors.decisions import decision_log_sensor
from fraud_assets.sensors.labels import label_feed_sensor
from fraud_core.generator import iter_daily_orders
from fraud_core.model.dataset import LABEL, TrainingSetConfig, keep_share, read_latest_manifest
from fraud_core.model.replay import feature_days
from fraud_core.storage import DataLayout, read_parquet, write_parquet
from fraud_serving.app import create_app
from fraud_serving.settings import Settings

from ..configs import MODEL_DATA, START, TRAINING_OPS, feature_resources
from ..serving.support import deploy, payload, small_orders, trained_booster
from .conftest import REDIS_MODES

API_KEY = "label-feed-key"


@pytest.fixture
def setup(tmp_path, monkeypatch, store, request):
    """The service, a deployed model and the data: in a local folder with a single Redis, in an
    S3 bucket (the session's moto server) with the Redis Cluster."""
    url, keys, client = store
    layout = DataLayout.at(request.getfixturevalue("s3_root") if keys.cluster else tmp_path)
    monkeypatch.setenv("FRAUD_DATA_DIR", str(layout.root))
    monkeypatch.setenv("FRAUD_REDIS_PREFIX", keys.prefix)
    monkeypatch.setenv("REDIS_URL", url)
    monkeypatch.setenv("FRAUD_LABEL_DRAIN_AFTER_S", "0")
    monkeypatch.delenv("DASK_SCHEDULER_ADDRESS", raising=False)
    deploy(layout.models, trained_booster())
    settings = Settings(
        api_keys=frozenset({API_KEY}),
        redis_url=url,
        redis_cluster=keys.cluster,
        key_prefix=keys.prefix,
        data_dir=layout.root,
        model_poll_s=0.1,
    )
    return settings, keys, client, layout


def _resources(settings, layout) -> dict:
    return feature_resources(layout.root, redis=RedisResource(url=settings.redis_url))


def _drain_and_build(settings, keys, layout, days) -> object:
    resources = _resources(settings, layout)
    config = {"ops": {"label_log": {"config": {"key_prefix": keys.prefix}}}}
    assert materialize([label_log], resources=resources, run_config=config).success
    first, last = min(days).isoformat(), max(days).isoformat()
    return materialize([labels], resources=resources, tags=partition_range_tags(first, last))


@pytest.mark.parametrize("store", REDIS_MODES, indirect=True)
def test_a_posted_label_and_a_chargeback_file_reach_the_next_training_set(setup) -> None:
    settings, keys, client, layout = setup
    frames = dict(feature_days(iter_daily_orders(MODEL_DATA), dtype=np.float64))
    for day, frame in frames.items():
        write_parquet(frame, layout.entity_features(day))
    train_day = START + timedelta(days=12)
    day_orders = frames[train_day]
    honest = day_orders[day_orders["is_fraud"].fillna(0) == 0].iloc[0]
    fraud_rows = pd.concat(frames.values())
    fraud_rows = fraud_rows[(fraud_rows["is_fraud"] == 1) & fraud_rows["label_date"].notna()]
    # a fraud of the day that the training set's subsampling keeps once it is not fraud
    candidates = fraud_rows[fraud_rows["order_date"].dt.date == train_day]
    ops = TRAINING_OPS["training_set"]["config"]
    kept = (
        keep_share(candidates["order_id"], ops.get("seed", TrainingSetConfig().seed))
        < ops["negative_rate"]
    )
    retracted = candidates[kept].iloc[0]
    label_at = pd.Timestamp(train_day + timedelta(days=2), tz="UTC") + pd.Timedelta(hours=9)
    reversed_at = retracted["label_date"] + pd.Timedelta(hours=1)  # after its chargeback

    # the service knows the order it is told about (it scored it), so it accepts the label
    with TestClient(create_app(settings)) as http:
        http.headers["X-API-Key"] = API_KEY
        body = payload(small_orders().iloc[0])
        body.update(order_id=str(honest["order_id"]), order_date=honest["order_date"].isoformat())
        assert http.post("/v1/score", json=body).status_code == 200
        posted = {
            "order_id": str(honest["order_id"]),
            "is_fraud": True,
            "label_date": label_at.isoformat(),
            "source": "analyst",
        }
        got = http.post("/v1/labels", json=posted)
        assert got.status_code == 200, got.text
        assert http.post("/v1/labels", json=posted).status_code == 200  # a retry: one event
        bad = http.post("/v1/labels", json={**posted, "source": "order_row"})
        assert bad.status_code == 400 and "source" in bad.text
    assert client.xlen(keys.labels) == 2

    # a chargeback file clears a fraud label (the provider reversed it), one row is refused
    layout.label_landing.mkdir(parents=True, exist_ok=True)
    (layout.label_landing / "reversals.csv").write_text(
        "order_id,is_fraud,label_date,source\n"
        f"{retracted['order_id']},0,{reversed_at.isoformat()},chargeback\n"
        f"X-1,perhaps,{label_at.isoformat()},chargeback\n"
    )
    built = _drain_and_build(settings, keys, layout, [label_at.date(), reversed_at.date()])
    assert client.xlen(keys.labels) == 0
    (check,) = built.get_asset_check_evaluations()
    assert check.check_name == LABEL_FILES_ARE_VALID and not check.passed
    assert "reversals.csv row 1: is_fraud" in check.description
    refused = read_parquet(layout.label_quarantine).to_pandas()
    assert refused[["file", "row", "field"]].values.tolist() == [["reversals.csv", 1, "is_fraud"]]
    events = pd.concat(read_parquet(layout.labels(d)).to_pandas() for d in layout.labels_days())
    assert sorted(events["source"]) == ["analyst", "chargeback"]

    run = materialize(
        [training_set, *TRAINING_SET_CHECKS],
        resources=_resources(settings, layout),
        run_config={"ops": {"training_set": TRAINING_OPS["training_set"]}},
    )
    assert run.success
    manifest = read_latest_manifest(layout)
    rows = manifest.read_role("train").set_index("order_id")
    assert rows.loc[str(honest["order_id"]), LABEL] == 1
    assert retracted["label_date"] < manifest.training_window.cutoff_ts
    assert rows.loc[str(retracted["order_id"]), LABEL] == 0
    (event,) = run.get_asset_materialization_events()
    assert event.materialization.metadata["label_feed_events"].value == 2


def _expected(scored: pd.DataFrame, fraud: set[str]) -> dict:
    is_fraud = scored["order_id"].isin(fraud).to_numpy()
    decision = scored["decision"].to_numpy()
    watched = decision != "decline"
    reviewed = decision == "review"
    expected = {
        "orders": len(scored),
        "labelled_fraud": int(is_fraud.sum()),
        "fraud_cents_missed": int(scored["cents"][is_fraud & (decision == "approve")].sum()),
        "fraud_cents_caught": int(scored["cents"][is_fraud & (decision != "approve")].sum()),
        "precision_at_review": is_fraud[reviewed].mean() if reviewed.any() else None,
    }
    if is_fraud[watched].any() and not is_fraud[watched].all():
        expected["ap_watched"] = average_precision_score(
            is_fraud[watched], scored["score"][watched]
        )
    return expected


def _tick(instance, cursor):
    context = build_sensor_context(
        instance=instance, cursor=cursor, resources={"layout": DataLayoutResource()}
    )
    return label_feed_sensor(context)


def _drain_tick(instance, cursor):
    return decision_log_sensor(build_sensor_context(instance=instance, cursor=cursor))


def test_model_performance_matures_with_late_labels(setup, monkeypatch) -> None:
    settings, keys, client, layout = setup
    monkeypatch.setenv("FRAUD_DRAIN_AFTER_S", "0")
    today = pd.Timestamp.now(tz="UTC").floor("D")
    served = today - pd.Timedelta(days=4)
    orders = small_orders().tail(60).reset_index(drop=True)
    orders["order_date"] = [served + pd.Timedelta(minutes=20 * i) for i in range(len(orders))]
    with TestClient(create_app(settings)) as http:
        http.headers["X-API-Key"] = API_KEY
        bodies = [payload(row) for _, row in orders.iterrows()]
        got = http.post("/v1/score/batch", json={"orders": bodies})
        assert got.status_code == 200, got.text
        ids = [b["order_id"] for b in bodies]
        early = served + pd.Timedelta(days=1, hours=3)
        for order_id in ids[:6]:
            label = {"order_id": order_id, "is_fraud": True, "label_date": early.isoformat()}
            assert http.post("/v1/labels", json=label).status_code == 200
    day = served.date().isoformat()

    with instance_for_test() as instance:
        job = defs.resolve_job_def

        def run_requests(result) -> list[str]:
            names = []
            for request in result.run_requests:
                done = job(request.job_name).execute_in_process(
                    instance=instance, tags=request.tags
                )
                assert done.success, request.job_name
                names.append(request.job_name)
            return names

        # decisions and posted labels wait in Redis: one drain, then one run over the days it
        # touched (the served day, the label day): scored orders, labels, performance, skew
        first = _drain_tick(instance, None)
        assert run_requests(first) == ["feedback_drain_job"]
        assert client.xlen(keys.labels) == 0 and client.xlen(keys.decisions) == 0
        second = _drain_tick(instance, first.cursor)
        assert run_requests(second) == ["served_days_job"]
        assert second.run_requests[0].tags == partition_range_tags(served.date(), early.date())
        # the label feed sees the new labels, already judged in that run: nothing more to do
        third = _tick(instance, None)
        assert run_requests(third) == []
        figures = json.loads(layout.model_performance(served.date()).read_text())
        scored = pq.read_table(layout.scored_orders(served.date())).to_pandas()
        for name, value in _expected(scored, set(ids[:6])).items():
            assert figures["all"][name] == (value if value is None else pytest.approx(value))
        assert figures["all"]["label_sources"] == {"api": 6}
        performance = AssetRecordsFilter(AssetKey("model_performance"), asset_partitions=[day])
        (record,) = instance.fetch_materializations(performance, limit=1).records
        assert record.asset_materialization.metadata["labelled_fraud"].value == 6
        assert not figures["mature"] and figures["maturity_days"] >= 3

        # a late chargeback file: four more frauds, one posted label reversed
        late = today - pd.Timedelta(days=1)
        layout.label_landing.mkdir(parents=True)
        rows = [f"{i},1,{late.isoformat()},chargeback" for i in ids[10:14]]
        rows.append(f"{ids[0]},0,{late.isoformat()},dispute")
        (layout.label_landing / "late.csv").write_text(
            "order_id,is_fraud,label_date,source\n" + "\n".join(rows) + "\n"
        )
        fourth = _tick(instance, third.cursor)
        assert run_requests(fourth) == ["labels_job"]
        assert fourth.run_requests[0].tags == partition_range_tags(late.date(), late.date())
        fifth = _tick(instance, fourth.cursor)
        assert run_requests(fifth) == ["model_performance_job"]
        again = json.loads(layout.model_performance(served.date()).read_text())
        for name, value in _expected(scored, set(ids[1:6]) | set(ids[10:14])).items():
            assert again["all"][name] == (value if value is None else pytest.approx(value))
        assert again["all"]["labelled_fraud"] == 9 != figures["all"]["labelled_fraud"]
        assert _tick(instance, fifth.cursor).run_requests == []
