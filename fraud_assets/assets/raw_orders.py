"""`raw_orders`: each day's landing files validated against the order contract, and the checks
that hold the written files to it.

Rows that break the contract are not dropped: they go to the day's quarantine file with the
reason, so the fraud team can fix and re-drop them.
"""

# No `from __future__ import annotations` here: Dagster 1.13 checks the `context` annotation
# of decorated functions at definition time and rejects a string.
from datetime import date, timedelta

import numpy as np
import pandas as pd
import pyarrow as pa
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
from fraud_assets.lib.range_checks import DayResult, range_check_result
from fraud_assets.partitions import daily_partitions, partition_days
from fraud_assets.resources import DataLayoutResource
from fraud_core.acceptance import (
    EMPTY,
    KEPT,
    NOTHING,
    AcceptedOrderIds,
    DayRecord,
    FileSeen,
    attempt_entry,
    consume_replace_marker,
    decide_day,
    max_shrink,
    read_day_record,
)
from fraud_core.clock import latest_accepted, max_future_s
from fraud_core.contract.source import SourceFormat
from fraud_core.env import env_number
from fraud_core.landing import read_day_rows, scan_landing
from fraud_core.schema import ORDER_SCHEMA, order_schema
from fraud_core.storage import DataLayout, read_parquet, remove_orphan_temp_files, write_parquet
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
LANDING_FILES_ACCEPTED = "landing_files_readable_and_day_not_shrunk"
ACCEPTED_FILES_STILL_LANDED = "accepted_landing_files_still_in_landing"
ROW_COUNT_IN_RECENT_RANGE = "row_count_within_recent_range"
DAY_HAS_ORDERS = "day_has_orders"

VOLUME_RATIO_ENV = "FRAUD_VOLUME_MAX_RATIO"
DEFAULT_VOLUME_RATIO = 10.0  # a day with 10x more or fewer orders than usual is worth a look
VOLUME_HISTORY_DAYS = 28
VOLUME_MIN_MEDIAN = 20  # below this many orders a day, "usual" means nothing

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
        "order contract: typed, amounts rounded to cents, one row per order_id across all days "
        "(the first day that accepted an id keeps it), no order dated in the future. Rows that "
        "break the contract are kept aside in the day's quarantine file with the reason (see "
        "`quarantined_reasons`). A day's orders are the rows of the files named after it plus "
        "the rows dated that day in any other landing file. An accepted day is never lost: an "
        "unreadable file, a file gone since (archived) or a re-delivery that shrinks the day "
        "keeps the accepted orders (`decision` metadata, and a failed check naming the file) "
        "unless a replace marker `landing/_replace/YYYY-MM-DD` asks for the replacement."
    ),
)
def raw_orders(context: AssetExecutionContext, layout: DataLayoutResource) -> MaterializeResult:
    data = layout.layout()
    for orphan in remove_orphan_temp_files(data.root):
        context.log.info(f"removed {orphan}, left by a killed write")
    total = quarantined = 0
    contract = layout.contract()  # one contract for the whole run, recorded on every day
    source = SourceFormat.of(contract)
    landing = scan_landing(data.landing, source)  # once per run: the days of each file's orders
    by_name = {f.name: f for f in landing}
    accepted_ids = AcceptedOrderIds(data)  # once per run: order ids of every accepted day
    latest, shrink_limit = latest_accepted(max_future_s()), max_shrink()
    for day in partition_days(context):
        day_rows = read_day_rows(landing, day, source)
        seen = [FileSeen(p.name, *by_name[p.name].fingerprint) for p in day_rows.files]
        unreadable = {f.name: str(f.problem) for f in day_rows.unreadable}
        result = None
        if not unreadable:
            result = validate_orders(
                day_rows.rows,
                day,
                latest=latest,
                accepted_elsewhere=lambda ids, day=day: accepted_ids.owners(day, ids),
                source=source,
            )
        previous = read_day_record(data, day)
        decision = decide_day(
            previous,
            seen,
            unreadable,
            len(result.valid) if result is not None else None,
            marker=data.replace_marker(day).exists(),
            shrink_limit=shrink_limit,
        )
        counts = {
            "landing_rows": len(day_rows.rows) if result is not None else 0,
            "valid_rows": len(result.valid) if result is not None else 0,
            "quarantined_rows": len(result.quarantine) if result is not None else 0,
        }
        record = previous or DayRecord(day.isoformat())
        if decision.writes:
            assert result is not None
            write_parquet(result.valid, data.raw_orders(day), source.order_schema)
            # Written even when empty, so a rerun replaces the quarantine of an earlier bad file.
            write_parquet(
                result.quarantine,
                data.quarantine(day),
                quarantine_schema(list(result.quarantine.columns)),
            )
            accepted_ids.replace(day, result.valid["order_id"])
            marker_text = consume_replace_marker(data, day) if decision.used_marker else None
            record.accepted = {
                **attempt_entry(decision, context.run.run_id, counts, seen),
                "replace_marker": marker_text,
            }
        record.last_attempt = attempt_entry(decision, context.run.run_id, counts, seen)
        record.write(data.day_record(day))
        for problem in decision.problems:
            context.log.warning(f"{day}: {problem}")
        if decision.action == EMPTY:
            context.log.warning(f"{day}: no landing file in {data.landing}; an empty day")
        valid_rows = counts["valid_rows"] if decision.writes else record.accepted_valid
        metadata = {
            "dagster/row_count": valid_rows,
            "decision": decision.action,
            "problems": MetadataValue.json(list(decision.problems)),
            "landing_files": MetadataValue.json([f.name for f in seen]),
            "unreadable_landing_files": MetadataValue.json(unreadable),
            "path": MetadataValue.path(str(data.raw_orders(day))),
            "quarantine_path": MetadataValue.path(str(data.quarantine(day))),
            "contract": f"{contract.name} ({contract.digest[:12]})",
            "dagster/column_schema": order_column_schema(contract),
        }
        if decision.writes:
            assert result is not None
            summary = summarize(result)
            metadata |= {
                "fraud_rate": MetadataValue.float(summary["fraud_rate"]),
                "quarantined_count": summary["quarantined_count"],
                "quarantined_share": MetadataValue.float(summary["quarantined_share"]),
                "quarantined_reasons": MetadataValue.json(result.reason_counts),
                "preview": preview_table(result.valid),
            }
            quarantined += summary["quarantined_count"]
            if summary["quarantined_count"]:
                context.log.warning(
                    f"{day}: {summary['quarantined_count']} rows quarantined: "
                    f"{result.reason_counts}"
                )
        context.add_asset_metadata(metadata, partition_key=day.isoformat())
        total += valid_rows
    context.log.info(f"{total} orders accepted, {quarantined} quarantined")
    return MaterializeResult()


class RawOrdersChecksConfig(Config):
    max_quarantine_share: float | None = Field(
        default=None,
        description=f"Highest acceptable share of quarantined rows per day; empty: "
        f"${MAX_QUARANTINE_SHARE_ENV}, else {DEFAULT_MAX_QUARANTINE_SHARE}.",
    )
    max_volume_ratio: float | None = Field(
        default=None,
        description="A day's landing rows may be at most this many times more (or fewer) than "
        f"the median of the {VOLUME_HISTORY_DAYS} days before; empty: ${VOLUME_RATIO_ENV}, "
        f"else {DEFAULT_VOLUME_RATIO}.",
    )

    def resolved_volume_ratio(self) -> float:
        if self.max_volume_ratio is not None:
            return self.max_volume_ratio
        return env_number(VOLUME_RATIO_ENV, DEFAULT_VOLUME_RATIO, float, low=1.0)

    def resolved_max_share(self) -> float:
        if self.max_quarantine_share is not None:
            return self.max_quarantine_share
        return env_number(
            MAX_QUARANTINE_SHARE_ENV, DEFAULT_MAX_QUARANTINE_SHARE, float, low=0.0, high=1.0
        )


def _spec(name: str, description: str, blocking: bool) -> AssetCheckSpec:
    return AssetCheckSpec(
        name,
        asset=raw_orders,
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
    _spec(
        LANDING_FILES_ACCEPTED,
        "The day's last ingestion could read every landing file of the day and did not shrink "
        "an accepted day beyond $FRAUD_MAX_DAY_SHRINK without a replace marker; when it "
        "could not, the accepted orders were kept and this check names the file.",
        True,
    ),
    _spec(
        ACCEPTED_FILES_STILL_LANDED,
        "Every landing file the accepted day was built from was still there at the last "
        "ingestion (a warning: an archived file keeps the accepted day as it was).",
        False,
    ),
    _spec(
        ROW_COUNT_IN_RECENT_RANGE,
        "The day's landing rows are within $FRAUD_VOLUME_MAX_RATIO times (default "
        f"{DEFAULT_VOLUME_RATIO:g}) the median of the {VOLUME_HISTORY_DAYS} days before "
        "(a warning: a partial export or a duplicated feed).",
        False,
    ),
    _spec(
        DAY_HAS_ORDERS,
        "The day has accepted orders. A day without any landing file is accepted as an empty "
        "day (a warning, so an export that never came shows on the partition; deliver the "
        "file and the landing sensor ingests the day).",
        False,
    ),
]
WARNING_CHECKS = frozenset({ACCEPTED_FILES_STILL_LANDED, ROW_COUNT_IN_RECENT_RANGE, DAY_HAS_ORDERS})


def _record_results(record: DayRecord | None) -> dict[str, DayResult]:
    """The verdicts on what the day's last ingestion decided (its record)."""
    attempt = record.last_attempt if record is not None else {}
    action = attempt.get("action")
    missing = attempt.get("missing_files", [])
    # Kept because files are gone (archived): a warning below. Kept or nothing accepted because
    # a file was unreadable or the re-delivery shrank the day: blocking.
    problems = [] if missing else attempt.get("problems", [])
    blocking_ok = action not in (KEPT, NOTHING) or not problems
    accepted = (record.accepted if record is not None else None) or {}
    orders = record.accepted_valid if record is not None else 0
    empty = accepted.get("action") == EMPTY
    has_orders = DayResult(
        orders > 0,
        {"decision": str(accepted.get("action")), "valid_rows": orders},
        None if orders else ("no landing file: an empty day" if empty else "no valid order"),
    )
    return {
        DAY_HAS_ORDERS: has_orders,
        LANDING_FILES_ACCEPTED: DayResult(
            blocking_ok,
            {
                "decision": str(action),
                "problems": MetadataValue.json(problems),
                "unreadable_files": MetadataValue.json(attempt.get("unreadable_files", [])),
            },
            None if blocking_ok else "; ".join(problems),
        ),
        ACCEPTED_FILES_STILL_LANDED: DayResult(
            not missing,
            {"missing_files": MetadataValue.json(missing), "decision": str(action)},
            None if not missing else f"gone from the landing folder: {', '.join(missing)}",
        ),
    }


def _landing_rows(data: DataLayout, day: date, cache: dict[date, int | None]) -> int | None:
    if day not in cache:
        record = read_day_record(data, day)
        accepted = record.accepted if record is not None else None
        cache[day] = int(accepted["landing_rows"]) if accepted else None
    return cache[day]


def volume_result(
    data: DataLayout, day: date, ratio: float, cache: dict[date, int | None] | None = None
) -> DayResult:
    """The day's landing rows against the median of the accepted days before it."""
    cache = {} if cache is None else cache
    rows = _landing_rows(data, day, cache)
    history = [
        n
        for i in range(1, VOLUME_HISTORY_DAYS + 1)
        if (n := _landing_rows(data, day - timedelta(days=i), cache))
    ]
    median = float(np.median(history)) if history else 0.0
    metadata = {"landing_rows": rows or 0, "recent_median": MetadataValue.float(median)}
    if rows is None or len(history) < 3 or median < VOLUME_MIN_MEDIAN:
        return DayResult(True, {**metadata, "note": "too little history to judge"})
    ok = median / ratio <= rows <= median * ratio
    return DayResult(
        ok,
        {**metadata, "max_ratio": MetadataValue.float(ratio)},
        None
        if ok
        else f"{rows} landing rows against a median of {median:.0f} over the days before",
    )


def check_raw_orders_day(
    data: DataLayout,
    day: date,
    max_share: float,
    volume_ratio: float = DEFAULT_VOLUME_RATIO,
    volume_cache: dict[date, int | None] | None = None,
    schema: pa.Schema = ORDER_SCHEMA,
) -> dict[str, DayResult]:
    """Every raw_orders check on the files written for `day` and its ingestion record; `schema`
    is the contract's (`schema.order_schema`)."""
    path = data.raw_orders(day)
    record_results = _record_results(read_day_record(data, day))
    if not path.exists():
        missing = DayResult(False, {"path": str(path)}, f"{path} does not exist")
        results = {spec.name: missing for spec in RAW_ORDERS_CHECK_SPECS}
        return results | record_results
    table = read_parquet(path)
    orders = table.to_pandas()
    results: dict[str, DayResult] = {}

    contract_schema, schema = schema, table.schema.remove_metadata()
    differences = [
        f"{f.name}: {schema.field(f.name).type if f.name in schema.names else 'missing'}"
        f" instead of {f.type}"
        for f in contract_schema
        if f.name not in schema.names or not schema.field(f.name).equals(f)
    ] + [
        f"{name}: not in the contract" for name in schema.names if name not in contract_schema.names
    ]
    results[SCHEMA_MATCHES_CONTRACT] = DayResult(
        not differences,
        {"differences": MetadataValue.json(differences)},
        "; ".join(differences) or None,
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
            duplicated == 0,
            {"duplicate_order_ids": duplicated, "rows": len(orders)},
            f"{duplicated} duplicate order ids" if duplicated else None,
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
            f"{not_finite} amounts not finite, {negative} negative"
            if not_finite or negative
            else None,
        )
        start = pd.Timestamp(day.isoformat(), tz="UTC")
        dates = orders["order_date"]
        outside = int((dates.isna() | (dates < start) | (dates >= start + timedelta(days=1))).sum())
        results[ORDER_DATES_INSIDE_PARTITION] = DayResult(
            outside == 0,
            {"outside": outside},
            f"{outside} order dates outside the day" if outside else None,
        )

    quarantine_path = data.quarantine(day)
    if quarantine_path.exists():
        reasons = reason_counts(read_parquet(quarantine_path, columns=[REASON]).to_pandas())
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
    results[ROW_COUNT_IN_RECENT_RANGE] = volume_result(data, day, volume_ratio, volume_cache)
    return results | record_results


@multi_asset_check(specs=RAW_ORDERS_CHECK_SPECS, name="raw_orders_checks")
def raw_orders_checks(
    context: AssetCheckExecutionContext, config: RawOrdersChecksConfig, layout: DataLayoutResource
):
    """Reads the files written for the run's days (one or a range) and judges every check per
    day: one result per check for the run, the failed days named (`range_checks`)."""
    data = layout.layout()
    schema = order_schema(layout.contract())
    max_share, ratio = config.resolved_max_share(), config.resolved_volume_ratio()
    by_check: dict[str, dict[str, DayResult]] = {spec.name: {} for spec in RAW_ORDERS_CHECK_SPECS}
    volumes: dict[date, int | None] = {}  # landing rows per day, read once for the range
    for day in partition_days(context):
        results = check_raw_orders_day(data, day, max_share, ratio, volumes, schema)
        for name, result in results.items():
            by_check[name][day.isoformat()] = result
    for name, results in by_check.items():
        severity = AssetCheckSeverity.WARN if name in WARNING_CHECKS else AssetCheckSeverity.ERROR
        yield range_check_result(name, results, severity=severity)
