"""`online_store`: the newest end-of-day entity states in Redis, where the scoring service reads
and updates them on every order.

A load never disturbs the service: it writes a new versioned namespace, reads a sample back,
carries over what the service wrote since the snapshot, and then moves the `active` pointer in one
atomic step. The namespace it replaced stays for rollback; older ones are deleted. The key layout
is `fraud_core.online_keys`.
"""

# No `from __future__ import annotations`: Dagster checks the `context` annotation at definition.
import os

from dagster import (
    AssetCheckResult,
    AssetCheckSeverity,
    AssetCheckSpec,
    AssetExecutionContext,
    Config,
    MaterializeResult,
    MetadataValue,
    asset,
)
from pydantic import Field

from fraud_assets.lib.online_loader import load_online_store
from fraud_assets.resources import DataLayoutResource, RedisResource
from fraud_core.online_keys import DEFAULT_PREFIX, OnlineKeys

SAMPLE_MATCHES_OFFLINE_STATE = "sample_matches_offline_state"
KEY_PREFIX_ENV = "FRAUD_REDIS_PREFIX"


class OnlineStoreConfig(Config):
    key_prefix: str | None = Field(
        default=None,
        description=f"Prefix of every key; empty: ${KEY_PREFIX_ENV}, else {DEFAULT_PREFIX!r} "
        "(the scoring service must use the same).",
    )
    keep_previous: bool = Field(
        default=True, description="Keep the replaced namespace for a rollback."
    )


@asset(
    group_name="serving",
    kinds={"redis"},
    # Refreshed by features_updated_sensor (retrain_job / online_store_job), not by an automation
    # condition: eager() never fires here, since an unpartitioned asset "misses" a dependency
    # while any daily entity_features partition since FRAUD_START_DATE is missing.
    deps=["entity_features"],
    check_specs=[
        AssetCheckSpec(
            SAMPLE_MATCHES_OFFLINE_STATE,
            asset="online_store",
            blocking=True,
            description="About 1% of the written entity states, read back from Redis and "
            "decoded, equal the offline end-of-day state exactly (before the pointer switch).",
        )
    ],
    description=(
        "Every customer's, e-mail's and IP address's recent history (the end-of-day state of "
        "`entity_features`) in Redis, where the scoring service reads it for every new order "
        "and appends the order. Loaded into a new namespace and switched on atomically, so the "
        "service never sees a half-loaded store; orders the service scored after the snapshot "
        "are carried over. Metadata: entities and keys written, load rate, namespaces."
    ),
)
def online_store(
    context: AssetExecutionContext,
    config: OnlineStoreConfig,
    layout: DataLayoutResource,
    redis: RedisResource,
) -> MaterializeResult:
    prefix = config.key_prefix or os.environ.get(KEY_PREFIX_ENV) or DEFAULT_PREFIX
    client = redis.get_client()
    try:
        report = load_online_store(
            client, layout.layout(), OnlineKeys(prefix), keep_previous=config.keep_previous
        )
    finally:
        client.close()
    passed = not report.sample_mismatches
    check = AssetCheckResult(
        check_name=SAMPLE_MATCHES_OFFLINE_STATE,
        passed=passed,
        severity=AssetCheckSeverity.ERROR,
        metadata={
            "sampled": report.sample_checked,
            "mismatches": len(report.sample_mismatches),
            "first_mismatches": MetadataValue.json(report.sample_mismatches[:10]),
        },
    )
    if passed:
        context.log.info(
            f"namespace {report.namespace} active ({report.entities_total:,} entities at "
            f"{report.entities_per_s:,.0f}/s); replaced {report.previous}, deleted "
            f"{len(report.deleted_namespaces)}"
        )
    else:
        context.log.error(
            f"namespace {report.namespace} NOT switched on: {len(report.sample_mismatches)} "
            "sampled keys differ from the offline state"
        )
    return MaterializeResult(
        metadata={
            "namespace": report.namespace,
            "active": passed,
            "previous_namespace": report.previous or "",
            "deleted_namespaces": MetadataValue.json(report.deleted_namespaces),
            "snapshot_day": report.snapshot.day.isoformat(),
            "entities": MetadataValue.json(report.entities),
            "keys_written": report.keys_written,
            "order_index_size": report.order_index_size,
            "load_seconds": round(report.load_seconds, 3),
            "load_rate_entities_per_s": round(report.entities_per_s),
            "carried_over_from_service": report.carried_over,
            "key_prefix": prefix,
            "redis_url": MetadataValue.text(redis.resolved_url.split("@")[-1]),
        },
        check_results=[check],
    )
