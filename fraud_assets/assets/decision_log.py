"""`decision_log`: the scoring service's decisions, drained from Redis into parquet segments.

The service adds one entry per committed order to a Redis stream in the same atomic step that
stores the order's answer (`fraud_core.decision_log`); this asset moves the oldest entries into
one segment file and trims them from the stream only once the file is written
(`fraud_assets.lib.decision_drain`), so a crash of the service or of the drain loses nothing and
writes nothing twice. A check warns when the stream holds more than a configured number of
entries after the drain: the drain runs too rarely for the traffic, and Redis grows.
"""

# No `from __future__ import annotations`: Dagster checks the `context` annotation at definition.
import os

from dagster import (
    AssetCheckResult,
    AssetCheckSeverity,
    AssetCheckSpec,
    AssetExecutionContext,
    MaterializeResult,
    MetadataValue,
    asset,
)
from pydantic import Field

from fraud_assets.lib.decision_drain import drain_decisions
from fraud_assets.lib.redis_clients import coordinator
from fraud_assets.resources import DataLayoutResource, RedisResource, ServiceKeysConfig

DECISION_LOG_IS_BOUNDED = "decision_log_is_bounded"
WARN_ENTRIES_ENV = "FRAUD_DECISION_LOG_WARN"
DEFAULT_WARN_ENTRIES = 1_000_000  # about 1.5 GB of Redis at ~1.5 kB an entry


class DecisionLogConfig(ServiceKeysConfig):
    limit: int = Field(default=1_000_000, description="At most this many entries move in one run.")
    warn_entries: int | None = Field(
        default=None,
        description=f"Warn when more entries than this stay in Redis after the drain; empty: "
        f"${WARN_ENTRIES_ENV}, else {DEFAULT_WARN_ENTRIES:,}.",
    )


@asset(
    group_name="serving",
    kinds={"redis", "parquet"},
    check_specs=[
        AssetCheckSpec(
            DECISION_LOG_IS_BOUNDED,
            asset="decision_log",
            blocking=False,
            description="After the drain, the decision log in Redis holds at most the "
            "configured number of entries (FRAUD_DECISION_LOG_WARN).",
        )
    ],
    description=(
        "Every order the scoring service committed, as it scored it: the order time its features "
        "used, when it arrived, its entities as the store keeps them, the model version and "
        "store namespace, the feature vector, score, decision, reasons, latency and the API "
        "key's id. Drained from Redis into parquet segments; entries leave Redis only once "
        "written. Metadata: entries drained, order days touched, entries still in Redis."
    ),
)
def decision_log(
    context: AssetExecutionContext,
    config: DecisionLogConfig,
    layout: DataLayoutResource,
    redis: RedisResource,
) -> MaterializeResult:
    keys = config.keys()
    client = redis.get_client()
    try:
        report = drain_decisions(coordinator(client, keys), keys, layout.layout(), config.limit)
    finally:
        client.close()
    warn_at = config.warn_entries or int(os.environ.get(WARN_ENTRIES_ENV) or DEFAULT_WARN_ENTRIES)
    context.log.info(
        f"drained {report.drained:,} decisions ({report.rate:,.0f}/s); "
        f"{report.remaining:,} left in Redis"
    )
    return MaterializeResult(
        metadata={
            "drained": report.drained,
            "segment": MetadataValue.path(report.segment) if report.segment else "",
            "order_days": MetadataValue.json([d.isoformat() for d in report.days]),
            "remaining_in_redis": report.remaining,
            "drain_rate_per_s": round(report.rate),
            "key_prefix": keys.prefix,
        },
        check_results=[
            AssetCheckResult(
                check_name=DECISION_LOG_IS_BOUNDED,
                passed=report.remaining <= warn_at,
                severity=AssetCheckSeverity.WARN,
                description=f"{report.remaining:,} entries left in Redis (warn above {warn_at:,})",
                metadata={"remaining": report.remaining, "warn_above": warn_at},
            )
        ],
    )
