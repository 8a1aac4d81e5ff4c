"""`raw_orders`: each day's landing files validated against the order contract, and the checks
that hold the written files to it.

Rows that break the contract are not dropped: they go to the day's quarantine file with the
reason, so the fraud team can fix and re-drop them.
"""

# No `from __future__ import annotations` here: Dagster 1.13 checks the `context` annotation
# of decorated functions at definition time and rejects a string.
import os
from datetime import date, timedelta

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
from dagster import (
    AssetCheckExecutionContext,
    AssetCheckSeverity,
    AssetCheckSpec,
    AssetExecutionContext,
    BackfillPolicy,
    Config,
    MaterializeResult,
    MetadataValue,
    asset,
    multi_asset_check,
)
from pydantic import Field

from fraud_assets.lib.metadata import order_column_schema, preview_table
from fraud_assets.lib.partitioned_checks import DayResult, TargetCache, partition_check_events
from fraud_assets.partitions import daily_partitions, partition_days
from fraud_assets.resources import DataLayoutResource
from fraud_core.landing import read_day_rows, scan_landing
from fraud_core.schema import ORDER_SCHEMA
from fraud_core.storage import DataLayout, write_parquet
from fraud_core.validation import (
    REASON,
    quarantine_schema,
    reason_counts,
    summarize,
    validate_orders,
)

SCHEMA_MATCHES_CONTRACT = "schema_matches_contract"
ORDER_IDS_ARE_UNIQUE = "order_ids_are_unique"
AMOUNTS_ARE_FINITE_AND_NON_NEGATIVE = "amounts_are_finite_and_non_negative"
ORDER_DATES_INSIDE_PARTITION = "order_dates_inside_partition"
QUARANTINED_SHARE_BELOW_LIMIT = "quarantined_share_below_limit"

MAX_QUARANTINE_SHARE_ENV = "FRAUD_MAX_QUARANTINE_SHARE"
DEFAULT_MAX_QUARANTINE_SHARE = 0.05


@asset(
    partitions_def=daily_partitions,
    backfill_policy=BackfillPolicy.single_run(),
    group_name="ingest",
    kinds={"pandas", "parquet"},
    metadata={"dagster/column_schema": order_column_schema()},
    description=(
        "The orders of one day (UTC) as dropped in the landing folder, checked against the "
        "order contract: typed, amounts rounded to cents, one row per order_id. Rows that break "
        "the contract are kept aside in the day's quarantine file with the reason (see the "
        "`quarantined_reasons` metadata); a day without a landing file is an empty day. "
        "A day's orders are the rows of the files named after it plus the rows dated that day "
        "in any other landing file; an unreadable file is skipped with a warning."
    ),
)
def raw_orders(context: AssetExecutionContext, layout: DataLayoutResource) -> MaterializeResult:
    data = layout.layout()
    total = quarantined = 0
    landing = scan_landing(data.landing)  # once per run: which days each file's orders fall in
    for day in partition_days(context):
        day_rows = read_day_rows(landing, day)
        result, files = validate_orders(day_rows.rows, day), day_rows.files
        for bad in day_rows.unreadable:
            context.log.warning(f"{day}: skipped landing file {bad.name}: {bad.problem}")
        if not files:
            context.log.warning(f"{day}: no landing file in {data.landing}; writing an empty day")
        write_parquet(result.valid, data.raw_orders(day), ORDER_SCHEMA)
        # Written even when empty, so a rerun replaces the quarantine of an earlier bad file.
        write_parquet(
            result.quarantine,
            data.quarantine(day),
            quarantine_schema(list(result.quarantine.columns)),
        )
        summary = summarize(result)
        context.add_asset_metadata(
            {
                "dagster/row_count": summary["row_count"],
                "fraud_rate": MetadataValue.float(summary["fraud_rate"]),
                "quarantined_count": summary["quarantined_count"],
                "quarantined_share": MetadataValue.float(summary["quarantined_share"]),
                "quarantined_reasons": MetadataValue.json(result.reason_counts),
                "landing_files": MetadataValue.json([f.name for f in files]),
                "unreadable_landing_files": MetadataValue.json(
                    {f.name: f.problem for f in day_rows.unreadable}
                ),
                "path": MetadataValue.path(str(data.raw_orders(day))),
                "quarantine_path": MetadataValue.path(str(data.quarantine(day))),
                "preview": preview_table(result.valid),
            },
            partition_key=day.isoformat(),
        )
        total += summary["row_count"]
        quarantined += summary["quarantined_count"]
        if summary["quarantined_count"]:
            context.log.warning(
                f"{day}: {summary['quarantined_count']} rows quarantined: {result.reason_counts}"
            )
    context.log.info(f"{total} orders validated, {quarantined} quarantined")
    return MaterializeResult()


class RawOrdersChecksConfig(Config):
    max_quarantine_share: float | None = Field(
        default=None,
        description=f"Highest acceptable share of quarantined rows per day; empty: "
        f"${MAX_QUARANTINE_SHARE_ENV}, else {DEFAULT_MAX_QUARANTINE_SHARE}.",
    )

    def resolved_max_share(self) -> float:
        if self.max_quarantine_share is not None:
            return self.max_quarantine_share
        return float(os.environ.get(MAX_QUARANTINE_SHARE_ENV, DEFAULT_MAX_QUARANTINE_SHARE))


def _spec(name: str, description: str, blocking: bool) -> AssetCheckSpec:
    return AssetCheckSpec(
        name,
        asset=raw_orders,
        partitions_def=daily_partitions,
        blocking=blocking,
        description=description,
    )


RAW_ORDERS_CHECK_SPECS = [
    _spec(
        SCHEMA_MATCHES_CONTRACT,
        "The written file has exactly the contract's columns and types.",
        True,
    ),
    _spec(ORDER_IDS_ARE_UNIQUE, "No order_id appears twice in a day.", True),
    _spec(AMOUNTS_ARE_FINITE_AND_NON_NEGATIVE, "Every order_amount is a finite number >= 0.", True),
    _spec(
        ORDER_DATES_INSIDE_PARTITION, "Every order_date falls inside the partition's UTC day.", True
    ),
    _spec(
        QUARANTINED_SHARE_BELOW_LIMIT,
        "At most the configured share of a day's landing rows was quarantined "
        f"(${MAX_QUARANTINE_SHARE_ENV}, default {DEFAULT_MAX_QUARANTINE_SHARE}).",
        False,
    ),
]


def check_raw_orders_day(data: DataLayout, day: date, max_share: float) -> dict[str, DayResult]:
    """Every raw_orders check on the files written for `day`."""
    path = data.raw_orders(day)
    if not path.exists():
        missing = DayResult(False, {"path": str(path)}, f"{path} does not exist")
        return {spec.name: missing for spec in RAW_ORDERS_CHECK_SPECS}
    table = pq.read_table(path)
    orders = table.to_pandas()
    results: dict[str, DayResult] = {}

    schema = table.schema.remove_metadata()
    differences = [
        f"{f.name}: {schema.field(f.name).type if f.name in schema.names else 'missing'}"
        f" instead of {f.type}"
        for f in ORDER_SCHEMA
        if f.name not in schema.names or not schema.field(f.name).equals(f)
    ] + [f"{name}: not in the contract" for name in schema.names if name not in ORDER_SCHEMA.names]
    results[SCHEMA_MATCHES_CONTRACT] = DayResult(
        not differences, {"differences": MetadataValue.json(differences)}
    )
    if differences:  # the other checks need the contract's columns
        broken = DayResult(False, {}, "schema does not match the contract")
        for name in (
            ORDER_IDS_ARE_UNIQUE,
            AMOUNTS_ARE_FINITE_AND_NON_NEGATIVE,
            ORDER_DATES_INSIDE_PARTITION,
        ):
            results[name] = broken
    else:
        duplicated = int(orders["order_id"].duplicated().sum())
        results[ORDER_IDS_ARE_UNIQUE] = DayResult(
            duplicated == 0, {"duplicate_order_ids": duplicated, "rows": len(orders)}
        )
        amount = orders["order_amount"].to_numpy(dtype=np.float64)
        finite = np.isfinite(amount)
        not_finite, negative = int((~finite).sum()), int((amount[finite] < 0).sum())
        results[AMOUNTS_ARE_FINITE_AND_NON_NEGATIVE] = DayResult(
            not_finite == 0 and negative == 0,
            {
                "not_finite": not_finite,
                "negative": negative,
                "min_amount": MetadataValue.float(
                    float(amount[finite].min()) if finite.any() else 0.0
                ),
            },
        )
        start = pd.Timestamp(day.isoformat(), tz="UTC")
        dates = orders["order_date"]
        outside = int((dates.isna() | (dates < start) | (dates >= start + timedelta(days=1))).sum())
        results[ORDER_DATES_INSIDE_PARTITION] = DayResult(outside == 0, {"outside": outside})

    quarantine_path = data.quarantine(day)
    if quarantine_path.exists():
        reasons = reason_counts(pq.read_table(quarantine_path, columns=[REASON]).to_pandas())
        quarantined = sum(reasons.values())
        total = quarantined + len(orders)
        share = quarantined / total if total else 0.0
        results[QUARANTINED_SHARE_BELOW_LIMIT] = DayResult(
            share <= max_share,
            {
                "quarantined_share": MetadataValue.float(share),
                "max_share": MetadataValue.float(max_share),
                "quarantined_count": quarantined,
                "landing_rows": total,
                "reasons": MetadataValue.json(reasons),
            },
            None if share <= max_share else f"{share:.1%} of the landing rows were quarantined",
        )
    else:
        results[QUARANTINED_SHARE_BELOW_LIMIT] = DayResult(
            False, {"path": str(quarantine_path)}, f"{quarantine_path} does not exist"
        )
    return results


@multi_asset_check(specs=RAW_ORDERS_CHECK_SPECS, name="raw_orders_checks")
def raw_orders_checks(
    context: AssetCheckExecutionContext, config: RawOrdersChecksConfig, layout: DataLayoutResource
):
    """Reads the files written for the run's days (one or a range) and reports every check
    per day."""
    data = layout.layout()
    max_share = config.resolved_max_share()
    by_check: dict[str, dict[str, DayResult]] = {spec.name: {} for spec in RAW_ORDERS_CHECK_SPECS}
    for day in partition_days(context):
        for name, result in check_raw_orders_day(data, day, max_share).items():
            by_check[name][day.isoformat()] = result
    targets: TargetCache = {}  # the five checks share one materialization lookup per day
    for name, results in by_check.items():
        yield from partition_check_events(
            context, name, results, severity=AssetCheckSeverity.ERROR, targets=targets
        )
