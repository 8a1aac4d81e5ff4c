"""The label feed as assets (issue 16, `fraud_core.labels`).

`label_log` drains the labels `/v1/labels` accepted from Redis into parquet segments (written,
then trimmed: the decision log's order of steps). `labels` is the feed itself, one partition per
label day: the day's events from the label files in `landing/labels/` and from the drained API
labels, with their sources. Readers (training sets, `model_performance`) merge it with the label
columns of the order rows (`fraud_core.labels.apply_feed`).

A label file's refused rows (bad order id, `is_fraud`, `label_date` or source) are quarantined
with the field and the reason, and a check fails (warns) naming the file and the rows; the
file's other rows stand. The metadata names the served days (`scored_orders` partitions) whose
orders the run's new or removed labels judge (`label_feed_sensor` refreshes their
`model_performance`) and the label days
whose events changed, with the first day whose features they can change (a label reaches the
risk features of orders after it whose risk window reaches its order, so with the order's date
known from the label date or the order date plus the risk delay, whichever is later):
the sensor recomputes `entity_features` from there, if any features exist from that day on.
"""

# No `from __future__ import annotations`: Dagster checks the `context` annotation at definition.
from dagster import (
    AssetCheckResult,
    AssetCheckSeverity,
    AssetCheckSpec,
    AssetExecutionContext,
    BackfillPolicy,
    MaterializeResult,
    MetadataValue,
    asset,
)

from fraud_assets.lib.label_feed import LabelSources, drain_labels, served_days
from fraud_assets.lib.redis_clients import coordinator
from fraud_assets.partitions import daily_partitions, partition_days
from fraud_assets.resources import DataLayoutResource, RedisResource, ServiceKeysConfig
from fraud_core.labels import concat_events, first_affected
from fraud_core.storage import read_parquet, write_parquet

LABEL_FILES_ARE_VALID = "label_files_are_valid"


@asset(
    group_name="monitoring",
    kinds={"redis", "parquet"},
    description=(
        "The labels the scoring service accepted on /v1/labels (order id, is_fraud, label_date, "
        "source, the API key's id), drained from Redis into parquet segments; entries leave "
        "Redis only once written. Metadata: labels drained and their label days."
    ),
)
def label_log(
    context: AssetExecutionContext,
    config: ServiceKeysConfig,
    layout: DataLayoutResource,
    redis: RedisResource,
) -> MaterializeResult:
    keys = config.keys()
    client = redis.get_client()
    try:
        report = drain_labels(coordinator(client, keys), keys, layout.layout())
    finally:
        client.close()
    context.log.info(f"drained {report.drained:,} labels; {report.remaining:,} left in Redis")
    return MaterializeResult(
        metadata={
            "drained": report.drained,
            "segment": MetadataValue.path(report.segment) if report.segment else "",
            "label_days": MetadataValue.json([d.isoformat() for d in report.days]),
            "remaining_in_redis": report.remaining,
            "key_prefix": keys.prefix,
        }
    )


@asset(
    partitions_def=daily_partitions,
    backfill_policy=BackfillPolicy.single_run(),
    deps=[label_log],
    group_name="monitoring",
    kinds={"parquet"},
    check_specs=[
        AssetCheckSpec(
            LABEL_FILES_ARE_VALID,
            asset="labels",
            blocking=False,
            description="Every row of every label file in landing/labels is a valid label "
            "(order id, is_fraud, label_date, source); refused rows are quarantined.",
        )
    ],
    description=(
        "The label feed: every fraud verdict known on a label day (UTC, by label_date) with its "
        "source: chargebacks and disputes from label files in landing/labels (CSV or parquet: "
        "order_id, is_fraud, label_date, optional source and order_date), labels posted to "
        "/v1/labels "
        "(label_log) and analyst verdicts. One row per distinct event. A late chargeback is one "
        "more event on its own day; the order's day file is never needed again. Training sets "
        "and model_performance read it, merged with the label columns of the order rows (the "
        "latest event known by a reader's time wins)."
    ),
)
def labels(context: AssetExecutionContext, layout: DataLayoutResource) -> MaterializeResult:
    data = layout.layout()
    sources = LabelSources.read(data)
    per_day: dict[str, dict] = {}
    order_ids: set[str] = set()
    changed: list[str] = []  # days whose events differ from what was on disk
    reach: list = []  # per changed day, the first day whose features its events can change
    risk_delay_s = layout.contract().spec.risk_delay_s
    for day in partition_days(context):
        events = sources.day(day)
        target = data.labels(day)
        before = read_parquet(target) if target.exists() else None
        if before is None and not events.num_rows:
            per_day[day.isoformat()] = {"events": 0}
            continue
        if before is None or not before.equals(events):
            # the orders these labels judge, a removed label's too
            moved = concat_events([events] if before is None else [events, before])
            changed.append(day.isoformat())
            reach.append(first_affected(moved, risk_delay_s))
            order_ids.update(moved.column("order_id").to_pylist())
        if not events.num_rows:  # a file that held the day's labels is gone or emptied
            target.unlink()
            per_day[day.isoformat()] = {"events": 0}
            continue
        write_parquet(events, target)
        frame = events.to_pandas()
        per_day[day.isoformat()] = {
            "events": len(frame),
            "fraud": int(frame["is_fraud"].sum()),
            "by_source": {k: int(v) for k, v in frame["source"].value_counts().items()},
        }
    refused = sources.refused
    if len(refused):
        write_parquet(refused, data.label_quarantine)
    elif data.label_quarantine.exists():
        data.label_quarantine.unlink()
    unreadable = sources.unreadable
    judged = served_days(data, order_ids)
    events = sum(d["events"] for d in per_day.values())
    context.log.info(
        f"{events:,} label events over {len(per_day)} days; {len(refused)} refused rows; "
        f"they judge {len(judged)} served day(s)"
    )
    problems = [f"{name}: {why}" for name, why in unreadable.items()]
    problems += [
        f"{row.file} row {row.row}: {row.field} {row.reason} ({row.value!r})"
        for row in refused.head(20).itertuples()
    ]
    return MaterializeResult(
        metadata={
            "events": events,
            "days": MetadataValue.json(per_day),
            "label_files": len(sources.files),
            "served_days": MetadataValue.json([d.isoformat() for d in judged]),
            "changed_days": MetadataValue.json(changed),
            "features_affected_from": min(
                (d.isoformat() for d in reach if d is not None), default=""
            ),
        },
        check_results=[
            AssetCheckResult(
                check_name=LABEL_FILES_ARE_VALID,
                passed=not problems,
                severity=AssetCheckSeverity.WARN,
                description=(
                    "every label row is valid"
                    if not problems
                    else f"{len(refused)} refused row(s), {len(unreadable)} unreadable file(s) "
                    f"(quarantined in {data.label_quarantine}): " + "; ".join(problems[:5])
                ),
                metadata={
                    "refused_rows": len(refused),
                    "unreadable_files": MetadataValue.json(unreadable),
                    "first_problems": MetadataValue.json(problems),
                    "quarantine": MetadataValue.path(str(data.label_quarantine)),
                },
            )
        ],
    )
