"""`online_store`: the newest end-of-day entity states in Redis, where the scoring service reads
and updates them on every order.

A load never disturbs the service: it writes a new versioned namespace, reads a sample back,
carries over what the service wrote since the snapshot, and then moves the `active` pointer in one
atomic step. The namespace it replaced stays for rollback; older ones are deleted. The key layout
is `fraud_core.online_keys`. After the load, a second check weighs the store in Redis (bytes per
entity state and per stored answer, sampled; see `fraud_assets.lib.online_memory`).
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

from fraud_assets.lib.online_loader import load_online_store
from fraud_assets.lib.online_memory import MemoryReport, measure_memory
from fraud_assets.resources import DataLayoutResource, RedisResource, ServiceKeysConfig
from fraud_core.online_keys import (
    DAY_S,
    DEFAULT_ORDER_INDEX_DAYS,
    OrderIndexWindow,
)

SAMPLE_MATCHES_OFFLINE_STATE = "sample_matches_offline_state"
REDIS_MEMORY_HAS_HEADROOM = "redis_memory_has_headroom"
ORDER_INDEX_DAYS_ENV = "FRAUD_ORDER_INDEX_DAYS"
MEMORY_HEADROOM_SHARE = 0.8  # Redis' used memory at most this share of its limit


class OnlineStoreConfig(ServiceKeysConfig):
    keep_previous: bool = Field(
        default=True, description="Keep the replaced namespace for a rollback."
    )
    order_index_days: float | None = Field(
        default=None,
        description=f"Days of the snapshot's orders a label can name by order id; empty: "
        f"${ORDER_INDEX_DAYS_ENV}, else {DEFAULT_ORDER_INDEX_DAYS} (the features' horizon; the "
        "scoring service keeps its own orders as long).",
    )
    memory_sample: int = Field(
        default=200, description="Keys of each kind weighed with MEMORY USAGE after the load."
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
        ),
        AssetCheckSpec(
            REDIS_MEMORY_HAS_HEADROOM,
            asset="online_store",
            blocking=False,
            description="Redis uses at most "
            f"{MEMORY_HEADROOM_SHARE:.0%} of its memory limit (maxmemory, else the machine's "
            "memory). Metadata: bytes per entity state of each kind and per stored answer "
            "(MEMORY USAGE of a bounded sample), bytes per customer with their e-mails and IPs, "
            "and the order index; the README's sizing rule turns them into a forecast.",
        ),
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
    days = config.order_index_days or float(
        os.environ.get(ORDER_INDEX_DAYS_ENV) or DEFAULT_ORDER_INDEX_DAYS
    )
    window = OrderIndexWindow(max(1, round(days * DAY_S)))
    keys = config.keys()
    data, spec = layout.layout(), layout.contract().spec
    client = redis.get_client()
    try:
        report = load_online_store(
            client,
            data,
            keys,
            keep_previous=config.keep_previous,
            order_index=window,
            spec=spec,
        )
        kinds = [e.kind for e in spec.entities]
        memory = measure_memory(
            client, keys, report.namespace, kinds, window, sample=config.memory_sample
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
            "key_prefix": keys.prefix,
            "redis_url": MetadataValue.text(redis.resolved_url.split("@")[-1]),
        },
        check_results=[check, _memory_check(memory, report.entities, spec.primary)],
    )


def _memory_check(memory: MemoryReport, entities: dict[str, int], primary: str) -> AssetCheckResult:
    """The headroom verdict, with the per-key figures the README's sizing rule uses (per
    customer: per entity of the contract's primary kind)."""
    customers = entities.get(primary, 0)
    per_kind = {k: v for k, v in memory.bytes_per_state.items() if v is not None}
    loaded = sum(entities.get(kind, 0) * size for kind, size in per_kind.items())
    metadata: dict = {
        "used_memory_mb": round(memory.used_memory / 2**20, 1),
        "limit_mb": round(memory.limit / 2**20, 1),
        "limit_source": memory.limit_source,
        "used_share": round(memory.used_share, 3),
        "bytes_per_state": MetadataValue.json({k: round(v) for k, v in per_kind.items()}),
        "states_sampled": MetadataValue.json(memory.states_sampled),
        "bytes_per_answer": round(memory.bytes_per_answer or 0),
        "answers_sampled": memory.answers_sampled,
        "order_index_entries": memory.order_index_entries,
        "bytes_per_order_index_entry": round(memory.bytes_per_index_entry or 0),
        "entity_states_mb": round(loaded / 2**20, 1),
    }
    if customers:
        metadata["state_bytes_per_customer"] = round(loaded / customers)
    return AssetCheckResult(
        check_name=REDIS_MEMORY_HAS_HEADROOM,
        passed=memory.used_share <= MEMORY_HEADROOM_SHARE,
        severity=AssetCheckSeverity.WARN,
        description=f"Redis uses {memory.used_share:.0%} of its {memory.limit_source} limit",
        metadata=metadata,
    )
