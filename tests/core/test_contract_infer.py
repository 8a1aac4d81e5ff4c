"""`fraud contract infer`: a contract proposed from a sample reads that sample the way the
hand-written one does, and says what it cannot tell."""

from __future__ import annotations

from datetime import date

import numpy as np
import pandas as pd
import pytest

from fraud_core.contract import SHIPPED, contract_from_text, load_contract
from fraud_core.contract.infer import infer_contract
from fraud_core.contract.loader import unserved_terms
from fraud_core.contract.source import BUILTIN_FORMAT, SourceFormat, source_orders
from fraud_core.generator import GeneratorConfig, generate_orders

CONFIG = GeneratorConfig(
    n_customers=300,
    n_emails=300,
    n_ips=300,
    orders_per_day=300,
    days=3,
    seed=4,
    start=date(2026, 1, 1),
)


@pytest.fixture(scope="module")
def orders() -> pd.DataFrame:
    return generate_orders(CONFIG)


def test_the_builtin_shape_infers_the_builtin_contract(orders):
    proposed = contract_from_text(infer_contract(orders, "ours"))
    assert proposed.name == "ours"
    assert unserved_terms(proposed) == []
    assert SourceFormat.of(proposed) == BUILTIN_FORMAT
    assert proposed.model_terms() == load_contract(SHIPPED / "ecommerce.yaml").model_terms()


def test_an_export_infers_its_columns_offsets_and_cents(orders):
    export = load_contract(SHIPPED / "ecommerce_export.yaml")
    shape = SourceFormat.of(export)
    text = source_orders(shape, orders).astype("string").fillna("").astype(object)  # as a CSV
    proposed = contract_from_text(infer_contract(text))
    assert SourceFormat.of(proposed) == shape
    assert unserved_terms(proposed) == []


def test_other_entities_and_attributes_are_proposed():
    rng = np.random.default_rng(0)
    n = 500
    frame = pd.DataFrame(
        {
            "txn_id": [f"T{i:05d}" for i in range(n)],
            "ts": pd.date_range("2026-01-01", periods=n, freq="7min").strftime("%Y-%m-%d %H:%M:%S"),
            "amount": np.round(rng.lognormal(3, 1, n), 2),
            "card_id": rng.choice([f"K{i}" for i in range(80)], n),
            "terminal_id": rng.choice([f"P{i}" for i in range(40)], n),
            "mcc": rng.choice(["5411", "5812", "4111"], n).astype(object),
            "entry_mode": rng.choice(["chip", "swipe", "contactless"], n),
        }
    )
    text = infer_contract(frame, "card_present")
    assert "zone: UTC           # values without an offset" in text
    proposed = contract_from_text(text)
    assert [e.name for e in proposed.entities] == ["card_id", "terminal_id"]
    assert proposed.primary.name == "card_id"
    assert proposed.entity("card_id").counterparts == ("terminal_id",)
    assert {(a.name, a.type) for a in proposed.attributes} == {
        ("mcc", "categorical"),  # an integer code, by its name
        ("entry_mode", "categorical"),
    }
    assert proposed.source.amount.unit == "major"
    assert unserved_terms(proposed) == []  # the card names the terminal: the service serves it


def test_a_sample_without_an_amount_is_refused_naming_what_is_missing():
    frame = pd.DataFrame(
        {"id": ["a", "b"], "when": ["2026-01-01T00:00:00Z"] * 2, "user": ["u", "v"]}
    )
    with pytest.raises(ValueError, match=r"cannot tell the amount apart .*\(id, when, user\)"):
        infer_contract(frame)


def test_column_names_from_the_file_cannot_change_the_proposal():
    n = 200
    frame = pd.DataFrame(
        {
            "order id": [f"O{i}" for i in range(n)],
            "created at": ["2026-01-01T10:00:00Z"] * n,
            "total amount": [12.5] * n,
            "user id": [f"U{i % 20}" for i in range(n)],
            "yes": [1.5] * n,
            "lat\nprivacy:\n  key_env: X": [10.0] * n,
        }
    )
    proposed = contract_from_text(infer_contract(frame))
    assert proposed.source.order_id == "order id"
    assert proposed.source.order_time.column == "created at"
    assert proposed.entity("customer_id").column == "user id"
    assert {a.column for a in proposed.attributes} == {"yes", "lat\nprivacy:\n  key_env: X"}
    assert proposed.privacy_key_env is None
