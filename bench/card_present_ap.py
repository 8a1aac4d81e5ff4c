"""What the card-present contract's attributes add: the same generated transactions, split and
small XGBoost model, with the contract's features without its attributes; with its categorical
ones (`mcc`, `entry_mode`) followed by every entity like a counterpart; and with every attribute
feature (also each categorical's share of the entity's last orders and its first use in a
window, and the windowed aggregates of the numeric `distance_km`).
A check that the data is learnable through the contract's features, not a model-quality figure
(issue 19 owns those).

    .venv/bin/python bench/card_present_ap.py

Prints one line per feature set: features, seconds to compute them (the first includes the
kernel's compilation on a fresh cache), average precision on the later days for three seeds of
a row-subsampled model (the later days hold a few dozen frauds: AP moves by several points with
the seed alone) and their fraud rate.
"""

from __future__ import annotations

import time
from dataclasses import replace
from datetime import date

import xgboost as xgb
from sklearn.metrics import average_precision_score

from fraud_core.card_generator import CardGeneratorConfig, card_orders
from fraud_core.contract import SHIPPED, load_contract
from fraud_core.features.offline import advance
from fraud_core.features.spec import EntitySpec

CONFIG = CardGeneratorConfig(n_cards=3000, n_merchants=300, txns_per_day=1500, days=60)
TRAIN = (date(2026, 1, 8), date(2026, 2, 10))  # [first, last)
TEST_FROM = date(2026, 2, 15)
PARAMS = {"max_depth": 4, "eta": 0.2, "objective": "binary:logistic", "nthread": 2}
PARAMS |= {"subsample": 0.8}
ROUNDS = 100
SEEDS = (0, 1, 2)


def main() -> None:
    contract = load_contract(SHIPPED / "card_present.yaml")
    orders = card_orders(CONFIG)
    attributes = {a.name for a in contract.attributes}
    full = contract.spec
    as_counterparts = replace(full, categorical=(), numeric=())
    without = replace(
        as_counterparts,
        entities=tuple(
            EntitySpec(e.kind, tuple(c for c in e.counterparts if c not in attributes))
            for e in full.entities
        ),
    )
    days = orders["order_date"].dt.date.to_numpy()
    train = (days >= TRAIN[0]) & (days < TRAIN[1])
    test = days >= TEST_FROM
    y = orders["is_fraud"].to_numpy()
    end_s = int(orders["order_date"].max().timestamp()) + 1
    for name, spec in (
        ("entities only", without),
        ("+ categorical attributes as counterparts", as_counterparts),
        ("+ every attribute feature", full),
    ):
        started = time.perf_counter()
        features, _ = advance({}, orders, end_s, spec)
        seconds = time.perf_counter() - started
        x = features[spec.feature_names].to_numpy()
        aps = []
        for seed in SEEDS:  # rows subsampled per tree: the seed's spread shows the noise
            model = xgb.train({**PARAMS, "seed": seed}, xgb.DMatrix(x[train], y[train]), ROUNDS)
            aps.append(average_precision_score(y[test], model.predict(xgb.DMatrix(x[test]))))
        print(
            f"{name}: {len(spec.feature_names)} features in {seconds:.1f} s; AP "
            f"{' / '.join(f'{ap:.3f}' for ap in aps)} (seeds {SEEDS}) at fraud rate "
            f"{y[test].mean():.2%} ({int(y[test].sum())} frauds)"
        )


if __name__ == "__main__":
    main()
