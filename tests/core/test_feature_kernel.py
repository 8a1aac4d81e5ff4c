"""The vectorised kernel against the slow reference definitions, on data built to hit every
window edge, same-second ties and labels known before and after later orders."""

from __future__ import annotations

import numba
import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fraud_core.features.kernel import NO_LABEL, _entity_pass, _jit, entity_kernel, warm_up
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


def _kernel_args(n: int) -> dict:
    kind = DEFAULT_SPEC.entities[0]
    return {
        "spec": DEFAULT_SPEC,
        "kind": kind.kind,
        "group": np.zeros(n, dtype=np.int64),
        "t_s": np.arange(n, dtype=np.int64) * 60,
        "cents": np.full(n, 1_000, dtype=np.int64),
        "counterparts": {c: np.zeros(n, dtype=np.int64) for c in kind.counterparts},
        "label_s": np.full(n, NO_LABEL, dtype=np.int64),
    }


def test_kernel_refuses_times_going_back_inside_an_entity() -> None:
    args = _kernel_args(5)
    args["t_s"][3] = 0  # out of order inside the one entity
    with pytest.raises(ValueError, match="t_s must not decrease"):
        entity_kernel(**args)
    args["group"][3:] = 1  # the same times, but row 3 now starts another entity: fine
    feats = entity_kernel(**args)
    assert feats[f"{args['kind']}__first_seen"].tolist() == [1, 0, 0, 1, 0]


def test_kernel_refuses_negative_codes() -> None:
    args = _kernel_args(3)
    next(iter(args["counterparts"].values()))[1] = -1
    with pytest.raises(ValueError, match="non-negative"):
        entity_kernel(**args)


def test_kernel_on_no_rows_gives_empty_columns_in_spec_order() -> None:
    args = _kernel_args(0)
    feats = entity_kernel(**args)
    assert list(feats) == [f.name for f in DEFAULT_SPEC.entity_features(args["kind"])]
    assert all(len(col) == 0 for col in feats.values())


def test_warm_up_leaves_the_compiled_kernel_loaded() -> None:
    warm_up()
    assert _entity_pass.signatures  # compiled (or loaded from the cache) for the one signature


def test_kernel_functions_compile_where_numba_has_no_cache_location() -> None:
    namespace: dict = {}
    exec("def double(x):\n    return 2 * x\n", namespace)  # no source file: nowhere to cache
    with pytest.raises(RuntimeError, match="cannot cache"):
        numba.njit(cache=True)(namespace["double"])
    assert _jit(namespace["double"])(21) == 42


def test_compiled_pass_refuses_a_block_that_does_not_fit_the_spec() -> None:
    args = _kernel_args(4)
    spec, codes = args["spec"], np.stack(list(args["counterparts"].values()))
    windows = np.array(list(spec.windows.values()))
    names = list(spec.windows)
    distinct = np.array([names.index(w) for w in spec.distinct_windows])
    risk = np.array(list(spec.risk_windows.values()))
    rows = len(spec.entity_features(args["kind"]))
    for shape, message in (((rows - 1, 4), "rows do not match"), ((rows, 3), "differ in length")):
        error = _entity_pass(
            args["group"], args["t_s"], args["cents"], np.empty((0, 4), np.int64), np.empty(0),
            codes, np.empty(0, np.int64), args["label_s"], windows, distinct, spec.history_n,
            spec.risk_delay_s, risk, NO_LABEL, np.empty(shape),
        )  # fmt: skip
        assert message in error
