"""The feature paths under any contract (issue 15): for the shipped contracts and for random ones
(1 to 6 entities of any names, random counterparts, categorical and aggregated numeric attributes, windows, history
length and risk delay, written as YAML and read by the loader), the kernel equals the slow
reference, a day-by-day run equals one run, and the online path (state codec included) equals
the offline one."""

from __future__ import annotations

import numpy as np
import pandas as pd
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fraud_core.contract import SHIPPED, contract_from_text, load_contract
from fraud_core.features.offline import advance
from fraud_core.features.spec import DEFAULT_SPEC, NO_VALUE, FeatureSpec

from .conftest import random_orders
from .feature_reference import assert_frames_close, reference_features
from .test_feature_paths import DAY, _incremental, _online_replay

NAMES = ("card", "terminal", "merchant", "device", "account", "shop")
ATTRIBUTES = ("mcc", "entry_mode", "country")
NUMBERS = ("items", "distance_km")


def contract_orders(
    spec: FeatureSpec, n: int, seed: int, span_s: int = 3 * DAY, pool: int = 6
) -> pd.DataFrame:
    """`random_orders` with one column per entity of `spec` instead of the built-in three, and
    one per categorical attribute its entities follow (a few values each)."""
    rng = np.random.default_rng(seed + 1_000)
    orders = random_orders(n, seed, span_s=span_s, pool=pool)
    orders = orders.drop(columns=["customer_id", "email", "ip_addr"])
    for i, e in enumerate(spec.entities):
        orders.insert(2 + i, e.kind, [f"{e.kind[:2]}{x}" for x in rng.integers(0, pool, n)])
    kinds = {e.kind for e in spec.entities}
    for name in dict.fromkeys(c for e in spec.entities for c in e.counterparts if c not in kinds):
        orders[name] = [f"{name[:2]}{x}" for x in rng.integers(0, 3, n)]
    for v in spec.numeric:  # small whole numbers, negative and fractional ones, repeats
        orders[v.name] = np.round(rng.normal(0, 40, n), 3) * rng.integers(0, 2, n)
    return orders


def _offline(orders: pd.DataFrame, spec: FeatureSpec) -> pd.DataFrame:
    return advance({}, orders, int(orders["order_date"].max().timestamp()) + 1, spec)[0]


def _three_paths_agree(spec: FeatureSpec, orders: pd.DataFrame) -> None:
    one_run = _offline(orders, spec)
    assert list(one_run.columns) == ["order_id", *spec.feature_names]
    assert_frames_close(one_run, reference_features(orders, spec))
    daily, _ = _incremental(orders, spec)
    pd.testing.assert_frame_equal(daily, one_run)
    assert_frames_close(_online_replay(orders, spec), one_run, tol=1e-9)


def test_each_shipped_contracts_features_agree_on_every_path() -> None:
    # the two e-commerce contracts declare the built-in spec, whose paths test_feature_kernel
    # and test_feature_paths check on the built-in columns
    for name in ("ecommerce.yaml", "ecommerce_export.yaml"):
        assert load_contract(SHIPPED / name).spec == DEFAULT_SPEC
    spec = load_contract(SHIPPED / "card_present.yaml").spec
    assert spec != DEFAULT_SPEC and spec.primary == "card"
    _three_paths_agree(spec, contract_orders(spec, 300, 4, span_s=30 * DAY, pool=8))


@st.composite
def contract_texts(draw: st.DrawFn) -> str:
    names = draw(st.permutations(NAMES))[: draw(st.integers(1, 6))]
    primary = draw(st.sampled_from(names))
    entities = []
    for name in names:
        others = [x for x in names if x != name]
        counterparts = draw(st.lists(st.sampled_from(others), unique=True)) if others else []
        entities.append(
            f"  - name: {name}\n    column: {name}_col\n"
            f"    counterparts: [{', '.join(counterparts)}]\n"
            + ("    primary: true\n" if name == primary else "")
        )
    windows = draw(st.lists(st.sampled_from(["10m", "1h", "6h", "1d"]), min_size=1, unique=True))
    distinct = draw(st.lists(st.sampled_from(windows), unique=True))
    risk = draw(st.lists(st.sampled_from(["1h", "12h", "2d"]), min_size=1, unique=True))
    attributes = draw(st.lists(st.sampled_from(ATTRIBUTES), unique=True, max_size=2))
    attribute_text = "".join(f"  - name: {a}\n    type: categorical\n" for a in attributes)
    for a in draw(st.lists(st.sampled_from(NUMBERS), unique=True, max_size=2)):
        attribute_text += f"  - name: {a}\n    type: numeric\n    aggregate: true\n"
        attribute_text += f"    decimals: {draw(st.integers(0, 3))}\n"
    return (
        "version: 1\nname: random\nsource:\n  order_id: id\n  order_time: {column: ts}\n"
        "  amount: {column: total}\n"
        f"entities:\n{''.join(entities)}"
        + (f"attributes:\n{attribute_text}" if attribute_text else "")
        + f"features:\n  history_n: {draw(st.integers(1, 5))}\n"
        f"  windows: [{', '.join(windows)}]\n  distinct_windows: [{', '.join(distinct)}]\n"
        f"  risk_windows: [{', '.join(risk)}]\n"
        f"  risk_delay: {draw(st.sampled_from(['30m', '1h', '6h']))}\n"
    )


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(text=contract_texts(), seed=st.integers(0, 10_000), pool=st.integers(2, 8))
def test_random_contracts_features_agree_on_every_path(text: str, seed: int, pool: int) -> None:
    contract = contract_from_text(text)
    spec = contract.spec
    assert spec.primary == contract.primary.name
    assert {f.kind for f in spec.features} <= {*contract.entity_kinds, "order"}
    _three_paths_agree(spec, contract_orders(spec, 100, seed, span_s=2 * DAY, pool=pool))


def test_a_missing_optional_attribute_counts_as_no_value_on_both_paths() -> None:
    contract = load_contract(SHIPPED / "card_present.yaml")
    spec = contract.spec
    assert "card__mcc_seen_in_last10" in spec.feature_names  # attributes are followed
    orders = contract_orders(spec, 300, 9, span_s=10 * DAY, pool=6)
    orders["entry_mode"] = (
        orders["entry_mode"].astype(object).where(np.arange(len(orders)) % 3 != 0, None)
    )
    one_run = _offline(orders, spec)
    filled = orders.assign(entry_mode=orders["entry_mode"].fillna(NO_VALUE))
    pd.testing.assert_frame_equal(one_run, _offline(filled, spec))
    assert_frames_close(_online_replay(orders, spec), one_run, tol=1e-9)
    assert one_run["card__distinct_entry_mode__last10"].max() > 1
