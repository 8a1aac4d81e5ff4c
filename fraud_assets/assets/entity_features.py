"""`entity_features`: every order's behavioural features as of just before it, and the
end-of-range entity state they carry forward.

The Dask work runs per (entity kind, bucket) from `orders_by_entity`; each day depends on the
state left by the day before (see `fraud_core.features.pipeline`). A run writes into its own
staging tree, verifies it with the same rules as the blocking checks, and only then publishes it
(feature files, then the state snapshot, last); the checks then report on the published files.
A failed run therefore never reaches `training_set`, `online_store` or the next day's features.
"""

from datetime import date, timedelta

import numpy as np
from dagster import (
    AssetCheckExecutionContext,
    AssetCheckSeverity,
    AssetCheckSpec,
    AssetDep,
    AssetExecutionContext,
    BackfillPolicy,
    DagsterRunStatus,
    Failure,
    MaterializeResult,
    MetadataValue,
    TimeWindowPartitionMapping,
    asset,
    multi_asset_check,
)

from fraud_assets.lib.label_feed import read_feed
from fraud_assets.lib.range_checks import DayResult, judge_days, range_check_result
from fraud_assets.partitions import START_DATE, daily_partitions, partition_days
from fraud_assets.resources import DaskResource, DataLayoutResource
from fraud_core.buckets import bucket_files
from fraud_core.features.pipeline import (
    CHUNK_ORDERS_ENV,
    assemble_days,
    chunk_orders,
    day_chunks,
    plan_tasks,
    publish_features,
    run_bucket_task,
)
from fraud_core.features.rules import forbidden_nans, out_of_range
from fraud_core.features.spec import DEFAULT_SPEC, FeatureSpec
from fraud_core.storage import (
    DataLayout,
    read_metadata,
    read_parquet,
    remove_orphan_temp_files,
    remove_tree,
)

ONE_ROW_PER_VALID_ORDER = "one_feature_row_per_valid_order"
NO_FORBIDDEN_NANS = "no_nan_where_spec_forbids"
VALUES_IN_RANGE = "feature_values_in_range"
_CHECK_OF_RULE = {"forbidden_nans": NO_FORBIDDEN_NANS, "out_of_range": VALUES_IN_RANGE}


@asset(
    partitions_def=daily_partitions,
    backfill_policy=BackfillPolicy.single_run(),
    group_name="features",
    kinds={"dask", "numpy", "parquet"},
    deps=[
        "orders_by_entity",
        "raw_orders",
        "labels",  # the label feed: risk features count its chargebacks (of days <= this one)
        AssetDep(
            "entity_features",
            partition_mapping=TimeWindowPartitionMapping(
                start_offset=-1, end_offset=-1, allow_nonexistent_upstream_partitions=True
            ),
        ),
    ],
    description=(
        "Per order: its behavioural features as of just before it was placed (per customer, "
        "e-mail and IP: velocity over 1 h / 24 h / 7 d / 30 d, distinct counterparts, the last "
        "10 orders' amounts, and fraud shares from labels already known, with a delay: the "
        "order rows' labels and the label feed's). "
        "Computed with Dask per entity bucket from the previous day's entity state, so a day "
        "costs one day of work. A run's output is published (made visible to training, the "
        "online store and the next day) only when its blocking checks pass. The README lists "
        "every feature."
    ),
)
def entity_features(
    context: AssetExecutionContext, layout: DataLayoutResource, dask: DaskResource
) -> MaterializeResult:
    data = layout.layout()
    spec = layout.contract().spec
    _remove_leftovers(context, data)
    days = partition_days(context)
    staged = data.staging(context.run.run_id)
    remove_tree(staged.root)  # a retried step starts clean
    n_buckets = _bucket_count(data, days, spec)
    chunks = day_chunks(days, [_valid_rows(data, d) for d in days], chunk_orders())
    if len(chunks) > 1:
        context.log.info(
            f"{len(days)} days in {len(chunks)} chunks of at most {chunk_orders():,} orders "
            f"(${CHUNK_ORDERS_ENV})"
        )
    counts: dict[date, int] = {}
    broken: dict = {}
    previous: date | None = None
    feed = read_feed(data)
    with dask.get_client() as client:
        # the label feed once to every worker (small: the labels, not the orders)
        shared = client.scatter(feed, broadcast=True) if len(feed) else None
        for chunk in chunks:
            # a later chunk starts from the state the chunk before left in the staging tree
            tasks = plan_tasks(data, chunk, n_buckets, spec, out=staged, after=previous)
            if previous is None:
                _warn_about_gaps(context, tasks, days)
            results = client.gather(
                client.map(run_bucket_task, tasks, spec=spec, feed=shared, pure=False)
            )
            # Every validated order got exactly one row (assemble_days raises otherwise); the
            # feature rules are verified on the blocks in memory, before anything is visible.
            chunk_counts, summary, chunk_broken = assemble_days(
                data,
                chunk,
                [(t.kind, r) for t, r in zip(tasks, results, strict=True)],
                spec,
                out=staged,
            )
            del results
            counts |= chunk_counts
            broken |= chunk_broken
            previous = chunk[-1]
            if broken:
                break
    if broken:
        failed = {
            f"{day} {_CHECK_OF_RULE[rule]}": features
            for day, rules in broken.items()
            for rule, features in rules.items()
            if features
        }
        raise Failure(
            description=f"{len(failed)} blocking check(s) failed on this run's features: "
            "nothing of this run is published; the last good features and entity state stay",
            metadata={"failed": MetadataValue.json(failed)},
        )
    publish_features(data, staged, [c[-1] for c in chunks], n_buckets, spec)
    for day, rows in counts.items():
        metadata = {
            "dagster/row_count": rows,
            "path": MetadataValue.path(str(data.entity_features(day))),
        }
        if day == days[-1]:
            metadata["feature_summary"] = MetadataValue.md(_summary_markdown(summary))
        context.add_asset_metadata(metadata, partition_key=day.isoformat())
    context.log.info(
        f"features for {sum(counts.values())} orders over {len(days)} day(s); "
        f"{len(feed):,} label-feed events"
    )
    return MaterializeResult()


_FINISHED = (DagsterRunStatus.SUCCESS, DagsterRunStatus.FAILURE, DagsterRunStatus.CANCELED)


def _remove_leftovers(context: AssetExecutionContext, data: DataLayout) -> None:
    """Staging trees of runs that are over (failed, killed and marked failed, or deleted) and
    temporary files of killed writes: never published, never read."""
    for orphan in remove_orphan_temp_files(data.root):
        context.log.info(f"removed {orphan}, left by a killed write")
    for run_id, folder in data.staged_runs().items():
        run = context.instance.get_run_by_id(run_id)
        if run is None or run.status in _FINISHED:
            remove_tree(folder)
            context.log.info(f"removed the unpublished output of run {run_id}")


def _warn_about_gaps(context: AssetExecutionContext, tasks: list, days: list[date]) -> None:
    """Say when days between the state snapshot and this run have no bucketed orders: features
    then miss those orders until the days are ingested and these days are run again."""
    replay = {d for t in tasks for d in t.replay}
    snapshots = [t.snapshot for t in tasks if t.snapshot is not None]
    since = min(snapshots) + timedelta(days=1) if snapshots else date.fromisoformat(START_DATE)
    if replay:
        context.log.info(
            f"no state snapshot right before {days[0]}: replaying {len(replay)} day(s)"
        )
    expected = [since + timedelta(days=i) for i in range((days[0] - since).days)]
    missing = [d for d in expected if d not in replay]
    if missing:
        context.log.warning(
            f"no orders_by_entity for {len(missing)} earlier day(s) ({missing[0]}..{missing[-1]}): "
            "features miss their orders; materialize those days and then these again"
        )


def _valid_rows(data: DataLayout, day: date) -> int:
    path = data.raw_orders(day)
    return read_metadata(path).num_rows if path.exists() else 0


def _bucket_count(data: DataLayout, days: list[date], spec: FeatureSpec) -> int:
    """The range's one bucket count; a clear failure when a day's buckets are missing or
    incomplete (no marker: `fraud_core.buckets.write_day_buckets`) or counts differ."""
    marked = {e.kind: set(data.orders_by_entity_days(e.kind)) for e in spec.entities}
    unmarked = sorted({d for d in days for kind in marked if d not in marked[kind]})
    if unmarked:
        listed = ", ".join(str(d) for d in unmarked[:5]) + (" ..." if len(unmarked) > 5 else "")
        raise Failure(
            description=f"orders_by_entity is missing or incomplete for {len(unmarked)} day(s) "
            f"({listed}): its write failed, was killed or is still running; materialize "
            "orders_by_entity for these days",
            metadata={"days": MetadataValue.json([str(d) for d in unmarked])},
        )
    counts = {len(bucket_files(data, e.kind, d)) for e in spec.entities for d in days}
    if len(counts) != 1 or 0 in counts:
        raise Failure(
            description=f"orders_by_entity has {sorted(counts)} buckets across "
            f"{days[0]}..{days[-1]}: materialize orders_by_entity for these days with one "
            "bucket count"
        )
    return counts.pop()


def _summary_markdown(summary: list[dict[str, float]]) -> str:
    rows = ["| feature | mean | min | max | empty share |", "|---|---|---|---|---|"]
    for f in summary:
        rows.append(
            f"| `{f['feature']}` | {f['mean']:.4g} | {f['min']:.4g} | {f['max']:.4g} | {f['empty_share']:.1%} |"
        )
    return "\n".join(rows)


def feature_results(
    ids: list[str], valid_ids: list[str], block: np.ndarray, spec: FeatureSpec = DEFAULT_SPEC
) -> dict[str, DayResult]:
    """Every entity_features check on one day's feature rows: their order ids against the
    day's validated orders, and the (features x rows) block against the feature rules."""
    missing_ids = len(set(valid_ids) - set(ids))
    extra = len(ids) - len(set(ids)) + len(set(ids) - set(valid_ids))
    nans, outside = forbidden_nans(block, spec), out_of_range(block, spec)
    return {
        ONE_ROW_PER_VALID_ORDER: DayResult(
            missing_ids == 0 and extra == 0,
            {
                "feature_rows": len(ids),
                "valid_orders": len(valid_ids),
                "missing": missing_ids,
                "extra": extra,
            },
        ),
        NO_FORBIDDEN_NANS: DayResult(not nans, {"columns_with_nan": MetadataValue.json(nans)}),
        VALUES_IN_RANGE: DayResult(not outside, {"out_of_range": MetadataValue.json(outside)}),
    }


def check_features_day(
    data: DataLayout, day: date, spec: FeatureSpec = DEFAULT_SPEC
) -> dict[str, DayResult]:
    """Every entity_features check on the published file of `day` (features of `spec`)."""
    path = data.entity_features(day)
    if not path.exists():
        missing = DayResult(False, {"path": str(path)}, f"{path} does not exist")
        return {
            ONE_ROW_PER_VALID_ORDER: missing,
            NO_FORBIDDEN_NANS: missing,
            VALUES_IN_RANGE: missing,
        }
    table = read_parquet(path)
    names = spec.feature_names
    block = np.empty((len(names), table.num_rows))
    for i, name in enumerate(names):
        block[i] = table.column(name).to_numpy()
    valid_ids = read_parquet(data.raw_orders(day), columns=["order_id"]).column(0).to_pylist()
    return feature_results(table.column("order_id").to_pylist(), valid_ids, block, spec)


ENTITY_FEATURES_CHECK_SPECS = [
    AssetCheckSpec(
        ONE_ROW_PER_VALID_ORDER,
        asset=entity_features,
        blocking=True,
        description="Exactly one feature row per validated order of the day.",
    ),
    AssetCheckSpec(
        NO_FORBIDDEN_NANS,
        asset=entity_features,
        blocking=True,
        description="No empty value in a feature the spec declares never empty.",
    ),
    AssetCheckSpec(
        VALUES_IN_RANGE,
        asset=entity_features,
        blocking=True,
        description="Counts >= 0, shares and flags in [0, 1], hours in [0, 23].",
    ),
]


@multi_asset_check(specs=ENTITY_FEATURES_CHECK_SPECS, name="entity_features_checks")
def entity_features_checks(context: AssetCheckExecutionContext, layout: DataLayoutResource):
    data = layout.layout()
    spec = layout.contract().spec
    by_check: dict[str, dict[str, DayResult]] = {s.name: {} for s in ENTITY_FEATURES_CHECK_SPECS}
    judged = judge_days(lambda day: check_features_day(data, day, spec), partition_days(context))
    for day, results in judged.items():
        for name, result in results.items():
            by_check[name][day.isoformat()] = result
    for name, results in by_check.items():
        yield range_check_result(name, results, severity=AssetCheckSeverity.ERROR)
