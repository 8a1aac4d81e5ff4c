"""Asset check results per partition that also work in single-run range backfills.

In Dagster 1.13 an `AssetCheckResult` yielded by a run over a partition range is stored without
a partition, while the per-partition check rows Dagster planned for that run stay PLANNED
forever. Yielding one `AssetCheckEvaluation` per partition (and the check's output once) stores
each day's result on its own partition, in single-partition and range runs alike.

Use it from a `@multi_asset_check` whose `AssetCheckSpec`s carry the asset's `partitions_def`:

    yield from partition_check_events(context, "order_ids_are_unique", {"2026-01-01": DayResult(True)})

Dagster's run-log line of an evaluation names the check and the asset but not the partition, so
a range run would log "Asset check 'order_ids_are_unique' on 'raw_orders' passed." once per day,
all alike: each evaluation's description starts with its day (`day_description`).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from dagster import (
    AssetCheckEvaluation,
    AssetCheckExecutionContext,
    AssetCheckSeverity,
    AssetCheckSpec,
    AssetKey,
    AssetRecordsFilter,
    DagsterInstance,
    Output,
)
from dagster._core.definitions.asset_checks.asset_check_evaluation import (  # no public path
    AssetCheckEvaluationTargetMaterializationData,
)


@dataclass(frozen=True)
class DayResult:
    """One check's verdict on one partition."""

    passed: bool
    metadata: Mapping[str, Any] = field(default_factory=dict)
    description: str | None = None


TargetCache = dict[
    tuple[AssetKey, str | None], AssetCheckEvaluationTargetMaterializationData | None
]


def _target(record) -> AssetCheckEvaluationTargetMaterializationData:
    return AssetCheckEvaluationTargetMaterializationData(
        storage_id=record.storage_id, run_id=record.run_id, timestamp=record.timestamp
    )


def _latest_materializations(
    instance: DagsterInstance,
    asset_key: AssetKey,
    partitions: list[str | None],
    cache: TargetCache,
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


def _spec(context: AssetCheckExecutionContext, check_name: str, asset_key: AssetKey | None):
    for spec in context.check_specs:
        if spec.name == check_name and (asset_key is None or spec.asset_key == asset_key):
            return spec
    raise KeyError(f"no check spec named {check_name!r} on this op")


def day_description(partition: str | None, description: str | None) -> str | None:
    """An evaluation's description led by its partition key, which the run log then shows:
    `2026-01-02: 3 duplicate order ids`, or just `2026-01-02`. Unpartitioned: unchanged."""
    if partition is None:
        return description
    return f"{partition}: {description}" if description else partition


def partition_check_events(
    context: AssetCheckExecutionContext,
    check_name: str,
    results: Mapping[str, DayResult],
    *,
    severity: AssetCheckSeverity = AssetCheckSeverity.ERROR,
    asset_key: AssetKey | None = None,
    targets: TargetCache | None = None,
) -> Iterator[AssetCheckEvaluation | Output]:
    """The evaluation events of `check_name`, one per partition key in `results`, then the
    check's output. A failed blocking check (severity ERROR) fails the step after all events.
    Pass the same `targets` dict to the calls of one step so that several checks of one asset
    look up its materializations once."""
    spec: AssetCheckSpec = _spec(context, check_name, asset_key)
    cache: TargetCache = {} if targets is None else targets
    keys = [p if spec.partitions_def is not None else None for p in results]
    _latest_materializations(context.instance, spec.asset_key, keys, cache)
    for key, result in zip(keys, results.values(), strict=True):
        yield AssetCheckEvaluation(
            asset_key=spec.asset_key,
            check_name=spec.name,
            passed=result.passed,
            metadata=dict(result.metadata),
            severity=severity,
            description=day_description(key, result.description),
            blocking=spec.blocking,
            partition=key,
            target_materialization_data=cache[(spec.asset_key, key)],
        )
    yield Output(None, output_name=spec.get_python_identifier())
