"""The latest materialization of many partitions of an asset, looked up in one query."""

from __future__ import annotations

from dagster import AssetKey, AssetRecordsFilter, DagsterInstance
from dagster._core.definitions.asset_checks.asset_check_evaluation import (  # no public path
    AssetCheckEvaluationTargetMaterializationData as Materialization,
)

# (asset, partition) -> its newest materialization (storage id, run id, time), None if none
MaterializationCache = dict[tuple[AssetKey, str | None], Materialization | None]


def _target(record) -> Materialization:
    return Materialization(
        storage_id=record.storage_id, run_id=record.run_id, timestamp=record.timestamp
    )


def latest_materializations(
    instance: DagsterInstance,
    asset_key: AssetKey,
    partitions: list[str | None],
    cache: MaterializationCache,
) -> None:
    """Fill `cache` with the latest materialization of each partition: one query for all of
    them (newest first), then one per partition the batch did not reach."""
    wanted = [p for p in partitions if (asset_key, p) not in cache]
    keyed = [p for p in wanted if p is not None]
    if keyed:
        records = instance.fetch_materializations(
            AssetRecordsFilter(asset_key=asset_key, asset_partitions=keyed),
            limit=2 * len(keyed),
        ).records
        for record in records:  # newest first: keep the first seen per partition
            partition = record.partition_key
            if partition is not None and (asset_key, partition) not in cache:
                cache[(asset_key, partition)] = _target(record)
    for partition in wanted:
        if (asset_key, partition) in cache:
            continue
        records = instance.fetch_materializations(
            AssetRecordsFilter(
                asset_key=asset_key,
                asset_partitions=[partition] if partition is not None else None,
            ),
            limit=1,
        ).records
        cache[(asset_key, partition)] = _target(records[0]) if records else None


def latest_storage_ids(
    instance: DagsterInstance, asset_key: AssetKey, partitions: list[str]
) -> dict[str, int]:
    """Each partition's newest materialization's storage id (0: never materialized), by
    `latest_materializations`."""
    cache: MaterializationCache = {}
    latest_materializations(instance, asset_key, list(partitions), cache)
    found = {p: cache.get((asset_key, p)) for p in partitions}
    return {p: m.storage_id if m is not None else 0 for p, m in found.items()}
