"""`serving_skew`: did the service score with the features the offline path computes? (issue 16;
the comparison and its causes: `fraud_core.skew`).

Daily partitions by served day. A day is compared once it has both `scored_orders` and
`entity_features` (the orders also arrived in a landing file); `serving_skew_sensor` runs it when
either lands. The check fails when more than `FRAUD_SKEW_MAX_SHARE` of the compared orders had
any feature apart, naming the features and the causes.
"""

# No `from __future__ import annotations`: Dagster checks the `context` annotation at definition.
import functools
import json

from dagster import (
    AssetCheckSpec,
    AssetExecutionContext,
    BackfillPolicy,
    MaterializeResult,
    MetadataValue,
    asset,
)

from fraud_assets.assets.scored_orders import scored_orders
from fraud_assets.lib.range_checks import DayResult, range_check_result
from fraud_assets.partitions import daily_partitions, partition_days
from fraud_assets.resources import DataLayoutResource
from fraud_core.env import env_number
from fraud_core.model.artifact import read_card
from fraud_core.skew import TOLERANCE, compare
from fraud_core.storage import as_path, atomic_path, read_parquet

SERVING_FEATURES_MATCH_OFFLINE = "serving_features_match_offline"
MAX_SHARE_ENV = "FRAUD_SKEW_MAX_SHARE"
DEFAULT_MAX_SHARE = 0.01


@asset(
    partitions_def=daily_partitions,
    backfill_policy=BackfillPolicy.single_run(),
    deps=[scored_orders, "entity_features"],
    group_name="monitoring",
    kinds={"pandas", "json"},
    check_specs=[
        AssetCheckSpec(
            SERVING_FEATURES_MATCH_OFFLINE,
            asset="serving_skew",
            blocking=False,
            description="At most $FRAUD_SKEW_MAX_SHARE (default 1 %) of a day's served orders "
            "that also arrived in a landing file were scored with any feature apart from its "
            f"offline value (beyond {TOLERANCE:g}).",
        )
    ],
    description=(
        "Online/offline skew on real traffic: each served order's feature vector (the decision "
        "log) against the same order's features computed offline from the landing data, point "
        "in time as of the order. Per day: orders served, compared and never arrived in a "
        "landing file, the share with any mismatch, per feature the mismatch rate and the "
        "largest absolute difference, and the causes the platform can tell apart (time "
        "differs: arrived late or clamped; store stale when served; feature missing offline: "
        "its definition changed; unexplained)."
    ),
)
def serving_skew(context: AssetExecutionContext, layout: DataLayoutResource) -> MaterializeResult:
    data = layout.layout()
    max_share = env_number(MAX_SHARE_ENV, DEFAULT_MAX_SHARE, float, low=0)

    @functools.cache
    def names_of(version: str) -> list[str]:
        return list(read_card(as_path(data.models), version).feature_names)

    verdicts: dict[str, DayResult] = {}
    per_day: dict[str, dict] = {}
    for day in partition_days(context):
        key = day.isoformat()
        path, features = as_path(data.scored_orders(day)), as_path(data.entity_features(day))
        if not path.exists():
            verdicts[key] = DayResult(True, {"served": 0})
            continue
        columns = ["order_id", "t_s", "namespace", "model_version", "features"]
        served = read_parquet(path, columns=columns).to_pandas()
        offline = read_parquet(features).to_pandas() if features.exists() else None
        report = compare(served, offline, names_of, day)
        with atomic_path(as_path(data.serving_skew(day))) as tmp:
            tmp.write_text(json.dumps(report.to_dict(), indent=1, default=str))
        per_day[key] = report.to_dict()
        share = report.share
        worst = report.worst()
        figures = {
            "served": report.served,
            "compared": report.compared,
            "never_arrived": report.never_arrived,
            "mismatched": report.mismatched,
        }
        context.add_asset_metadata(
            {
                **figures,
                **({"mismatch_share": MetadataValue.float(share)} if share is not None else {}),
                "causes": MetadataValue.json(report.causes),
                "features_apart": MetadataValue.json(report.features),
            },
            partition_key=key,
        )
        if share is None:
            verdicts[key] = DayResult(True, figures, "nothing to compare yet")
            continue
        ok = share <= max_share
        why = None
        if not ok:
            causes = ", ".join(f"{c} {n}" for c, n in report.causes.items())
            why = (
                f"{share:.1%} of {report.compared} orders apart (max {max_share:.1%}): "
                f"{', '.join(worst)}; causes: {causes}"
            )
        verdicts[key] = DayResult(ok, {**figures, "worst_features": worst}, why)
    compared = sum(d["compared"] for d in per_day.values())
    apart = sum(d["mismatched"] for d in per_day.values())
    context.log.info(f"{apart:,} of {compared:,} served orders apart from their offline features")
    return MaterializeResult(
        metadata={"compared": compared, "mismatched": apart, "days": MetadataValue.json(per_day)},
        check_results=[range_check_result(SERVING_FEATURES_MATCH_OFFLINE, verdicts)],
    )
