"""`raw_orders` and its checks through Dagster: range runs over several days, quarantined rows,
the quarantine-share limit, and a code location that loads."""

from __future__ import annotations

import logging
from datetime import date, timedelta

import pandas as pd
import pyarrow.parquet as pq
from dagster import AssetCheckSeverity, DagsterInstance, Definitions

from fraud_assets.assets.raw_orders import (
    ACCEPTED_FILES_STILL_LANDED,
    AMOUNTS_ARE_FINITE_AND_NON_NEGATIVE,
    DAY_HAS_ORDERS,
    ORDER_DATES_INSIDE_PARTITION,
    ORDER_IDS_ARE_UNIQUE,
    QUARANTINED_SHARE_BELOW_LIMIT,
    RAW_ORDERS_CHECK_SPECS,
    SCHEMA_MATCHES_CONTRACT,
    check_raw_orders_day,
    raw_orders,
    raw_orders_checks,
)
from fraud_core import validation as v
from fraud_core.schema import ORDER_SCHEMA
from fraud_core.storage import write_parquet

from ..checks import verdicts
from ..configs import START

DAYS = [START + timedelta(days=i) for i in range(4)]
CHECK_NAMES = {spec.name for spec in RAW_ORDERS_CHECK_SPECS}


def checks_by_day(result):
    return verdicts(result)


def landing_rows(layout, day: date) -> pd.DataFrame:
    return pd.read_parquet(layout.landing / f"orders_{day.isoformat()}.parquet")


def test_a_range_run_validates_every_day_and_every_check_passes(landed, materialize_range):
    result = materialize_range([raw_orders, raw_orders_checks], DAYS[0], DAYS[-1])

    assert result.success
    keys = [d.isoformat() for d in DAYS]
    materialized = {
        m.partition: m.materialization for m in result.get_asset_materialization_events()
    }
    assert sorted(materialized) == keys
    for day in DAYS:
        written = pq.read_table(landed.raw_orders(day))
        landing = landing_rows(landed, day)
        assert written.schema.remove_metadata().equals(ORDER_SCHEMA)
        assert written.column("order_id").to_pylist() == landing["order_id"].tolist()
        assert pq.read_metadata(landed.quarantine(day)).num_rows == 0
        metadata = materialized[day.isoformat()].metadata
        assert metadata["dagster/row_count"].value == len(landing)
        assert metadata["quarantined_count"].value == 0
        assert metadata["fraud_rate"].value == (landing["is_fraud"] == 1).mean()
        assert len(metadata["preview"].value.records) == 5

    evaluations = checks_by_day(result)
    assert set(evaluations) == {(name, key) for name in CHECK_NAMES for key in keys}
    assert all(e.passed for e in evaluations.values())


def test_bad_rows_are_quarantined_with_reasons_and_the_share_check_fails(
    landed, materialize_range, monkeypatch
):
    day = DAYS[0]
    landing = landing_rows(landed, day)
    late = landing.head(25).astype("string").reset_index(drop=True)
    late["order_id"] = [f"LATE{i:03d}" for i in range(25)]
    late.loc[0:4, "order_amount"] = "-3.50"
    late.loc[5:9, "email"] = ""
    late.loc[10:14, "order_date"] = "2026-01-02T08:00:00Z"
    late.loc[15:19, "order_id"] = landing["order_id"].iloc[100:105].to_numpy()  # sent twice
    # rows 20-24 are good: CSV text that must come out typed
    csv_name = "orders_2026-01-01_late.csv"
    late.to_csv(landed.landing / csv_name, index=False)

    result = materialize_range([raw_orders, raw_orders_checks], DAYS[0], DAYS[1])

    assert result.success  # the share check is not blocking: it reports, it does not stop
    quarantine = pd.read_parquet(landed.quarantine(day))
    assert v.reason_counts(quarantine) == {
        v.AMOUNT_NEGATIVE: 5,
        v.ENTITY_MISSING["email"]: 5,
        v.ORDER_DATE_OUTSIDE_DAY: 5,
        v.ORDER_ID_DUPLICATE: 5,
    }
    assert set(quarantine["source_file"]) == {csv_name}
    valid = pd.read_parquet(landed.raw_orders(day))
    assert len(valid) == len(landing) + 5
    good_late = valid[valid["order_id"].str.startswith("LATE")]
    assert good_late["order_id"].tolist() == [f"LATE{i:03d}" for i in range(20, 25)]
    assert good_late["order_date"].dtype == "datetime64[us, UTC]"

    share = 20 / (len(landing) + 25)
    evaluations = checks_by_day(result)
    failed = evaluations[(QUARANTINED_SHARE_BELOW_LIMIT, day.isoformat())]
    assert not failed.passed
    assert failed.severity == AssetCheckSeverity.ERROR
    assert failed.figures["quarantined_share"] == share
    assert evaluations[(QUARANTINED_SHARE_BELOW_LIMIT, DAYS[1].isoformat())].passed
    others = [e for (name, _), e in evaluations.items() if name != QUARANTINED_SHARE_BELOW_LIMIT]
    assert others and all(e.passed for e in others)
    mat = {m.partition: m.materialization for m in result.get_asset_materialization_events()}
    assert mat[day.isoformat()].metadata["quarantined_count"].value == 20

    # The limit is configurable: by environment ...
    monkeypatch.setenv("FRAUD_MAX_QUARANTINE_SHARE", "0.2")
    again = materialize_range([raw_orders, raw_orders_checks], day, day)
    assert checks_by_day(again)[(QUARANTINED_SHARE_BELOW_LIMIT, day.isoformat())].passed
    # ... and by run config, which wins.
    strict = {"ops": {"raw_orders_checks": {"config": {"max_quarantine_share": 0.01}}}}
    again = materialize_range([raw_orders, raw_orders_checks], day, day, run_config=strict)
    assert not checks_by_day(again)[(QUARANTINED_SHARE_BELOW_LIMIT, day.isoformat())].passed

    # The bad file removed: the accepted day is kept (its 5 good late orders too), and a
    # warning names the file that is gone ...
    (landed.landing / csv_name).unlink()
    kept = materialize_range([raw_orders, raw_orders_checks], day, day)
    assert pq.read_metadata(landed.quarantine(day)).num_rows == 20
    assert pq.read_metadata(landed.raw_orders(day)).num_rows == len(landing) + 5
    gone = checks_by_day(kept)[(ACCEPTED_FILES_STILL_LANDED, day.isoformat())]
    assert not gone.passed and gone.severity == AssetCheckSeverity.WARN
    assert csv_name in gone.description
    # ... until a replace marker says the landing files as they are now are the whole day.
    landed.replace_marker(day).parent.mkdir(parents=True, exist_ok=True)
    landed.replace_marker(day).write_text("late file withdrawn by the shop")
    fixed = materialize_range([raw_orders, raw_orders_checks], day, day)
    assert pq.read_metadata(landed.quarantine(day)).num_rows == 0
    assert pq.read_metadata(landed.raw_orders(day)).num_rows == len(landing)
    assert all(e.passed for e in fixed.get_asset_check_evaluations())
    assert not landed.replace_marker(day).exists()  # consumed


def test_a_day_without_landing_file_is_an_empty_day_visible_as_a_warning(landed, materialize_range):
    missing = DAYS[-1] + timedelta(days=1)  # nothing landed for this day
    instance = DagsterInstance.ephemeral()
    result = materialize_range(
        [raw_orders, raw_orders_checks], DAYS[-1], missing, instance=instance
    )

    assert result.success
    empty = pq.read_table(landed.raw_orders(missing))
    assert empty.num_rows == 0 and empty.schema.remove_metadata().equals(ORDER_SCHEMA)
    assert pq.read_metadata(landed.quarantine(missing)).num_rows == 0
    evaluations = checks_by_day(result)
    not_passed = {key for key, e in evaluations.items() if not e.passed}
    assert not_passed == {(DAY_HAS_ORDERS, missing.isoformat())}
    empty_day = evaluations[(DAY_HAS_ORDERS, missing.isoformat())]
    assert empty_day.severity == AssetCheckSeverity.WARN
    assert "no landing file" in empty_day.description
    assert empty_day.figures["decision"] == "empty"
    assert evaluations[(DAY_HAS_ORDERS, DAYS[-1].isoformat())].passed
    warnings = [
        e.user_message
        for e in instance.all_logs(result.run_id)
        if e.level == logging.WARNING and "no landing file" in e.user_message
    ]
    assert len(warnings) == 1 and missing.isoformat() in warnings[0]


def test_checks_fail_on_a_written_file_that_breaks_the_contract(landed, materialize_range):
    day = DAYS[0]
    materialize_range([raw_orders], day, day)
    orders = pd.read_parquet(landed.raw_orders(day))
    broken = pd.concat([orders, orders.head(2)], ignore_index=True)  # two ids twice
    broken.loc[0, "order_amount"] = -1.0
    broken.loc[1, "order_amount"] = float("inf")
    broken.loc[2, "order_date"] = pd.Timestamp("2026-01-05", tz="UTC")
    write_parquet(broken, landed.raw_orders(day), ORDER_SCHEMA)

    results = check_raw_orders_day(landed, day, max_share=0.05)
    assert results[SCHEMA_MATCHES_CONTRACT].passed
    assert results[ORDER_IDS_ARE_UNIQUE].metadata["duplicate_order_ids"] == 2
    amounts = results[AMOUNTS_ARE_FINITE_AND_NON_NEGATIVE]
    assert not amounts.passed
    assert (amounts.metadata["negative"], amounts.metadata["not_finite"]) == (1, 1)
    assert results[ORDER_DATES_INSIDE_PARTITION].metadata["outside"] == 1
    assert not results[ORDER_DATES_INSIDE_PARTITION].passed

    write_parquet(broken.drop(columns=["ip_addr"]), landed.raw_orders(day))
    assert not check_raw_orders_day(landed, day, max_share=0.05)[SCHEMA_MATCHES_CONTRACT].passed


def test_the_code_location_loads():
    from fraud_assets.definitions import defs

    Definitions.validate_loadable(defs)
    job = defs.resolve_job_def("ingest_orders_job")
    assert {"raw_orders", "orders_by_entity", "raw_orders_checks"} <= {n.name for n in job.nodes}
