"""Landing files in a contract's own shape (issue 15): other column names, order times with an
offset or in local time, amounts in minor units. They validate to the same orders as the
built-in shape, and bad rows are quarantined under the source's names with reasons naming the
source's columns."""

from __future__ import annotations

from datetime import date

import pandas as pd
import pandas.testing as pdt
import pytest

from fraud_core import validation as v
from fraud_core.contract import SHIPPED, contract_from_text, load_contract
from fraud_core.contract.source import BUILTIN_FORMAT, SourceFormat, source_orders
from fraud_core.contract.transforms import keyed_digest
from fraud_core.generator import GeneratorConfig, generate_orders
from fraud_core.landing import read_order_dates, scan_landing
from fraud_core.validation import validate_orders

DAY = date(2026, 3, 29)  # Europe/Berlin moves its clocks that night
SMALL = GeneratorConfig(
    n_customers=200, n_emails=200, n_ips=200, orders_per_day=150, days=2, start=DAY, seed=3
)
EXPORT = SourceFormat.of(load_contract(SHIPPED / "ecommerce_export.yaml"))


def _day_orders() -> pd.DataFrame:
    orders = generate_orders(SMALL)
    return orders[orders["order_date"].dt.date == DAY].reset_index(drop=True)


def _as_csv_text(frame: pd.DataFrame) -> pd.DataFrame:
    """What a CSV reader gives: every value as text, empty cells as ""."""
    return frame.astype("string").fillna("").astype(object)


def test_the_export_shape_validates_to_the_same_orders():
    orders = _day_orders()
    builtin = validate_orders(orders, DAY, source=BUILTIN_FORMAT)
    assert builtin.quarantine.empty

    export = source_orders(EXPORT, builtin.valid)
    assert list(export.columns[:6]) == [
        "id",
        "created_at",
        "user_id",
        "email",
        "ip",
        "amount_cents",
    ]
    assert export["created_at"].str.match(r"^2026-03-(29|30)T\d\d:\d\d:\d\d\+0[12]:00$").all()
    assert export["amount_cents"].dtype == "int64"

    for shape in (export, _as_csv_text(export)):
        result = validate_orders(shape, DAY, source=EXPORT)
        assert result.quarantine.empty, result.reason_counts
        pdt.assert_frame_equal(result.valid, builtin.valid)


def test_bad_rows_keep_the_source_names_and_their_reasons_name_the_source_columns():
    valid = validate_orders(_day_orders(), DAY, source=BUILTIN_FORMAT).valid.head(5)
    rows = _as_csv_text(source_orders(EXPORT, valid))
    rows.loc[0, "created_at"] = "2026-03-29T10:00:00"  # no offset
    rows.loc[1, "amount_cents"] = "1299.5"  # half a cent
    rows.loc[2, "user_id"] = ""
    rows.loc[3, "chargeback_at"] = "2026-04-20 10:00"  # a label time without offset
    result = validate_orders(rows, DAY, source=EXPORT)

    assert len(result.valid) == 1 and len(result.quarantine) == 4
    assert result.quarantine["reason"].tolist() == [
        "created_at: no UTC offset (the contract reads order times with one)",
        "amount_cents: not a whole number of minor units (the contract's unit)",
        "user_id: missing or empty",
        "chargeback_at: no UTC offset (the contract reads times with one)",
    ]
    assert {"id", "created_at", "amount_cents", "user_id", "ship_lat"} <= set(result.quarantine)
    assert not {"order_id", "order_date", "customer_id"} & set(result.quarantine)
    assert result.quarantine.loc[1, "amount_cents"] == "1299.5"  # as it arrived


def test_local_times_in_a_named_zone(tmp_path):
    text = (
        (SHIPPED / "ecommerce_export.yaml")
        .read_text()
        .replace("zone: offset", "zone: Europe/Berlin")
    )
    berlin = SourceFormat.of(contract_from_text(text))
    times = pd.Series(
        [
            "2026-03-29T01:30:00",  # CET: 00:30 UTC
            "2026-03-29T02:30:00",  # skipped by the change to summer time
            "2026-03-29T12:00:00",  # CEST: 10:00 UTC
            "2026-03-29T12:00:00Z",  # carries its own offset: taken as written
            "not a time",
            "",
        ]
    )
    ts, present, refused = berlin.timestamps(times)
    assert ts.tolist()[:4] == [
        pd.Timestamp("2026-03-29 00:30", tz="UTC"),
        pd.NaT,
        pd.Timestamp("2026-03-29 10:00", tz="UTC"),
        pd.Timestamp("2026-03-29 12:00", tz="UTC"),
    ]
    assert present.tolist() == [True, True, True, True, True, False]
    assert refused.tolist() == [False, True, False, False, False, False]
    repeated = berlin.timestamps(pd.Series(["2026-10-25T02:30:00"]))  # summer time ends
    assert repeated[2].tolist() == [True]

    rows = _as_csv_text(
        source_orders(
            berlin, validate_orders(_day_orders(), DAY, source=BUILTIN_FORMAT).valid.head(3)
        )
    )
    rows.loc[0, "created_at"] = "2026-03-29T02:30:00"
    result = validate_orders(rows, DAY, source=berlin)
    assert result.quarantine["reason"].tolist() == [
        "created_at: not a time of the contract's zone (a DST change skips or repeats it)"
    ]


def test_the_landing_scan_reads_the_contracts_time_column(tmp_path):
    """A file named after one day holds orders of the next in local time only: the scan puts
    each row in its UTC day, through the contract's time column and offsets."""
    valid = validate_orders(_day_orders(), DAY, source=BUILTIN_FORMAT).valid
    export = source_orders(EXPORT, valid)
    path = tmp_path / f"orders_{DAY.isoformat()}.csv"
    export.to_csv(path, index=False)
    assert read_order_dates(path, EXPORT).tolist() == export["created_at"].tolist()
    (scanned,) = scan_landing(tmp_path, EXPORT)
    assert scanned.problem is None and scanned.days == (DAY,)
    # under the built-in contract the same file has no order_date column: no order days
    assert scan_landing(tmp_path, BUILTIN_FORMAT)[0].order_days == ()


@pytest.mark.parametrize("name", ["ecommerce.yaml", "ecommerce_export.yaml"])
def test_the_shipped_contracts_this_version_applies(name, monkeypatch):
    from fraud_core.contract import CONTRACT_ENV, applied_contract

    monkeypatch.setenv(CONTRACT_ENV, str(SHIPPED / name))
    assert applied_contract().name == name.removesuffix(".yaml")
    assert v.validate_orders  # the validation reads the same contract through applied_format


CARD_CONTRACT = """
version: 1
name: card_shop
source:
  order_id: txn
  order_time: {column: at, zone: UTC}
  amount: {column: amount, unit: major}
entities:
  - {name: card, column: card_number, primary: true, personal: true, counterparts: [terminal]}
  - {name: card_bin, column: card_number, transform: prefix/6}
  - {name: terminal, column: terminal_id, transform: lower_strip, counterparts: [card]}
  - {name: email_domain, column: email, transform: email_domain}
attributes:
  - {name: mcc, type: categorical, required: false}
  - {name: items, type: numeric}
privacy:
  key_env: FRAUD_TEST_CARD_KEY
features:
  history_n: 5
  windows: [1h, 1d]
  risk_windows: [30d]
  risk_delay: 7d
"""


def test_any_contracts_entities_and_attributes_are_validated(monkeypatch):
    from fraud_core.schema import columns_of

    monkeypatch.setenv("FRAUD_TEST_CARD_KEY", "k" * 32)
    contract = contract_from_text(CARD_CONTRACT)
    shape = SourceFormat.of(contract)
    rows = pd.DataFrame(
        {
            "txn": ["T1", "T2", "T3", "T4", "T5", "T6"],
            "at": ["2026-03-29T10:00:00Z"] * 6,
            "amount": ["10", "20", "30", "40", "50", "60"],
            "card_number": ["4111111111111111", "4111111111111111", "55000000", "", "4000", "41"],
            "terminal_id": [" POS-1 ", "pos-1", "POS-2", "POS-3", "POS-4", "POS-5"],
            "email": ["A@Shop.example", "b@shop.example", "no-at", "c@x.org", "d@x.org", "e@x.org"],
            "mcc": ["5411", "", "5812", "5411", "5411", "5411"],
            "items": ["1", "2", "3", "1", "1", "x"],
        }
    )
    result = validate_orders(rows, DAY, source=shape)
    assert list(result.valid.columns) == [c.name for c in columns_of(contract)]
    assert result.valid["order_id"].tolist() == ["T1", "T2", "T5"]
    card = result.valid["card"]
    assert card[0] == card[1] != card[2] and len(card[0]) == 64  # a keyed digest, not the number
    assert "4111" not in "".join(card)
    assert result.valid["card_bin"].tolist() == ["411111", "411111", "4000"]
    assert result.valid["terminal"].tolist() == ["pos-1", "pos-1", "pos-4"]
    assert result.valid["email_domain"].tolist() == ["shop.example", "shop.example", "x.org"]
    assert result.valid["mcc"].isna().tolist() == [False, True, False]  # optional
    assert result.valid["items"].tolist() == [1.0, 2.0, 1.0]
    assert result.quarantine["reason"].tolist() == [
        "email: email_domain finds nothing in it",
        "card_number: missing or empty",
        "items: missing or not a number",
    ]
    # what arrived, except personal data: its keyed digest (empty stays empty)
    quarantined = result.quarantine["card_number"]
    assert quarantined[0] == keyed_digest(pd.Series(["55000000"], dtype="string"), b"k" * 32)[0]
    assert pd.isna(quarantined[1]) and len(quarantined[2]) == 64
    assert result.quarantine["terminal_id"].tolist() == ["POS-2", "POS-3", "POS-5"]  # as sent
