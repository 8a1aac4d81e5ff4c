"""Shared helpers of the serving tests: a tiny model trained on generated orders, a registry,
orders as API payloads, and Redis keys cleaned up by prefix."""

from __future__ import annotations

import contextlib
import functools
import threading
import time
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
import uvicorn
import xgboost as xgb

from fraud_assets.lib.redis_clients import connect
from fraud_core.features.offline import advance, canonical_order
from fraud_core.features.spec import DEFAULT_SPEC
from fraud_core.generator import GeneratorConfig, generate_orders
from fraud_core.model.artifact import ModelCard, save_version, set_current
from fraud_core.net import free_port
from fraud_serving.app import create_app
from fraud_serving.http import SERVER_OPTIONS

THRESHOLDS = {"review": 0.3, "decline": 0.7}
SMALL = GeneratorConfig(
    n_customers=300,
    n_emails=300,
    n_ips=250,
    orders_per_day=80,
    days=12,
    start=date(2026, 3, 1),
    seed=11,
    fraud_rate=0.05,
    label_delay_days=(1, 3),
)


@functools.cache
def small_orders() -> pd.DataFrame:
    return canonical_order(generate_orders(SMALL))


@functools.cache
def trained_booster(rounds: int = 25, seed: int = 0) -> xgb.Booster:
    """A small booster on the offline features of `small_orders` (training data is not the
    point: the service must return exactly what this booster predicts)."""
    orders = small_orders()
    end_s = int(orders["order_date"].max().timestamp()) + 1
    features, _ = advance({}, orders, end_s)
    x = features[DEFAULT_SPEC.feature_names].to_numpy()
    y = orders["is_fraud"].to_numpy()
    params = {
        "max_depth": 3,
        "eta": 0.3,
        "objective": "binary:logistic",
        "seed": seed,
        "nthread": 1,
    }
    return xgb.train(params, xgb.DMatrix(x, y), rounds)


@functools.cache
def trained_card_booster() -> xgb.Booster:
    """A small booster on the card-present contract's features of generated transactions."""
    from fraud_core.card_generator import CardGeneratorConfig, card_orders
    from fraud_core.contract import SHIPPED, load_contract

    contract = load_contract(SHIPPED / "card_present.yaml")
    config = CardGeneratorConfig(n_cards=300, n_merchants=40, txns_per_day=150, days=10, seed=4)
    orders = card_orders(config)
    end_s = int(orders["order_date"].max().timestamp()) + 1
    features, _ = advance({}, orders, end_s, contract.spec)
    x = features[contract.spec.feature_names].to_numpy()
    params = {"max_depth": 3, "eta": 0.3, "objective": "binary:logistic", "nthread": 1}
    return xgb.train(params, xgb.DMatrix(x, orders["is_fraud"].to_numpy()), 15)


def deploy(
    registry: Path,
    booster: xgb.Booster,
    notes: str = "",
    feature_names: list[str] | None = None,
    calibration: dict | None = None,
) -> ModelCard:
    card = ModelCard(
        version="",
        feature_names=feature_names or DEFAULT_SPEC.feature_names,
        thresholds=dict(THRESHOLDS),
        notes=notes,
        calibration=calibration or {},
    )
    card = save_version(registry, booster, card)
    set_current(registry, card.version, reason="test")
    return card


def payload(row: pd.Series | dict) -> dict:
    """An order row (landing schema) as the API's JSON body."""
    ts = pd.Timestamp(row["order_date"])
    return {
        "order_id": str(row["order_id"]),
        "order_date": ts.isoformat().replace("+00:00", "Z"),
        "customer_id": str(row["customer_id"]),
        "email": str(row["email"]),
        "ip_addr": str(row["ip_addr"]),
        "order_amount": float(row["order_amount"]),
    }


def delete_prefix(url: str, prefix: str, cluster: bool = False) -> None:
    client = connect(url, cluster=cluster)
    try:
        keys = list(client.scan_iter(match=prefix.replace("*", r"\*") + "*", count=10_000))
        for start in range(0, len(keys), 5_000):
            client.unlink(*keys[start : start + 5_000])
    finally:
        client.close()


def close(a: float, b: float, tol: float = 1e-9) -> bool:
    return (np.isnan(a) and np.isnan(b)) or abs(a - b) <= tol


def wait_for(predicate, timeout_s: float = 10.0, step_s: float = 0.05):
    """Poll `predicate` until it returns something truthy (returned), or fail after the time."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(step_s)
    raise AssertionError("condition not met in time")


@contextlib.contextmanager
def app_in_thread(settings) -> Iterator[str]:
    """The service's app for `settings` under uvicorn (the options `fraud serve` runs it with) in
    a thread on a free loopback port: its URL once it started; stopped afterwards."""
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(
            create_app(settings),
            host="127.0.0.1",
            port=port,
            log_level="warning",
            **SERVER_OPTIONS,
        )
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        wait_for(lambda: server.started, timeout_s=30)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=30)
