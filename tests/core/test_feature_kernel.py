"""The vectorised kernel against the slow reference definitions, on data built to hit every
window edge, same-second ties and labels known before and after later orders."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fraud_core.features.offline import advance
from fraud_core.features.spec import DEFAULT_SPEC

from .conftest import SMALL_SPEC, random_orders
from .feature_reference import assert_frames_close, reference_features


def _offline(orders: pd.DataFrame, spec) -> pd.DataFrame:
    end_s = int(orders["order_date"].max().timestamp()) + 1
    feats, _ = advance({}, orders, end_s, spec)
    return feats


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_kernel_matches_reference_definitions(seed: int) -> None:
    orders = random_orders(400, seed)
    assert_frames_close(_offline(orders, SMALL_SPEC), reference_features(orders, SMALL_SPEC))


def test_kernel_matches_reference_with_default_spec() -> None:
    orders = random_orders(300, 7, span_s=60 * 86_400, pool=4)
    assert_frames_close(_offline(orders, DEFAULT_SPEC), reference_features(orders, DEFAULT_SPEC))


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    n=st.integers(1, 60),
    seed=st.integers(0, 10_000),
    pool=st.integers(1, 4),
    span=st.integers(1, 40_000),
)
def test_kernel_matches_reference_property(n: int, seed: int, pool: int, span: int) -> None:
    orders = random_orders(n, seed, span_s=span, pool=pool)
    assert_frames_close(_offline(orders, SMALL_SPEC), reference_features(orders, SMALL_SPEC))


def test_features_follow_spec_and_ranges() -> None:
    orders = random_orders(500, 3)
    feats = _offline(orders, DEFAULT_SPEC)
    assert list(feats.columns) == ["order_id", *DEFAULT_SPEC.feature_names]
    for f in DEFAULT_SPEC.features:
        col = feats[f.name].to_numpy()
        if not f.nullable:
            assert not np.isnan(col).any(), f.name
        lo, hi = f.bounds
        vals = col[~np.isnan(col)]
        if lo is not None:
            assert (vals >= lo).all(), f.name
        if hi is not None:
            assert (vals <= hi).all(), f.name
