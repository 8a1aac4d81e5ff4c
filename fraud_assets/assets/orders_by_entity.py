"""`orders_by_entity`: each day's validated orders split into entity-hash buckets per entity kind
(the contract's entities: customer, e-mail and IP by default), so feature work runs per bucket in parallel.

An entity always hashes to the same bucket (fixed-key SipHash, `fraud_core.buckets`), on every
day and in every process; each bucket file is sorted by (entity, order_date, order_id).
"""

# No `from __future__ import annotations` here: Dagster 1.13 checks the `context` annotation
# of decorated functions at definition time and rejects a string.
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from dagster import (
    AssetCheckExecutionContext,
    AssetCheckSeverity,
    AssetCheckSpec,
    AssetExecutionContext,
    BackfillPolicy,
    Config,
    MaterializeResult,
    asset,
    multi_asset_check,
)
from pydantic import Field

from fraud_assets.assets.raw_orders import raw_orders
from fraud_assets.lib.range_checks import DayResult, judge_days, range_check_result
from fraud_assets.partitions import daily_partitions, partition_days
from fraud_assets.resources import DaskResource, DataLayoutResource
from fraud_core.buckets import DEFAULT_N_BUCKETS, bucket_files, entity_bucket, write_day_buckets
from fraud_core.storage import DataLayout, read_parquet

EVERY_ORDER_ONCE_PER_ENTITY_KIND = "every_order_once_per_entity_kind"


class OrdersByEntityConfig(Config):
    n_buckets: int = Field(
        default=DEFAULT_N_BUCKETS, ge=1, description="Entity-hash buckets per kind and day."
    )


@asset(
    partitions_def=daily_partitions,
    backfill_policy=BackfillPolicy.single_run(),
    deps=[raw_orders],
    group_name="ingest",
    kinds={"dask", "parquet"},
    description=(
        "The day's validated orders split once per entity of the data contract (by default by "
        "customer, by e-mail and by IP): each entity's orders sit together in one hash bucket file, sorted by time, so features can "
        "be computed bucket by bucket in parallel. Every order appears once per entity kind."
    ),
)
def orders_by_entity(
    context: AssetExecutionContext,
    config: OrdersByEntityConfig,
    layout: DataLayoutResource,
    dask: DaskResource,
) -> MaterializeResult:
    data = layout.layout()
    contract = layout.contract()
    days = partition_days(context)
    keys = [day.isoformat() for day in days]
    with dask.get_client() as client:
        # One task per day: it reads the day once and writes every kind's buckets.
        futures = client.map(
            write_day_buckets,
            [data] * len(keys),
            keys,
            n_buckets=config.n_buckets,
            contract=contract,
            pure=False,
        )
        sizes_by_day = client.gather(futures)
    for key, sizes in zip(keys, sizes_by_day, strict=True):
        metadata: dict[str, int] = {"n_buckets": config.n_buckets}
        for kind, sizes_of_kind in sizes.items():
            metadata[f"{kind}__rows"] = sum(sizes_of_kind)
            metadata[f"{kind}__bucket_rows_min"] = min(sizes_of_kind)
            metadata[f"{kind}__bucket_rows_max"] = max(sizes_of_kind)
        metadata["dagster/row_count"] = metadata[f"{contract.entity_kinds[0]}__rows"]
        context.add_asset_metadata(metadata, partition_key=key)
    context.log.info(f"bucketed {len(keys)} days into {config.n_buckets} buckets per kind")
    return MaterializeResult()


def check_orders_by_entity_day(data: DataLayout, day: str, kinds: tuple[str, ...]) -> DayResult:
    """For each entity kind: the union of the day's buckets holds exactly the day's raw order_ids,
    each once, and every row sits in the bucket its entity hashes to."""
    raw_path = data.raw_orders(day)
    if not raw_path.exists():
        return DayResult(False, {}, f"{raw_path} does not exist")
    raw_ids = read_parquet(raw_path, columns=["order_id"]).column("order_id")
    metadata: dict[str, int] = {"raw_rows": len(raw_ids)}
    problems = []
    for kind in kinds:
        if not data.orders_by_entity_marker(kind, day).exists():
            problems.append(f"{kind}: incomplete (no marker: its write failed or is running)")
            continue
        files = bucket_files(data, kind, day)
        numbers = [n for n, _ in files]
        if not files or numbers != list(range(len(files))):
            problems.append(f"{kind}: bucket files {numbers} are not 0..n-1")
            continue
        # Arrow compute throughout: pandas' isin on Arrow strings loops in Python.
        tables = [read_parquet(path, columns=["order_id", kind]) for _, path in files]
        rows = pa.concat_tables(tables)
        ids = rows.column("order_id")
        in_bucket = np.repeat(np.arange(len(files), dtype=np.int32), [t.num_rows for t in tables])
        duplicates = len(ids) - pc.count_distinct(ids).as_py()
        missing = (
            len(raw_ids) - pc.sum(pc.is_in(raw_ids, value_set=ids)).as_py() if len(raw_ids) else 0
        )
        extra = len(ids) - pc.sum(pc.is_in(ids, value_set=raw_ids)).as_py() if len(ids) else 0
        hashed = entity_bucket(rows.column(kind).to_numpy(zero_copy_only=False), len(files))
        misplaced = int((hashed != in_bucket).sum())
        metadata.update(
            {
                f"{kind}__duplicates": duplicates,
                f"{kind}__missing": missing,
                f"{kind}__extra": extra,
                f"{kind}__misplaced": misplaced,
            }
        )
        if duplicates or missing or extra or misplaced:
            problems.append(
                f"{kind}: {missing} missing, {extra} extra, {duplicates} duplicated, "
                f"{misplaced} in the wrong bucket"
            )
    return DayResult(not problems, metadata, "; ".join(problems) or None)


@multi_asset_check(
    specs=[
        AssetCheckSpec(
            EVERY_ORDER_ONCE_PER_ENTITY_KIND,
            asset=orders_by_entity,
            additional_deps=[raw_orders],
            description="For every entity kind the buckets hold each of the day's orders exactly "
            "once, in the bucket its entity hashes to.",
        )
    ],
    name="orders_by_entity_checks",
)
def orders_by_entity_checks(context: AssetCheckExecutionContext, layout: DataLayoutResource):
    data = layout.layout()
    kinds = layout.contract().entity_kinds
    judged = judge_days(
        lambda day: check_orders_by_entity_day(data, day.isoformat(), kinds),
        partition_days(context),
    )
    results = {day.isoformat(): result for day, result in judged.items()}
    yield range_check_result(
        EVERY_ORDER_ONCE_PER_ENTITY_KIND, results, severity=AssetCheckSeverity.ERROR
    )
