"""The card-present sample data (issue 15): deterministic, valid under
`contracts/card_present.yaml`, every fraud pattern in it, and learnable from the features that
contract declares, computed by the same kernel as the built-in ones."""

from __future__ import annotations

from datetime import date

import pandas as pd
import pytest
import xgboost as xgb
from sklearn.metrics import average_precision_score

from fraud_core.card_generator import CASH_OUT_MCCS, CardGeneratorConfig, iter_card_days
from fraud_core.contract import SHIPPED, load_contract
from fraud_core.contract.source import SourceFormat
from fraud_core.features.offline import advance, canonical_order
from fraud_core.validation import validate_orders

CONTRACT = load_contract(SHIPPED / "card_present.yaml")
CONFIG = CardGeneratorConfig(n_cards=2_000, n_merchants=200, txns_per_day=800, days=56, seed=3)


@pytest.fixture(scope="module")
def orders() -> pd.DataFrame:
    """Every day validated under the card-present contract (nothing may be quarantined)."""
    shape = SourceFormat.of(CONTRACT)
    valid = []
    for day, frame in iter_card_days(CONFIG):
        result = validate_orders(frame, day, source=shape)
        assert result.quarantine.empty, (day, result.reason_counts)
        valid.append(result.valid)
    return pd.concat(valid, ignore_index=True)


def test_the_same_seed_gives_the_same_transactions():
    small = CardGeneratorConfig(n_cards=300, n_merchants=40, txns_per_day=100, days=4, seed=9)
    first = pd.concat(frame for _, frame in iter_card_days(small))
    again = pd.concat(frame for _, frame in iter_card_days(small))
    pd.testing.assert_frame_equal(first, again)
    other = pd.concat(
        frame
        for _, frame in iter_card_days(
            CardGeneratorConfig(n_cards=300, n_merchants=40, txns_per_day=100, days=4, seed=10)
        )
    )
    assert (
        not first["card_token"]
        .reset_index(drop=True)
        .equals(other["card_token"].reset_index(drop=True))
    )


def test_every_pattern_is_there_with_late_labels(orders):
    fraud = orders[orders["is_fraud"] == 1]
    assert 0.002 < len(fraud) / len(orders) < 0.03
    assert ((fraud["entry_mode"] == "manual") & (fraud["order_amount"] <= 3)).any()  # testing
    honest = orders[orders["is_fraud"] == 0]
    cash_out = fraud["mcc"].isin(CASH_OUT_MCCS).mean()  # spent where it turns into cash
    assert cash_out > 5 * honest["mcc"].isin(CASH_OUT_MCCS).mean()
    per_card_hours = fraud.groupby("card")["order_date"].agg(
        lambda t: (t.max() - t.min()).total_seconds() / 3600
    )
    assert (per_card_hours < 24).mean() > 0.5  # stolen cards are used fast
    delay = (fraud["label_date"] - fraud["order_date"]).dt.days
    assert delay.min() >= CONFIG.label_delay_days[0] and delay.max() <= CONFIG.label_delay_days[1]
    assert orders.loc[orders["is_fraud"] == 0, "label_date"].isna().all()


def test_the_contracts_features_learn_it(orders):
    spec = CONTRACT.spec
    ordered = canonical_order(orders)
    end_s = int(ordered["order_date"].max().timestamp()) + 1
    features, _ = advance({}, ordered, end_s, spec)
    assert list(features.columns[1:]) == spec.feature_names
    x = features.drop(columns=["order_id"]).to_numpy()
    y = ordered["is_fraud"].to_numpy()
    days = ordered["order_date"].dt.date.to_numpy()
    train = (days >= date(2026, 1, 8)) & (days < date(2026, 2, 5))
    test = days >= date(2026, 2, 10)
    params = {"max_depth": 4, "eta": 0.2, "objective": "binary:logistic", "nthread": 2, "seed": 0}
    model = xgb.train(params, xgb.DMatrix(x[train], y[train]), 80)
    ap = average_precision_score(y[test], model.predict(xgb.DMatrix(x[test])))
    assert y[test].sum() >= 10
    assert ap > 20 * y[test].mean() and ap > 0.3, (ap, y[test].mean())
