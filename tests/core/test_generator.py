"""The sample-data generator: its contract (schema, determinism, days, labels) and the fraud
behaviour the rest of the platform has to learn from it."""

from __future__ import annotations

from dataclasses import replace
from datetime import date, timedelta

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from hypothesis import given
from hypothesis import strategies as st
from sklearn.metrics import average_precision_score

from fraud_core.generator import (
    PATTERN_COLUMN,
    PATTERNS,
    GeneratorConfig,
    _format,
    _ip_strings,
    generate_orders,
    iter_daily_orders,
)
from fraud_core.schema import COLUMN_NAMES, ORDER_SCHEMA

SMALL = GeneratorConfig(
    n_customers=500, n_emails=500, n_ips=500, orders_per_day=300, days=5, seed=3
)
# Big enough for every pattern to appear many times, small enough to build in a fraction of a second.
SIGNAL = GeneratorConfig(
    n_customers=2_000, n_emails=2_000, n_ips=2_000, orders_per_day=1_000, days=60, seed=7
)
WARM_UP = pd.Timedelta(days=14)  # before this, every customer is "new" to the data


@pytest.fixture(scope="module")
def orders() -> pd.DataFrame:
    return generate_orders(SIGNAL, with_pattern=True)


@pytest.fixture(scope="module")
def past(orders: pd.DataFrame) -> pd.DataFrame:
    return past_features(orders)


def past_features(df: pd.DataFrame) -> pd.DataFrame:
    """A few behavioural features per order from earlier orders only (rows are in time order)."""
    row = np.arange(len(df))
    by_customer = df.groupby("customer_id", sort=False)
    customer_n = by_customer.cumcount().to_numpy()
    prev_sum = by_customer["order_amount"].cumsum().to_numpy() - df["order_amount"].to_numpy()
    with np.errstate(invalid="ignore", divide="ignore"):
        prev_mean = np.where(customer_n > 0, prev_sum / customer_n, np.nan)

    # Distinct other customers on the same IP in the 24 hours before the order.
    left = df[["ip_addr", "order_date", "customer_id"]].assign(row=row)
    pairs = left.merge(left, on="ip_addr", suffixes=("", "_p"))
    earlier = (pairs["order_date_p"] < pairs["order_date"]) & (
        pairs["order_date_p"] >= pairs["order_date"] - pd.Timedelta(hours=24)
    )
    pairs = pairs[earlier & (pairs["customer_id_p"] != pairs["customer_id"])]
    ip_customers_24h = pairs.groupby("row")["customer_id_p"].nunique().reindex(row, fill_value=0)

    customer_1h = (
        df.assign(row=row)
        .groupby("customer_id", sort=False)
        .rolling("1h", on="order_date", closed="left")["row"]
        .count()
    )
    customer_1h.index = customer_1h.index.get_level_values(1)
    return pd.DataFrame(
        {
            "customer_n": customer_n,
            "new_email_for_customer": (customer_n > 0)
            & (df.groupby(["customer_id", "email"]).cumcount().to_numpy() == 0),
            "new_ip_for_customer": (customer_n > 0)
            & (df.groupby(["customer_id", "ip_addr"]).cumcount().to_numpy() == 0),
            "amount_rel_prev_mean": df["order_amount"].to_numpy() / prev_mean,
            "ip_customers_24h": ip_customers_24h.to_numpy(),
            "customer_orders_1h": customer_1h.sort_index().to_numpy(),
        },
        index=df.index,
    )


# --- contract --------------------------------------------------------------------------------


def test_same_seed_gives_identical_data_and_another_seed_different_data() -> None:
    first = generate_orders(SMALL)
    again = generate_orders(SMALL)
    pd.testing.assert_frame_equal(first, again)
    assert pd.util.hash_pandas_object(first).equals(pd.util.hash_pandas_object(again))

    other = generate_orders(replace(SMALL, seed=4))
    assert not first["customer_id"].equals(other["customer_id"])
    assert not first["order_amount"].equals(other["order_amount"])


def test_columns_and_dtypes_follow_the_schema(orders: pd.DataFrame) -> None:
    df = generate_orders(SMALL)
    assert tuple(df.columns) == COLUMN_NAMES
    for name in ("order_id", "customer_id", "email", "ip_addr"):
        assert pd.api.types.is_string_dtype(df[name]), name
    for name in ("order_date", "label_date"):
        assert df[name].dtype == "datetime64[us, UTC]", name
    assert df["is_fraud"].dtype == np.int8
    for name in ("order_amount", "location_lat", "location_long"):
        assert df[name].dtype == np.float64, name
    table = pa.Table.from_pandas(df, schema=ORDER_SCHEMA, preserve_index=False)
    assert table.schema.equals(ORDER_SCHEMA)
    assert (
        df[list(c for c in COLUMN_NAMES if c not in ("is_fraud", "label_date"))].notna().all().all()
    )

    assert tuple(orders.columns) == (*COLUMN_NAMES, PATTERN_COLUMN)
    assert set(orders[PATTERN_COLUMN].astype(str)) <= set(PATTERNS)


def test_ids_look_like_ids(orders: pd.DataFrame) -> None:
    assert orders["order_id"].is_unique
    assert orders["order_id"].str.fullmatch(r"O\d{9}").all()
    assert orders["customer_id"].str.fullmatch(r"C\d{6,}").all()
    assert orders["email"].str.fullmatch(r"u\d{6,}@example\.com").all()
    octets = orders["ip_addr"].str.split(".", expand=True)
    assert octets.shape[1] == 4
    values = octets.astype(int)
    assert ((values >= 0) & (values <= 255)).all().all()
    assert (octets == values.astype(str)).all().all()  # no leading zeros
    assert orders["customer_id"].nunique() > SIGNAL.n_customers * 0.8


def test_orders_are_sorted_rounded_and_inside_their_day() -> None:
    config = replace(SMALL, start=date(2025, 12, 30))
    days = list(iter_daily_orders(config))
    assert [d for d, _ in days] == [date(2025, 12, 30) + timedelta(days=i) for i in range(5)]
    for day, df in days:
        start = pd.Timestamp(day, tz="UTC")
        assert df["order_date"].between(start, start + pd.Timedelta(days=1), inclusive="left").all()
        assert df["order_date"].is_monotonic_increasing
    whole = generate_orders(config)
    daily = pd.concat([df for _, df in days], ignore_index=True)
    pd.testing.assert_frame_equal(whole, daily)
    assert (whole["order_date"].astype("int64") % 1_000_000 == 0).all()  # whole seconds
    assert (whole["order_amount"] >= 0).all()
    assert np.array_equal(whole["order_amount"], whole["order_amount"].round(2))


def test_fraud_rate_and_label_delays(orders: pd.DataFrame) -> None:
    assert set(orders["is_fraud"].unique()) == {0, 1}
    assert 0.005 <= orders["is_fraud"].mean() <= 0.02
    fraud = orders["is_fraud"] == 1
    assert orders.loc[~fraud, "label_date"].isna().all()
    assert orders.loc[fraud, "label_date"].notna().all()
    delay = orders.loc[fraud, "label_date"] - orders.loc[fraud, "order_date"]
    assert delay.min() >= pd.Timedelta(days=1)
    assert delay.max() <= pd.Timedelta(days=60)
    assert delay.std() > pd.Timedelta(days=5)  # spread out, not one fixed delay
    assert ((orders[PATTERN_COLUMN] == "none") == ~fraud).all()


def test_fraud_rate_knob_is_honoured() -> None:
    clean = generate_orders(replace(SMALL, fraud_rate=0.0))
    assert clean["is_fraud"].sum() == 0
    assert clean["label_date"].isna().all()


@pytest.mark.parametrize(
    "change",
    [
        {"days": 0},
        {"n_customers": 0},
        {"seed": -1},
        {"fraud_rate": 0.7},
        {"label_delay_days": (0, 5)},
    ],
)
def test_invalid_config_is_refused(change: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        GeneratorConfig(**change)


# --- fraud behaviour -------------------------------------------------------------------------


def test_a_simple_past_only_rule_finds_fraud(orders: pd.DataFrame, past: pd.DataFrame) -> None:
    score = (
        np.log1p(past["ip_customers_24h"])
        + past["new_email_for_customer"]
        + (past["customer_n"] == 0)
        + np.log1p(past["amount_rel_prev_mean"].fillna(0).clip(0, 20))
    )
    warm = orders["order_date"] >= orders["order_date"].min() + WARM_UP
    y = orders.loc[warm, "is_fraud"]
    ap = average_precision_score(y, score[warm])
    assert ap >= 5 * y.mean(), (ap, y.mean())


def test_every_pattern_is_present(orders: pd.DataFrame) -> None:
    counts = orders[PATTERN_COLUMN].value_counts()
    for pattern in PATTERNS:
        assert counts.get(pattern, 0) >= 30, (pattern, counts.get(pattern, 0))


def _first_of_event(orders: pd.DataFrame, pattern: str, keys: list[str]) -> pd.Series:
    rows = orders[PATTERN_COLUMN] == pattern
    return rows & ~orders[rows].duplicated(keys).reindex(orders.index, fill_value=True)


def test_account_takeover_is_a_known_customer_with_new_email_ip_amount_and_place(
    orders: pd.DataFrame, past: pd.DataFrame
) -> None:
    first = _first_of_event(orders, "account_takeover", ["customer_id", "ip_addr"])
    p = past[first]
    assert (p["customer_n"] > 0).mean() >= 0.95
    assert p["new_ip_for_customer"].mean() >= 0.9
    assert 0.7 <= p["new_email_for_customer"].mean() <= 0.95  # mostly, not always
    assert (p["amount_rel_prev_mean"] > 2).mean() >= 0.8

    home = (
        orders[orders["is_fraud"] == 0]
        .groupby("customer_id")[["location_lat", "location_long"]]
        .median()
    )
    taken = orders[first].join(home.add_suffix("_home"), on="customer_id").dropna()
    distance = np.hypot(
        taken["location_lat"] - taken["location_lat_home"],
        taken["location_long"] - taken["location_long_home"],
    )
    assert (distance > 1.0).mean() >= 0.8


def test_fraud_rings_share_an_ip_or_email_across_many_customers(orders: pd.DataFrame) -> None:
    ring = orders[orders[PATTERN_COLUMN] == "fraud_ring"]
    by_ip = ring.groupby("ip_addr")["customer_id"].transform("nunique")
    by_email = ring.groupby("email")["customer_id"].transform("nunique")
    shared = np.maximum(by_ip, by_email)
    assert (shared >= 5).mean() >= 0.9
    assert ring["customer_id"].nunique() >= 0.8 * len(ring)  # many customers, not one busy one
    # A ring can stay active past midnight: its later orders land on the next day's file.
    email_rings = ring[by_email >= 5].groupby("email")["order_date"]
    assert (email_rings.agg(lambda t: t.dt.date.nunique()) > 1).any()


def test_card_testing_is_small_orders_then_a_big_one_within_an_hour(orders: pd.DataFrame) -> None:
    tests = orders[orders[PATTERN_COLUMN] == "card_testing"]
    bursts = tests.groupby(["customer_id", "ip_addr"], sort=False)
    good = bursts.apply(
        lambda b: (
            (b["order_amount"].iloc[:-1] <= 5).sum() >= 3
            and b["order_amount"].iloc[-1] > 5 * b["order_amount"].iloc[:-1].max()
            and b["order_date"].iloc[-1] - b["order_date"].iloc[0] <= pd.Timedelta(hours=1)
        )
    )
    assert len(good) >= 10
    assert good.mean() >= 0.9


def test_stolen_identities_are_new_customers_with_high_amounts(
    orders: pd.DataFrame, past: pd.DataFrame
) -> None:
    stolen = orders[PATTERN_COLUMN] == "stolen_identity"
    their_orders = orders[orders["customer_id"].isin(orders.loc[stolen, "customer_id"])]
    assert (their_orders[PATTERN_COLUMN] == "stolen_identity").all()  # never seen before or after
    first = _first_of_event(orders, "stolen_identity", ["customer_id"])
    assert (past.loc[first, "customer_n"] == 0).all()
    honest = orders.loc[orders["is_fraud"] == 0, "order_amount"].median()
    assert orders.loc[stolen, "order_amount"].median() > 3 * honest


def test_honest_noise_keeps_every_simple_rule_imperfect(
    orders: pd.DataFrame, past: pd.DataFrame
) -> None:
    warm = orders["order_date"] >= orders["order_date"].min() + WARM_UP
    fraud = orders["is_fraud"] == 1
    rules = {
        "new e-mail for a known customer": past["new_email_for_customer"],
        "new IP for a known customer": past["new_ip_for_customer"],
        "first order of a customer": past["customer_n"] == 0,
        "amount over 5x the customer's mean": past["amount_rel_prev_mean"] > 5,
        "IP used by 3+ other customers in 24h": past["ip_customers_24h"] >= 3,
        "another order of the customer in the last hour": past["customer_orders_1h"] > 0,
    }
    for name, hit in rules.items():
        hit = hit & warm
        assert (hit & ~fraud).sum() >= 20, f"no honest order triggers: {name}"
        assert (hit & fraud).sum() >= 10, f"no fraud triggers: {name}"
        assert fraud[hit].mean() < 0.6, f"too perfect: {name}"
    # and some fraud triggers none of them (friendly fraud looks like an honest order)
    friendly = orders[PATTERN_COLUMN] == "friendly_fraud"
    none_hit = ~pd.concat(rules, axis=1).any(axis=1)
    assert (none_hit & friendly).sum() >= 0.5 * friendly.sum()


# --- string formatting -----------------------------------------------------------------------


@given(st.lists(st.integers(0, 10**12), max_size=50), st.integers(1, 12))
def test_format_matches_python_formatting(values: list[int], width: int) -> None:
    got = _format(len(values), "C", (np.array(values, np.int64), width), "@x").to_pylist()
    assert got == [f"C{v:0{width}d}@x" for v in values]


@given(st.lists(st.integers(0, 3 * 2**24), max_size=200, unique=True))
def test_ip_strings_are_distinct_dotted_quads(index: list[int]) -> None:
    ips = _ip_strings(np.array(index, np.int64)).to_pylist()
    assert len(set(ips)) == len(ips)
    for ip in ips:
        octets = [int(x) for x in ip.split(".")]
        assert len(octets) == 4 and all(0 <= o <= 255 for o in octets)
        assert 11 <= octets[0] <= 126
