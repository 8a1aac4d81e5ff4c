"""Validation of landing rows: every quarantine reason on its own, CSV coercion, no row lost."""

from __future__ import annotations

from datetime import date

import numpy as np
import pandas as pd
import pytest

from fraud_core import validation as v
from fraud_core.generator import GeneratorConfig, generate_orders, write_landing_files
from fraud_core.schema import COLUMN_NAMES
from fraud_core.validation import (
    landing_files_for_day,
    read_landing_day,
    read_landing_file,
    validate_orders,
)

DAY = date(2026, 1, 1)
SMALL = GeneratorConfig(
    n_customers=200, n_emails=200, n_ips=200, orders_per_day=150, days=2, start=DAY, seed=3
)


def good_row(**changes: str) -> dict[str, str]:
    """One valid order as a CSV gives it (all text), with `changes` applied."""
    row = {
        "order_id": "O1",
        "order_date": "2026-01-01T10:00:00Z",
        "customer_id": "C1",
        "email": "a@example.com",
        "ip_addr": "10.0.0.1",
        "order_amount": "12.5",
        "location_lat": "48.85",
        "location_long": "2.35",
        "is_fraud": "1",
        "label_date": "2026-01-20T00:00:00Z",
    }
    row.update(changes)
    return row


def frame(*rows: dict[str, str]) -> pd.DataFrame:
    return pd.DataFrame(list(rows), dtype=str)


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"order_id": ""}, v.ORDER_ID_MISSING),
        ({"order_id": "   "}, v.ORDER_ID_MISSING),
        ({"order_date": ""}, v.ORDER_DATE_MISSING),
        ({"order_date": "yesterday"}, v.ORDER_DATE_UNPARSABLE),
        ({"order_date": "2026-01-02T00:00:00Z"}, v.ORDER_DATE_OUTSIDE_DAY),
        ({"order_date": "2025-12-31T23:59:59Z"}, v.ORDER_DATE_OUTSIDE_DAY),
        # 01:00 in Paris is 00:00 UTC of the partition day: inside; 00:30+01:00 is the day before.
        ({"order_date": "2026-01-01T00:30:00+01:00"}, v.ORDER_DATE_OUTSIDE_DAY),
        ({"customer_id": ""}, v.ENTITY_MISSING["customer_id"]),
        ({"email": ""}, v.ENTITY_MISSING["email"]),
        ({"ip_addr": " "}, v.ENTITY_MISSING["ip_addr"]),
        ({"order_amount": ""}, v.AMOUNT_MISSING),
        ({"order_amount": "12,50"}, v.AMOUNT_UNPARSABLE),
        ({"order_amount": "-0.01"}, v.AMOUNT_NEGATIVE),
        ({"order_amount": "inf"}, v.AMOUNT_NOT_FINITE),
        ({"order_amount": "NaN"}, v.AMOUNT_NOT_FINITE),
        ({"location_lat": "91"}, v.COORDINATE_OUT_OF_RANGE["location_lat"]),
        ({"location_lat": "north"}, v.COORDINATE_MISSING["location_lat"]),
        ({"location_long": "-180.5"}, v.COORDINATE_OUT_OF_RANGE["location_long"]),
        ({"location_long": ""}, v.COORDINATE_MISSING["location_long"]),
        ({"is_fraud": "2"}, v.IS_FRAUD_INVALID),
        ({"is_fraud": "yes"}, v.IS_FRAUD_INVALID),
        ({"label_date": "soon"}, v.LABEL_DATE_UNPARSABLE),
        ({"label_date": "2026-01-01T09:59:59Z"}, v.LABEL_DATE_BEFORE_ORDER),
    ],
)
def test_each_broken_field_is_quarantined_with_its_reason(changes, reason):
    ok = good_row(order_id="O0")
    bad = good_row(**changes)
    result = validate_orders(frame(ok, bad), DAY, source_file="orders_2026-01-01.csv")

    assert result.valid["order_id"].tolist() == ["O0"]
    assert len(result.quarantine) == 1
    row = result.quarantine.iloc[0]
    assert row["reason"] == reason
    assert reason.split(":")[0] in changes  # the reason names the broken field
    assert row["source_file"] == "orders_2026-01-01.csv"
    for name, value in bad.items():  # the original text is kept as it came
        assert row[name] == value


def test_duplicate_order_id_keeps_the_first_and_quarantines_later_ones():
    rows = [
        good_row(order_id="O1", order_amount="1"),
        good_row(order_id="O2"),
        good_row(order_id="O1", order_amount="2"),
        good_row(order_id="O1", order_amount="3"),
    ]
    result = validate_orders(frame(*rows), DAY)
    assert result.valid["order_id"].tolist() == ["O1", "O2"]
    assert result.valid["order_amount"].tolist() == [1.0, 12.5]
    assert result.quarantine["order_amount"].tolist() == ["2", "3"]
    assert set(result.quarantine["reason"]) == {v.ORDER_ID_DUPLICATE}


def test_a_rejected_row_does_not_shadow_a_later_valid_one_with_the_same_id():
    rows = [good_row(order_id="O1", order_amount="-5"), good_row(order_id="O1")]
    result = validate_orders(frame(*rows), DAY)
    assert result.valid["order_id"].tolist() == ["O1"]
    assert result.quarantine["reason"].tolist() == [v.AMOUNT_NEGATIVE]


def test_csv_text_is_coerced_to_the_contract_types():
    rows = [
        good_row(order_id=" O1 ", order_date="2026-01-01 23:59:59", order_amount="0.006"),
        good_row(order_id="O2", is_fraud="", label_date="", order_amount="10"),
        good_row(
            order_id="O3",
            is_fraud="0.0",
            order_date="2026-01-01T12:00:00+02:00",
            order_amount="7.123",
        ),
    ]
    result = validate_orders(frame(*rows), DAY)
    valid = result.valid
    assert result.quarantine.empty
    assert valid.dtypes.equals(v.empty_orders().dtypes)
    assert valid["order_id"].tolist() == ["O1", "O2", "O3"]
    assert valid["order_date"].tolist() == [
        pd.Timestamp("2026-01-01 23:59:59", tz="UTC"),
        pd.Timestamp("2026-01-01 10:00:00", tz="UTC"),
        pd.Timestamp("2026-01-01 10:00:00", tz="UTC"),
    ]
    assert valid["order_amount"].tolist() == [0.01, 10.0, 7.12]  # rounded to cents
    assert valid["is_fraud"].tolist() == [1, 0, 0]  # empty means "not known to be fraud"
    assert valid["label_date"].isna().tolist() == [False, True, False]


def test_generated_csv_and_parquet_validate_to_the_same_orders(tmp_path):
    parquet = write_landing_files(SMALL, tmp_path / "pq", fmt="parquet")[0]
    csv = write_landing_files(SMALL, tmp_path / "csv", fmt="csv")[0]
    from_csv = validate_orders(read_landing_file(csv), DAY)
    from_parquet = validate_orders(read_landing_file(parquet), DAY)
    assert from_csv.quarantine.empty and from_parquet.quarantine.empty
    pd.testing.assert_frame_equal(from_csv.valid, from_parquet.valid)
    expected = generate_orders(SMALL)
    expected = expected[expected["order_date"] < pd.Timestamp("2026-01-02", tz="UTC")]
    assert from_parquet.valid["order_id"].tolist() == expected["order_id"].tolist()


def test_no_row_is_lost_and_every_column_comes_back(tmp_path):
    orders = generate_orders(SMALL)
    day_one = orders[orders["order_date"] < pd.Timestamp("2026-01-02", tz="UTC")]
    text = day_one.astype("string")
    rng = np.random.default_rng(0)
    broken = text.copy()
    picks = rng.choice(np.arange(7, len(text)), 20, replace=False)  # rows 0-6 stay good
    broken.iloc[picks[:5], broken.columns.get_loc("order_amount")] = "-1"
    broken.iloc[picks[5:10], broken.columns.get_loc("email")] = ""
    broken.iloc[picks[10:15], broken.columns.get_loc("order_date")] = "2026-02-01T00:00:00Z"
    broken.iloc[picks[15:], broken.columns.get_loc("location_lat")] = "100"
    broken = pd.concat([broken, broken.iloc[:7]], ignore_index=True)  # 7 duplicates at the end
    broken["extra_column"] = "x"

    result = validate_orders(broken, DAY)
    assert len(result.valid) + len(result.quarantine) == len(broken)
    assert len(result.quarantine) == 20 + 7
    assert result.valid["order_id"].is_unique
    assert list(result.valid.columns) == list(COLUMN_NAMES)
    assert list(result.quarantine.columns) == [
        *COLUMN_NAMES,
        "extra_column",
        "reason",
        "source_file",
    ]
    counts = result.reason_counts
    assert counts[v.AMOUNT_NEGATIVE] == 5
    assert counts[v.ENTITY_MISSING["email"]] == 5
    assert counts[v.ORDER_DATE_OUTSIDE_DAY] == 5
    assert counts[v.COORDINATE_OUT_OF_RANGE["location_lat"]] == 5
    assert counts[v.ORDER_ID_DUPLICATE] == 7


def test_empty_input_gives_empty_typed_frames():
    result = validate_orders(pd.DataFrame(), DAY)
    assert result.valid.empty and result.quarantine.empty
    assert result.valid.dtypes.equals(v.empty_orders().dtypes)
    assert list(result.quarantine.columns) == [*COLUMN_NAMES, "reason", "source_file"]


def test_missing_required_column_quarantines_every_row():
    df = frame(good_row(order_id="O1"), good_row(order_id="O2")).drop(columns=["ip_addr"])
    result = validate_orders(df, DAY)
    assert result.valid.empty
    assert result.quarantine["reason"].tolist() == [v.ENTITY_MISSING["ip_addr"]] * 2


def test_landing_files_of_a_day_by_the_date_in_their_name(tmp_path):
    for name in (
        "orders_2026-01-01.parquet",
        "late_2026-01-01_part2.csv",
        "orders_2026-01-02.parquet",
        ".orders_2026-01-01.parquet.1234.tmp",  # an atomic write in progress
        "orders_2026-01-01.json",
        "notes.txt",
    ):
        (tmp_path / name).write_text("")
    found = [p.name for p in landing_files_for_day(tmp_path, DAY)]
    assert found == ["late_2026-01-01_part2.csv", "orders_2026-01-01.parquet"]
    assert landing_files_for_day(tmp_path / "missing", DAY) == []


def test_duplicates_across_parquet_and_csv_files_of_one_day(tmp_path):
    write_landing_files(SMALL, tmp_path, fmt="parquet")
    first_rows = generate_orders(SMALL).head(3).astype("string")
    first_rows.to_csv(tmp_path / "resent_2026-01-01.csv", index=False)

    df, files = read_landing_day(tmp_path, DAY)
    result = validate_orders(df, DAY)
    assert [f.name for f in files] == ["orders_2026-01-01.parquet", "resent_2026-01-01.csv"]
    assert len(result.valid) + len(result.quarantine) == len(df)
    assert result.quarantine["reason"].tolist() == [v.ORDER_ID_DUPLICATE] * 3
    assert set(result.quarantine["source_file"]) == {"resent_2026-01-01.csv"}


def test_orders_dated_in_the_future_are_quarantined_by_default(monkeypatch):
    """Finding 5 of issue 12 (landing side): one far-future order would move its entities'
    clocks; orders dated more than FRAUD_MAX_FUTURE_S after now are refused, by default."""
    far = pd.DataFrame([good_row(order_date="2099-12-31T12:00:00Z", label_date="", is_fraud="0")])
    result = v.validate_orders(far, date(2099, 12, 31))  # its own day: only the clock refuses it
    assert v.reason_counts(result.quarantine) == {v.ORDER_DATE_IN_FUTURE: 1}

    times = ["2026-01-01T10:00:00Z", "2026-01-01T10:05:00Z", "2026-01-01T10:05:01Z"]
    df = pd.DataFrame(
        [good_row(order_id=f"O{i}", order_date=t, label_date="") for i, t in enumerate(times)]
    )
    latest = pd.Timestamp("2026-01-01T10:05:00Z").to_pydatetime()
    result = v.validate_orders(df, DAY, latest=latest)
    assert result.valid["order_id"].tolist() == ["O0", "O1"]
    assert v.reason_counts(result.quarantine) == {v.ORDER_DATE_IN_FUTURE: 1}

    monkeypatch.setenv("FRAUD_MAX_FUTURE_S", "not a number")
    with pytest.raises(ValueError, match="FRAUD_MAX_FUTURE_S"):
        v.validate_orders(df, DAY)
