"""A contract with entities of its own, end to end (issue 15): card-present transactions (card,
terminal and merchant; no e-mail, no IP) from landing files to a deployed model and the online
store, with `materialize` on an in-process Dask cluster and a real Redis, then scored, replayed,
looked up and labelled through the service over HTTP.
Every step takes its columns, entities and features from `contracts/card_present.yaml`."""

from __future__ import annotations

from datetime import datetime, timedelta

import numpy as np
import pytest
from dagster import materialize
from litestar.testing import TestClient

from fraud_assets.assets.deployed_model import (
    DEPLOYED_MODEL_CHECKS,
    PromotionGate,
    deployed_model,
)
from fraud_assets.assets.fraud_model import fraud_model
from fraud_assets.assets.online_store import SAMPLE_MATCHES_OFFLINE_STATE, online_store
from fraud_assets.assets.training_set import TRAINING_SET_CHECKS, training_set
from fraud_assets.partitions import partition_range_tags
from fraud_assets.resources import RedisResource
from fraud_core.card_generator import CardGeneratorConfig, write_card_files
from fraud_core.contract import (
    CONTRACT_ENV,
    SHIPPED,
    load_contract,
    serving_contract,
)
from fraud_core.model.artifact import current_version, load_version
from fraud_core.model.dataset import read_latest_manifest
from fraud_core.model.replay import feature_days, validated_days
from fraud_core.schema import order_schema
from fraud_core.storage import read_parquet
from fraud_serving.app import create_app
from fraud_serving.settings import Settings

from ..checks import verdicts
from ..configs import FEATURE_LANE, START, TRAINING_OPS, feature_resources

CONTRACT_PATH = SHIPPED / "card_present.yaml"
CONTRACT = load_contract(CONTRACT_PATH)
SPEC = CONTRACT.spec
# Enough fraud with labels that mature inside the tests' training window (the shipped
# generator's chargebacks take up to 45 days).
DATA = CardGeneratorConfig(
    n_cards=1_500,
    n_merchants=150,
    txns_per_day=700,
    days=45,
    start=START,
    seed=3,
    label_delay_days=(2, 7),
)
DAYS = [START + timedelta(days=i) for i in range(DATA.days)]


@pytest.fixture
def card_data(tmp_path, monkeypatch, request):
    """The card contract's landing files in a local folder, or (`scale-out`) in an S3 bucket of
    the session's moto server."""
    from fraud_core.storage import DataLayout

    if getattr(request, "param", "local") == "scale-out":
        layout = DataLayout.at(request.getfixturevalue("s3_root"))
    else:
        layout = DataLayout(tmp_path / "data")
    monkeypatch.setenv("FRAUD_DATA_DIR", str(layout.root))
    monkeypatch.setenv(CONTRACT_ENV, str(CONTRACT_PATH))
    monkeypatch.delenv("DASK_SCHEDULER_ADDRESS", raising=False)
    write_card_files(DATA, layout.landing, CONTRACT)
    return layout


@pytest.mark.parametrize(
    ("card_data", "store"), [("local", "single"), ("scale-out", "cluster")], indirect=True
)
def test_card_present_orders_reach_a_deployed_model_and_the_online_store(card_data, store):
    """Today's configuration (a local folder, a single Redis) and the scale-out one (an S3
    bucket, a 3-master Redis Cluster): the same run."""
    url, keys, client = store
    ingested = materialize(
        FEATURE_LANE, resources=feature_resources(), tags=partition_range_tags(DAYS[0], DAYS[-1])
    )
    assert ingested.success
    failed = {name: v for name, v in verdicts(ingested).items() if not v.passed}
    assert not failed, failed

    # validated orders in the contract's columns; buckets per contract entity
    raw = read_parquet(card_data.raw_orders(DAYS[3]))
    assert raw.schema.remove_metadata().equals(order_schema(CONTRACT))
    assert {"card", "terminal", "merchant", "mcc", "entry_mode", "distance_km"} <= set(
        raw.column_names
    )
    assert "email" not in raw.column_names
    for kind in ("card", "terminal", "merchant"):
        assert card_data.orders_by_entity_buckets(kind, DAYS[3])
    assert not card_data.orders_by_entity_kind("customer_id").exists()

    # the contract's features, equal to the in-memory path over the same validated days
    reference = dict(
        feature_days(validated_days(card_data.landing, DAYS[0], DAYS[-1]), SPEC, dtype=np.float64)
    )
    for day in (DAYS[0], DAYS[20], DAYS[-1]):
        written = read_parquet(card_data.entity_features(day)).to_pandas()
        expected = reference[day]
        assert list(written.columns[-len(SPEC.feature_names) :]) == SPEC.feature_names
        assert "card__distinct_terminal__24h" in written.columns
        assert (
            "terminal__distance_km_mean__last10" in written.columns
        )  # a numeric attribute        written = written.set_index("order_id").loc[expected["order_id"]]
        np.testing.assert_array_equal(
            written[SPEC.feature_names].to_numpy(), expected[SPEC.feature_names].to_numpy()
        )

    trained = materialize(
        [training_set, *TRAINING_SET_CHECKS, fraud_model, deployed_model, *DEPLOYED_MODEL_CHECKS],
        resources=feature_resources(gate=PromotionGate()),
        run_config={"ops": TRAINING_OPS},
    )
    assert trained.success
    failed = {name: v for name, v in verdicts(trained).items() if not v.passed}
    assert not failed, failed
    manifest = read_latest_manifest(card_data)
    assert manifest.primary == "card" and manifest.feature_names == SPEC.feature_names
    assert manifest.known_fraud_since().index.name == "card"
    _, card = load_version(card_data.models, current_version(card_data.models))
    assert card.contract["name"] == "card_present"
    assert card.contract["digest"] == CONTRACT.digest
    assert card.feature_names == SPEC.feature_names
    validation = card.metrics["validation"]
    ap, rate = validation["average_precision"], validation["fraud_rate"]
    assert ap > 10 * rate, (ap, rate)  # the contract's features find its fraud

    loaded = materialize(
        [online_store],
        resources={**feature_resources(), "redis": RedisResource(url=url)},
        run_config={"ops": {"online_store": {"config": {"key_prefix": keys.prefix}}}},
    )
    assert loaded.success
    checks = {e.check_name: e for e in loaded.get_asset_check_evaluations()}
    assert checks[SAMPLE_MATCHES_OFFLINE_STATE].passed
    (event,) = loaded.get_asset_materialization_events()
    entities = event.materialization.metadata["entities"].value
    assert set(entities) == {"card", "terminal", "merchant"} and min(entities.values()) > 0
    ns = client.get(keys.active).decode()
    some = raw.slice(0, 1).to_pylist()[0]
    assert client.exists(keys.entity(ns, "card", some["card"]))
    # the order index names an order's primary entity, the card (orders of the last 37 days)
    last = read_parquet(card_data.raw_orders(DAYS[-1])).slice(0, 1).to_pylist()[0]
    assert client.hget(keys.order_index(ns), last["order_id"]).decode() == last["card"]

    # the scoring service serves the contract: its fields, its model, its store
    assert serving_contract() == CONTRACT
    settings = Settings.from_env(
        {
            CONTRACT_ENV: str(CONTRACT_PATH),
            "FRAUD_DATA_DIR": str(card_data.root),
            "REDIS_URL": url,
            "FRAUD_REDIS_PREFIX": keys.prefix,
            "FRAUD_REDIS_CLUSTER": "1" if keys.cluster else "0",
            "FRAUD_API_KEYS": "card-key",
        }
    )
    with TestClient(create_app(settings)) as http:
        http.headers["X-API-Key"] = "card-key"
        order = http.get("/schema/openapi.json").json()["components"]["schemas"]["Order"]
        assert set(order["properties"]) == {
            "order_id",
            "order_date",
            "card",
            "terminal",
            "merchant",
            "order_amount",
            "mcc",
            "entry_mode",
            "distance_km",
        }
        assert set(order["required"]) == set(order["properties"]) - {"mcc", "entry_mode"}
        known = {
            "order_id": "online-1",
            "order_date": f"{DAYS[-1] + timedelta(days=1)}T09:00:00Z",
            "card": last["card"],
            "terminal": "T-new-1",
            "merchant": last["merchant"],
            "order_amount": 2_500.0,
            "entry_mode": "manual",
            "distance_km": 812.35,  # in whole tenths: 812.4 (half to even on the double)
        }
        scored = http.post("/v1/score?features=true", json=known)
        assert scored.status_code == 200, scored.text
        answer = scored.json()
        assert answer["model_version"] == card.version
        assert answer["new_entities"] == ["terminal"]  # the card and merchant are known
        assert set(answer["features"]) == set(SPEC.feature_names)
        assert answer["features"]["card__first_seen"] == 0.0
        assert answer["features"]["card__same_terminal_as_last"] == 0.0
        assert answer["features"]["order_distance_km"] == 812.4
        # the card's stored events as the offline state holds them: the mean of its last 10,
        # whether it was read by hand in the last 30 days
        history = http.get("/v1/entities/card", params={"id": last["card"]}).json()["events"]
        at = datetime.fromisoformat(known["order_date"])
        modes = {
            e["counterparts"]["entry_mode"]
            for e in history[:-1]
            if datetime.fromisoformat(e["order_date"]) > at - timedelta(days=30)
        }
        assert answer["features"]["card__entry_mode_new__30d"] == float("manual" not in modes)
        previous = [e["numbers"]["distance_km"] for e in history[-11:-1]]
        assert answer["features"]["card__distance_km_mean__last10"] == pytest.approx(
            sum(previous) / len(previous), abs=1e-9
        )
        again = http.post("/v1/score", json=known)
        assert again.headers["Idempotent-Replayed"] == "true"
        view = http.get("/v1/entities/card", params={"id": last["card"]}).json()
        assert view["events"][-1]["order_id"] == "online-1"
        label = http.post(
            "/v1/labels",
            json={
                "order_id": "online-1",
                "is_fraud": True,
                "label_date": f"{DAYS[-1] + timedelta(days=3)}T00:00:00Z",
            },
        ).json()
        assert sorted(label["updated_entities"]) == ["card", "merchant", "terminal"]
        # an e-commerce order is not this contract's: named, refused
        wrong = {k: v for k, v in known.items() if k != "card"} | {"email": "a@b.c"}
        refused = http.post("/v1/score", json={**wrong, "order_id": "online-2"})
        assert refused.status_code == 400 and "email" in refused.text
