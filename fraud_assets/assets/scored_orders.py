"""`scored_orders`: each day's orders as the scoring service scored them, one row per order id,
from the drained decision log (`decision_log`), by the order time the service used.

A check makes sure no order id appears twice in a day (a drain rewritten after a crash, or an
order scored again after its stored answer expired, keeps its first decision).
"""

# No `from __future__ import annotations`: Dagster checks the `context` annotation at definition.
from dagster import (
    AssetCheckSpec,
    AssetExecutionContext,
    BackfillPolicy,
    MaterializeResult,
    MetadataValue,
    asset,
)

from fraud_assets.assets.decision_log import decision_log
from fraud_assets.lib.range_checks import DayResult, range_check_result
from fraud_assets.partitions import daily_partitions, partition_days
from fraud_assets.resources import DataLayoutResource
from fraud_core.decision_log import decision_counts, decision_report, scored_orders_of_day
from fraud_core.storage import write_parquet

SCORED_ORDER_IDS_ARE_UNIQUE = "scored_order_ids_are_unique"


def _report_metadata(report: dict) -> dict:
    """A day's decision report as its partition's metadata: numbers the UI plots over days, and
    a table a person reads."""
    reasons = "\n".join(f"| {name} | {n:,} |" for name, n in report["top_reasons"].items())
    table = (
        f"| approve | review | decline | declined amount | under review |\n|---|---|---|---|---|\n"
        f"| {report['approve']:,} | {report['review']:,} | {report['decline']:,} | "
        f"{report['declined_amount']:,.2f} | {report['reviewed_amount']:,.2f} |\n\n"
        f"| top reason of a review or decline | orders |\n|---|---|\n{reasons}"
    )
    return {
        "approvals": report["approve"],
        "reviews": report["review"],
        "declines": report["decline"],
        "declined_amount": MetadataValue.float(report["declined_amount"]),
        "reviewed_amount": MetadataValue.float(report["reviewed_amount"]),
        "top_reasons": MetadataValue.json(report["top_reasons"]),
        "decision_report": MetadataValue.md(table),
    }


@asset(
    partitions_def=daily_partitions,
    backfill_policy=BackfillPolicy.single_run(),
    deps=[decision_log],
    group_name="serving",
    kinds={"parquet"},
    check_specs=[
        AssetCheckSpec(
            SCORED_ORDER_IDS_ARE_UNIQUE,
            asset="scored_orders",
            blocking=True,
            description="Each order id appears once in a day's scored orders.",
        )
    ],
    description=(
        "The orders the scoring service scored, by the day of the order time its features used: "
        "what it saw (entities, amount, feature vector), what it decided (score, decision, "
        "reasons, model version) and when. One row per order id. Metadata: orders and "
        "decisions per day, models that served them, median latency; per day, the decision "
        "report (approvals, reviews, declines, the amount declined and under review, the top "
        "reasons of reviews and declines)."
    ),
)
def scored_orders(context: AssetExecutionContext, layout: DataLayoutResource) -> MaterializeResult:
    data = layout.layout()
    segments = data.decision_log_segments()
    per_day: dict[str, dict] = {}
    unique: dict[str, DayResult] = {}
    for day in partition_days(context):
        table = scored_orders_of_day(segments, day)
        if table is None:
            per_day[day.isoformat()] = {"orders": 0}
            unique[day.isoformat()] = DayResult(True, {"orders": 0})
            continue
        write_parquet(table, data.scored_orders(day))
        ids = table.column("order_id")
        duplicates = table.num_rows - len(ids.unique())
        latency = table.column("latency_us").to_numpy()
        report = decision_report(table)
        context.add_asset_metadata(_report_metadata(report), partition_key=day.isoformat())
        per_day[day.isoformat()] = {
            "orders": table.num_rows,
            "decisions": decision_counts(table),
            "models": sorted(set(table.column("model_version").to_pylist())),
            "median_latency_ms": round(float(sorted(latency)[len(latency) // 2]) / 1000, 3)
            if len(latency)
            else None,
        }
        unique[day.isoformat()] = DayResult(
            duplicates == 0,
            {"duplicates": duplicates},
            None if duplicates == 0 else f"{duplicates} order ids twice",
        )
    total = sum(d["orders"] for d in per_day.values())
    context.log.info(f"{total:,} scored orders over {len(per_day)} days")
    return MaterializeResult(
        metadata={
            "orders": total,
            "days": MetadataValue.json(per_day),
            "segments_read": len(segments),
        },
        check_results=[range_check_result(SCORED_ORDER_IDS_ARE_UNIQUE, unique)],
    )
