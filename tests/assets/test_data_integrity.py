"""Issue 12's ingestion and publication findings, each as a regression test through Dagster's
`materialize`: an accepted day is never lost to a bad delivery, a failed feature run publishes
nothing, an empty last day does not crash, and an order id accepted on one day is quarantined on
another. Each of these failed on the code before the fix."""

from __future__ import annotations

from datetime import date, timedelta

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from dagster import AssetCheckSeverity

from fraud_assets.assets.entity_features import entity_features, entity_features_checks
from fraud_assets.assets.orders_by_entity import orders_by_entity
from fraud_assets.assets.raw_orders import (
    ACCEPTED_FILES_STILL_LANDED,
    LANDING_FILES_ACCEPTED,
    ROW_COUNT_IN_RECENT_RANGE,
    raw_orders,
    raw_orders_checks,
)
from fraud_core import validation as v
from fraud_core.features.pipeline import snapshot_days
from fraud_core.model.dataset import feature_days_on_disk
from fraud_core.online_store import newest_snapshot
from fraud_core.storage import DataLayout

from ..checks import verdicts
from ..configs import START

DAYS = [START + timedelta(days=i) for i in range(4)]  # the `landed` fixture's days
INGEST = [raw_orders, raw_orders_checks]
FEATURES = [
    raw_orders,
    raw_orders_checks,
    orders_by_entity,
    entity_features,
    entity_features_checks,
]


def landing_file(layout: DataLayout, day: date) -> pd.DataFrame:
    return pd.read_parquet(layout.landing / f"orders_{day.isoformat()}.parquet")


def rows(path) -> int:
    return pq.read_metadata(path).num_rows


def evaluation(result, check: str, day: date):
    return verdicts(result)[(check, day.isoformat())]


def test_an_archived_landing_file_keeps_its_accepted_day(landed, materialize_range):
    """Finding 1: archiving a processed day's file and backfilling across it wiped the day."""
    assert materialize_range(INGEST, DAYS[0], DAYS[-1]).success
    before = pq.read_table(landed.raw_orders(DAYS[1]))
    archive = landed.root / "archive"
    archive.mkdir()
    name = f"orders_{DAYS[1].isoformat()}.parquet"
    (landed.landing / name).rename(archive / name)

    result = materialize_range(INGEST, DAYS[0], DAYS[-1])

    assert result.success  # archiving is safe: nothing blocks
    assert pq.read_table(landed.raw_orders(DAYS[1])).equals(before)
    gone = evaluation(result, ACCEPTED_FILES_STILL_LANDED, DAYS[1])
    assert not gone.passed and gone.severity == AssetCheckSeverity.WARN
    assert name in gone.description
    assert evaluation(result, ACCEPTED_FILES_STILL_LANDED, DAYS[0]).passed


def test_an_unreadable_or_truncated_redelivery_keeps_the_day_and_fails_a_blocking_check(
    landed, materialize_range
):
    """Finding 1: a truncated re-delivery (a parquet cut short) turned the day into 0 rows."""
    assert materialize_range(INGEST, DAYS[0], DAYS[-1]).success
    before = pq.read_table(landed.raw_orders(DAYS[2]))
    path = landed.landing / f"orders_{DAYS[2].isoformat()}.parquet"
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])

    result = materialize_range(INGEST, DAYS[0], DAYS[-1], raise_on_error=False)

    assert not result.success
    assert pq.read_table(landed.raw_orders(DAYS[2])).equals(before)
    failed = evaluation(result, LANDING_FILES_ACCEPTED, DAYS[2])
    assert not failed.passed and failed.severity == AssetCheckSeverity.ERROR
    assert path.name in failed.description and "unreadable" in failed.description
    assert evaluation(result, LANDING_FILES_ACCEPTED, DAYS[1]).passed


def test_a_shrinking_redelivery_needs_a_replace_marker(landed, materialize_range):
    """Finding 1: a re-delivery with most rows missing replaced the day without a word."""
    assert materialize_range(INGEST, DAYS[0], DAYS[0]).success
    full = rows(landed.raw_orders(DAYS[0]))
    path = landed.landing / f"orders_{DAYS[0].isoformat()}.parquet"
    landing_file(landed, DAYS[0]).head(full // 2).to_parquet(path)

    refused = materialize_range(INGEST, DAYS[0], DAYS[0], raise_on_error=False)
    assert not refused.success
    assert rows(landed.raw_orders(DAYS[0])) == full
    assert "shrink" in evaluation(refused, LANDING_FILES_ACCEPTED, DAYS[0]).description

    marker = landed.replace_marker(DAYS[0])
    marker.parent.mkdir(parents=True)
    marker.write_text("the shop cancelled half of the day's orders")
    replaced = materialize_range(INGEST, DAYS[0], DAYS[0])
    assert replaced.success
    assert rows(landed.raw_orders(DAYS[0])) == full // 2
    assert not marker.exists()


def test_non_utf8_bytes_quarantine_their_rows_not_the_day(landed, materialize_range):
    """Finding 1: a CSV with a few non-UTF-8 bytes was skipped whole (3,331 rows to 0)."""
    day = DAYS[3]
    frame = landing_file(landed, day)
    (landed.landing / f"orders_{day.isoformat()}.parquet").unlink()
    csv = landed.landing / f"orders_{day.isoformat()}.csv"
    frame.to_csv(csv, index=False)
    raw = bytearray(csv.read_bytes())
    lines = raw.split(b"\n")
    for i in (3, 10, 50):  # three rows get a Latin-1 byte in their e-mail
        lines[i] = lines[i].replace(b"@", b"\xe9@", 1)
    csv.write_bytes(b"\n".join(lines))

    result = materialize_range(INGEST, day, day)

    assert result.success
    quarantine = pd.read_parquet(landed.quarantine(day))
    assert v.reason_counts(quarantine) == {v.NOT_UTF8["email"]: 3}
    assert rows(landed.raw_orders(day)) + len(quarantine) == len(frame)


def test_an_order_id_of_another_day_is_quarantined_and_no_run_crashes(landed, materialize_range):
    """Finding 4: the same order_id on two days was accepted twice, and every later feature run
    over both days failed ("bucket results are not in day order")."""
    first = landing_file(landed, DAYS[0])
    third = landing_file(landed, DAYS[2])
    reused = first["order_id"].iloc[:3].tolist()
    third.loc[:2, "order_id"] = reused
    third.to_parquet(landed.landing / f"orders_{DAYS[2].isoformat()}.parquet")

    result = materialize_range(FEATURES, DAYS[0], DAYS[2])

    assert result.success
    quarantine = pd.read_parquet(landed.quarantine(DAYS[2]))
    assert v.reason_counts(quarantine) == {v.ORDER_ID_ACCEPTED_ON_OTHER_DAY: 3}
    assert sorted(quarantine["order_id"]) == sorted(reused)
    ids = pd.concat([pd.read_parquet(landed.raw_orders(d), columns=["order_id"]) for d in DAYS[:3]])
    assert not ids["order_id"].duplicated().any()
    # Re-ingesting the first day keeps its ids: they were its own.
    assert materialize_range(INGEST, DAYS[0], DAYS[0]).success
    assert rows(landed.raw_orders(DAYS[0])) == len(first)


def test_a_failed_feature_run_publishes_no_snapshot_and_no_feature_file(landed, materialize_range):
    """Finding 2: the entity-state snapshot was marked complete before the features were
    assembled and checked, so the online store, later runs and training read failed output."""
    assert materialize_range(FEATURES, DAYS[0], DAYS[1]).success
    assert snapshot_days(landed, "customer_id", 4) == [DAYS[1]]
    assert materialize_range([*INGEST, orders_by_entity], DAYS[2], DAYS[3]).success
    # A bucket file loses an order: the run computes and stages every state, then fails.
    bucket = landed.orders_by_entity("email", DAYS[3], 0)
    pq.write_table(pq.read_table(bucket).slice(1), bucket)

    failed = materialize_range(
        [entity_features, entity_features_checks], DAYS[2], DAYS[3], raise_on_error=False
    )

    assert not failed.success
    assert newest_snapshot(landed).day == DAYS[1]
    assert feature_days_on_disk(landed) == DAYS[:2]
    assert not landed.entity_state_dir("customer_id", DAYS[3]).exists()
    # The repaired buckets run from the last good snapshot; the failed run's staging is gone.
    assert materialize_range([orders_by_entity], DAYS[3], DAYS[3]).success
    assert materialize_range([entity_features, entity_features_checks], DAYS[2], DAYS[3]).success
    assert newest_snapshot(landed).day == DAYS[3]
    assert feature_days_on_disk(landed) == DAYS
    assert not any(landed.staging_root.glob("run=*"))


def test_a_bucket_write_that_fails_half_way_leaves_the_day_unmarked_and_refused(
    landed, materialize_range
):
    """A rerun of orders_by_entity replaces a day's bucket files one by one (in an object store,
    one PUT each): one that failed half-way left new and old buckets side by side, and feature
    runs read the mix. The day's marker is now withdrawn first and written last."""
    assert materialize_range(FEATURES, DAYS[0], DAYS[1]).success
    assert landed.orders_by_entity_days("email") == DAYS[:2]
    # A folder where the email kind's bucket 2 goes: the write of that file fails (a real
    # failure of the rename or PUT), after buckets 0 and 1 were replaced.
    blocked = landed.orders_by_entity("email", DAYS[1], 2)
    blocked.unlink()
    blocked.mkdir()
    (blocked / "keep").write_text("x")

    failed = materialize_range([orders_by_entity], DAYS[1], DAYS[1], raise_on_error=False)

    assert not failed.success
    assert not landed.orders_by_entity_marker("email", DAYS[1]).exists()
    assert landed.orders_by_entity_marker("customer_id", DAYS[1]).exists()  # written before
    assert landed.orders_by_entity_days("email") == DAYS[:1]
    refused = materialize_range(
        [entity_features, entity_features_checks], DAYS[1], DAYS[1], raise_on_error=False
    )
    assert not refused.success
    error = next(e for e in refused.all_events if e.is_step_failure).event_specific_data.error
    assert f"orders_by_entity is missing or incomplete for 1 day(s) ({DAYS[1]})" in error.message
    assert "Traceback" not in error.message
    assert feature_days_on_disk(landed) == DAYS[:2]  # the last good features stay

    (blocked / "keep").unlink()
    blocked.rmdir()
    assert materialize_range([orders_by_entity], DAYS[1], DAYS[1]).success
    assert landed.orders_by_entity_days("email") == DAYS[:2]
    assert materialize_range([entity_features, entity_features_checks], DAYS[1], DAYS[1]).success


def test_a_day_without_valid_orders_as_the_last_day_of_a_run(landed, materialize_range):
    """Finding 3: `np.nanmin` of an empty block crashed entity_features on such a day."""
    last = landing_file(landed, DAYS[3])
    last["order_amount"] = -1.0  # every row quarantined
    last.to_parquet(landed.landing / f"orders_{DAYS[3].isoformat()}.parquet")

    result = materialize_range(FEATURES, DAYS[0], DAYS[3])

    assert result.success
    assert rows(landed.raw_orders(DAYS[3])) == 0
    assert rows(landed.entity_features(DAYS[3])) == 0
    assert newest_snapshot(landed).day == DAYS[3]


def test_a_day_far_outside_the_recent_volume_warns(landed, materialize_range):
    """Finding 9 (last item): a 600x day raised no volume warning."""
    day = DAYS[3]
    usual = landing_file(landed, day)
    huge = pd.concat([usual] * 12, ignore_index=True)
    huge["order_id"] = [f"BULK{i:06d}" for i in range(len(huge))]
    huge.to_parquet(landed.landing / f"orders_{day.isoformat()}.parquet")

    result = materialize_range(INGEST, DAYS[0], day)

    assert result.success  # a warning: the day is accepted
    warned = evaluation(result, ROW_COUNT_IN_RECENT_RANGE, day)
    assert not warned.passed and warned.severity == AssetCheckSeverity.WARN
    assert str(len(huge)) in warned.description
    assert evaluation(result, ROW_COUNT_IN_RECENT_RANGE, DAYS[2]).passed


def test_features_that_break_a_blocking_rule_are_not_published(landed, materialize_range):
    """Finding 2, the check side: features that fail a blocking check never become visible
    (before, they were published and the snapshot marked before the checks ran)."""
    assert materialize_range(FEATURES, DAYS[0], DAYS[1]).success
    assert materialize_range([*INGEST, orders_by_entity], DAYS[2], DAYS[2]).success
    # An order amount below zero slips into the validated file (written by hand, not by
    # raw_orders): its `order_amount` feature breaks `feature_values_in_range`.
    path = landed.raw_orders(DAYS[2])
    table = pq.read_table(path)
    amounts = table.column("order_amount").to_numpy().copy()
    amounts[0] = -5.0
    index = table.schema.get_field_index("order_amount")
    pq.write_table(table.set_column(index, "order_amount", pa.array(amounts)), path)

    failed = materialize_range(
        [entity_features, entity_features_checks], DAYS[2], DAYS[2], raise_on_error=False
    )

    assert not failed.success
    failure = next(e for e in failed.all_events if e.is_step_failure)
    data = failure.event_specific_data
    assert "blocking check(s) failed" in data.error.message
    assert f"{DAYS[2]} feature_values_in_range" in data.user_failure_data.metadata["failed"].value
    assert feature_days_on_disk(landed) == DAYS[:2]
    assert newest_snapshot(landed).day == DAYS[1]
