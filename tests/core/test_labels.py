"""The label feed's pure parts (issue 16): label files read with refused rows named by field and
reason, the latest event known by a time wins, order rows are one source among the others, and
the realized-performance figures match a computation written out by hand."""

from __future__ import annotations

from datetime import UTC, date, datetime

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import average_precision_score

from fraud_core.labels import (
    LabelEvent,
    apply_feed,
    deduplicated,
    encode_entry,
    entries_table,
    events_of_day,
    first_affected,
    label_days,
    read_label_file,
    resolve,
)
from fraud_core.model.decisions import held_out
from fraud_core.performance import maturity, performance


def _events(rows: list[tuple]) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "order_id": [r[0] for r in rows],
            "is_fraud": [r[1] for r in rows],
            "label_date": pd.to_datetime([r[2] for r in rows], utc=True),
            "source": [r[3] for r in rows],
            "origin": "",
        }
    )


def test_a_label_file_keeps_its_good_rows_and_names_each_refused_one(tmp_path) -> None:
    path = tmp_path / "chargebacks-2026-03-02.csv"
    path.write_text(
        "order_id,is_fraud,label_date,source\n"
        "O1,1,2026-03-02T10:00:00Z,chargeback\n"
        "O2,true,2026-03-02,dispute\n"
        ",1,2026-03-02,chargeback\n"
        "O4,maybe,2026-03-02,chargeback\n"
        "O5,1,not a date,chargeback\n"
        "O6,0,2026-03-03T01:00:00+00:00,\n"
        "O7,1,2026-03-02,order_row\n"
    )
    read = read_label_file(path)
    assert read.problem is None
    assert read.events.column("order_id").to_pylist() == ["O1", "O2", "O6"]
    assert read.events.column("is_fraud").to_pylist() == [True, True, False]
    assert read.events.column("source").to_pylist() == ["chargeback", "dispute", "chargeback"]
    assert set(read.events.column("origin").to_pylist()) == {path.name}
    refused = read.refused.set_index("row")
    assert refused.loc[2, "field"] == "order_id"
    assert refused.loc[3, "field"] == "is_fraud" and refused.loc[3, "value"] == "maybe"
    assert refused.loc[4, "field"] == "label_date"
    assert refused.loc[6, "field"] == "source"  # a file may not pose as the order rows
    assert [d.isoformat() for d in read.days] == ["2026-03-02", "2026-03-03"]
    assert events_of_day(read.events, read.days[1]).column("order_id").to_pylist() == ["O6"]


def test_a_file_without_the_needed_columns_is_reported_whole(tmp_path) -> None:
    path = tmp_path / "labels.csv"
    path.write_text("order,fraud\nO1,1\n")
    read = read_label_file(path)
    assert "order_id" in read.problem and read.events.num_rows == 0


def test_the_service_entry_round_trips() -> None:
    event = LabelEvent("O9", True, datetime(2026, 5, 1, 12, tzinfo=UTC), "api", "api:abc")
    table = entries_table([encode_entry(event), encode_entry(event)])
    assert deduplicated(table).num_rows == 1
    row = table.to_pylist()[0]
    assert row["order_id"] == "O9" and row["is_fraud"] and row["source"] == "api"
    assert row["label_date"] == event.label_date
    assert [d.isoformat() for d in label_days(table)] == ["2026-05-01"]
    with pytest.raises(ValueError, match="label entry"):
        entries_table([b"\x01\x02"])


def test_the_latest_event_known_by_a_time_wins() -> None:
    events = _events(
        [
            ("A", True, "2026-01-05", "chargeback"),
            ("A", False, "2026-01-20", "analyst"),  # cleared later
            ("B", True, "2026-01-10", "api"),
            ("C", False, "2026-01-07", "order_row"),
            ("C", True, "2026-01-07", "analyst"),  # same instant: the stronger source
        ]
    )
    ids = pd.Series(["A", "B", "C", "D"])
    everything = resolve(ids, events)
    assert everything["is_fraud"].tolist() == [0, 1, 1, 0]
    assert everything["source"].tolist() == ["analyst", "api", "analyst", ""]
    early = resolve(ids, events, pd.Timestamp("2026-01-08", tz="UTC"))
    assert early["is_fraud"].tolist() == [1, 0, 1, 0]
    assert early["label_date"][0] == pd.Timestamp("2026-01-05", tz="UTC")
    assert early["label_date"].isna().tolist() == [False, True, False, True]


def test_order_rows_are_one_source_among_the_feed() -> None:
    frame = pd.DataFrame(
        {
            "order_id": ["A", "B", "C"],
            "is_fraud": np.array([1, 0, 0], dtype=np.int8),
            "label_date": pd.to_datetime(["2026-01-05", None, None], utc=True),
        }
    )
    feed = _events([("A", False, "2026-01-09", "dispute"), ("B", True, "2026-01-06", "api")])
    merged = apply_feed(frame, feed)
    assert merged["is_fraud"].tolist() == [0, 1, 0]
    assert merged["label_date"][1] == pd.Timestamp("2026-01-06", tz="UTC")
    # as known on the 7th: A's row label stands, B's posted label is known
    as_of = apply_feed(frame, feed, pd.Timestamp("2026-01-07", tz="UTC"))
    assert as_of["is_fraud"].tolist() == [1, 1, 0]
    assert frame["is_fraud"].tolist() == [1, 0, 0]  # the input is left as it was
    assert apply_feed(frame, feed.iloc[:0]) is frame


def test_performance_matches_a_computation_by_hand() -> None:
    rng = np.random.default_rng(4)
    n = 400
    score = rng.random(n)
    decision = np.where(score > 0.95, "decline", np.where(score > 0.8, "review", "approve"))
    fraud = rng.random(n) < 0.1 + 0.5 * score
    cents = rng.integers(100, 50_000, n)
    got = performance(decision, score, cents, fraud)
    watched = decision != "decline"
    reviewed = decision == "review"
    assert got.orders == n and got.decisions["decline"] == int((~watched).sum())
    assert got.ap_watched == pytest.approx(average_precision_score(fraud[watched], score[watched]))
    assert got.precision_at_review == pytest.approx(fraud[reviewed].mean())
    assert got.recall_at_review == pytest.approx((fraud & reviewed).sum() / (fraud & watched).sum())
    assert got.fraud_cents_caught == cents[fraud & (decision != "approve")].sum()
    assert got.fraud_cents_missed == cents[fraud & (decision == "approve")].sum()
    assert got.decline_rate == pytest.approx((~watched).mean())
    # realized calibration: what the scores expected among watched orders, and the Brier score
    assert got.expected_fraud_watched == pytest.approx(score[watched].sum())
    assert got.brier_watched == pytest.approx(np.mean((score[watched] - fraud[watched]) ** 2))


def test_a_day_without_review_or_fraud_has_no_figure_rather_than_a_wrong_one() -> None:
    got = performance(np.array(["approve"] * 5), np.linspace(0, 1, 5), np.ones(5), np.zeros(5))
    assert got.precision_at_review is None and got.recall_at_review is None
    assert got.ap_watched is None
    assert got.brier_watched == pytest.approx(np.mean(np.linspace(0, 1, 5) ** 2))
    assert maturity(datetime(2026, 3, 1).date(), datetime(2026, 3, 12, tzinfo=UTC)) == 10.0


def test_held_out_declines_are_watched_and_give_the_precision_at_decline() -> None:
    ids = [f"O{i}" for i in range(20_000)]
    share = sum(held_out(i, 0.1) for i in ids) / len(ids)
    assert 0.09 < share < 0.11 and not any(held_out(i, 0.0) for i in ids[:100])
    decision = np.array(["approve", "review", "decline", "holdout", "holdout", "holdout"])
    fraud = np.array([False, True, True, True, True, False])
    cents = np.array([100, 200, 300, 400, 500, 600])
    got = performance(decision, np.linspace(0.1, 0.9, 6), cents, fraud)
    assert got.holdout == 3 and got.precision_at_decline_holdout == pytest.approx(2 / 3)
    assert got.watched == 5 and got.decline_rate == pytest.approx(1 / 6)
    assert got.fraud_cents_held_out == 900 and got.fraud_cents_caught == 500
    assert got.fraud_cents_missed == 0


def test_a_label_reaches_features_from_its_date_or_its_orders_risk_window(tmp_path) -> None:
    path = tmp_path / "cb.csv"
    path.write_text(
        "order_id,is_fraud,label_date,order_date\n"
        "O1,1,2026-03-02T10:00:00Z,2026-03-01T09:00:00Z\n"  # a week after the order: 03-08
        "O2,1,2026-03-20T10:00:00Z,2026-03-01T08:00:00Z\n"  # the label itself, later: 03-20
        "O3,1,2026-03-04T10:00:00Z,\n"  # the order's date unknown: the label's, 03-04
        "O4,1,2026-03-04T10:00:00Z,2026-03-05T00:00:00Z\n"  # placed after its label: refused
    )
    read = read_label_file(path)
    assert read.refused[["row", "field"]].values.tolist() == [[3, "order_date"]]
    week = 7 * 86_400
    events = read.events
    assert first_affected(events.slice(0, 1), week) == date(2026, 3, 8)
    assert first_affected(events.slice(1, 1), week) == date(2026, 3, 20)
    assert first_affected(events, week) == date(2026, 3, 4)
    assert first_affected(events.slice(0, 0), week) is None


def test_a_parquet_label_file_with_some_order_dates_left_out(tmp_path) -> None:
    path = tmp_path / "cb.parquet"
    pd.DataFrame(
        {
            "order_id": ["O1", "O2"],
            "is_fraud": [True, False],
            "label_date": pd.to_datetime(["2026-03-02 10:00", "2026-03-03 00:00"], utc=True),
            "order_date": pd.to_datetime(["2026-03-01 09:00", None], utc=True),
        }
    ).to_parquet(path)
    read = read_label_file(path)
    assert read.problem is None and read.refused.empty
    assert read.events.column("order_date").to_pylist()[1] is None
    assert read.events.column("is_fraud").to_pylist() == [True, False]
