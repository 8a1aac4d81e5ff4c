"""Small deterministic order tables for the feature tests, and the model tests' Dask cluster."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from distributed import Client, LocalCluster

from fraud_assets.resources import LOOPBACK_DASHBOARD
from fraud_core.features.spec import FeatureSpec


@pytest.fixture(scope="module")
def dask_client():
    """A Dask client on an in-process cluster (one worker, two threads), one per test module."""
    with (
        LocalCluster(
            n_workers=1, threads_per_worker=2, processes=False, dashboard_address=LOOPBACK_DASHBOARD
        ) as cluster,
        Client(cluster) as client,
    ):
        yield client


# Short windows so that a few hundred orders over a few days exercise every window edge.
SMALL_SPEC = FeatureSpec(
    history_n=3,
    windows={"10m": 600, "1h": 3_600, "6h": 21_600},
    distinct_windows=("10m", "6h"),
    risk_windows={"1h": 3_600, "12h": 43_200},
    risk_delay_s=1_800,
)


def random_orders(n: int, seed: int, span_s: int = 3 * 86_400, pool: int = 6) -> pd.DataFrame:
    """Orders in the landing schema, in accepted order, with few distinct ids so that entities
    repeat, ties at the same second, and fraud labels arriving before and after later orders."""
    rng = np.random.default_rng(seed)
    start = pd.Timestamp("2026-03-01", tz="UTC")
    # coarse times so several orders share a second
    seconds = np.sort(rng.integers(0, max(1, span_s // 7), n)) * 7
    order_date = start + pd.to_timedelta(seconds, unit="s")
    is_fraud = (rng.random(n) < 0.2).astype(np.int8)
    delay = pd.to_timedelta(rng.integers(1, 4 * 3_600, n), unit="s")
    label_date = pd.Series(order_date + delay).where(is_fraud == 1)
    df = pd.DataFrame(
        {
            "order_id": [f"O{i:06d}" for i in range(n)],
            "order_date": pd.Series(order_date).astype("datetime64[us, UTC]"),
            "customer_id": [f"C{x}" for x in rng.integers(0, pool, n)],
            "email": [f"e{x}@x.io" for x in rng.integers(0, pool, n)],
            "ip_addr": [f"10.0.0.{x}" for x in rng.integers(0, pool, n)],
            "order_amount": np.round(rng.choice([0.0, 1.0, 5.5, 20.0, 99.99, 1234.56], n), 2),
            "location_lat": rng.uniform(-60, 60, n),
            "location_long": rng.uniform(-170, 170, n),
            "is_fraud": is_fraud,
            "label_date": label_date.astype("datetime64[us, UTC]"),
        }
    )
    return df


@pytest.fixture
def small_spec() -> FeatureSpec:
    return SMALL_SPEC
