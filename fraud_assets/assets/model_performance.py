"""`model_performance`: how the served model did on each served day, judged by the labels known
so far (issue 16; the figures and what they can show: `fraud_core.performance`).

Daily partitions by served day (`scored_orders`' days). A day's labels are the label feed's
events (`labels`) merged with the label columns of the day's order rows (`raw_orders`, when the
orders also arrived in a landing file). `label_feed_sensor` runs a day again whenever new labels
judge its orders, so a day's figures mature with its chargebacks. Two checks warn when realized
precision at review (on mature days) or the decline rate leaves its band.
"""

# No `from __future__ import annotations`: Dagster checks the `context` annotation at definition.
import json

from dagster import (
    AssetCheckSeverity,
    AssetCheckSpec,
    AssetExecutionContext,
    BackfillPolicy,
    MaterializeResult,
    MetadataValue,
    asset,
)

from fraud_assets.assets.labels import labels
from fraud_assets.assets.scored_orders import scored_orders
from fraud_assets.lib.images import png_markdown
from fraud_assets.lib.label_feed import known_labels, read_feed
from fraud_assets.lib.range_checks import DayResult, range_check_result
from fraud_assets.partitions import daily_partitions, partition_days
from fraud_assets.resources import DataLayoutResource
from fraud_core.env import env_number
from fraud_core.freshness import monitoring_clock
from fraud_core.model.dataset import TrainingSetConfig
from fraud_core.model.evaluate import png_bytes
from fraud_core.performance import maturity, performance, performance_figure
from fraud_core.storage import as_path, atomic_path, read_parquet

REVIEW_PRECISION_IN_BAND = "review_precision_in_band"
DECLINE_RATE_IN_BAND = "decline_rate_in_band"
REVIEW_PRECISION_MIN_ENV = "FRAUD_REVIEW_PRECISION_MIN"
DECLINE_RATE_MAX_ENV = "FRAUD_DECLINE_RATE_MAX"
DEFAULT_REVIEW_PRECISION_MIN = 0.05
DEFAULT_DECLINE_RATE_MAX = 0.05
MATURE_DAYS = TrainingSetConfig().maturity_days


def _day_metadata(figures: dict) -> dict:
    """A served day's figures as its partition's metadata: numbers the UI plots over days."""
    overall = figures["all"]
    numbers = {
        name: MetadataValue.float(float(overall[name]))
        for name in (
            "ap_watched",
            "precision_at_review",
            "recall_at_review",
            "decline_rate",
            "precision_at_decline_holdout",
            "expected_fraud_watched",  # what the calibrated scores expected ...
            "brier_watched",
        )
        if overall.get(name) is not None
    }
    return {
        **numbers,
        "labelled_fraud": overall["labelled_fraud"],
        "watched_fraud": overall["watched_fraud"],  # ... and the fraud known among them
        "fraud_amount_missed": MetadataValue.float(overall["fraud_cents_missed"] / 100),
        "fraud_amount_caught": MetadataValue.float(overall["fraud_cents_caught"] / 100),
        "maturity_days": MetadataValue.float(figures["maturity_days"]),
        "mature": figures["mature"],
    }


@asset(
    partitions_def=daily_partitions,
    backfill_policy=BackfillPolicy.single_run(),
    deps=[scored_orders, labels],
    group_name="monitoring",
    kinds={"pandas", "json"},
    check_specs=[
        AssetCheckSpec(
            REVIEW_PRECISION_IN_BAND,
            asset="model_performance",
            blocking=False,
            description="On mature days, the share of reviewed orders that turned out fraud is at "
            f"least ${REVIEW_PRECISION_MIN_ENV} (default {DEFAULT_REVIEW_PRECISION_MIN}).",
        ),
        AssetCheckSpec(
            DECLINE_RATE_IN_BAND,
            asset="model_performance",
            blocking=False,
            description=f"The share of orders declined is at most ${DECLINE_RATE_MAX_ENV} "
            f"(default {DEFAULT_DECLINE_RATE_MAX}).",
        ),
    ],
    description=(
        "How the served model did on each served day, per model version, with the labels known "
        "so far (label feed + order rows): decisions and decline/review rates; on watched "
        "orders (approved and reviewed, the only ones chargebacks can reach) average precision, "
        "precision and recall at review; declines confirmed by analysts or posted labels; fraud "
        "amount caught (reviewed or declined) and missed (approved). Precision at decline "
        "cannot be known from chargebacks (a declined order never gets one) except on the "
        "would-be declines held out and approved (FRAUD_DECLINE_HOLDOUT_SHARE): "
        "precision_at_decline_holdout. `maturity_days` "
        "says how long the day's labels had to arrive; a day younger than the training "
        f"maturity window ({MATURE_DAYS} days) is `mature: false`: its figures will change. "
        "Re-run by label_feed_sensor whenever new labels judge its orders."
    ),
)
def model_performance(
    context: AssetExecutionContext, layout: DataLayoutResource
) -> MaterializeResult:
    data = layout.layout()
    feed = read_feed(data)
    clock = monitoring_clock(data)  # FRAUD_CLOCK: wall, or the data's own
    precision_min = env_number(REVIEW_PRECISION_MIN_ENV, DEFAULT_REVIEW_PRECISION_MIN, float, low=0)
    decline_max = env_number(DECLINE_RATE_MAX_ENV, DEFAULT_DECLINE_RATE_MAX, float, low=0)
    per_day: dict[str, dict] = {}
    precision_ok: dict[str, DayResult] = {}
    decline_ok: dict[str, DayResult] = {}
    for day in partition_days(context):
        key = day.isoformat()
        path = as_path(data.scored_orders(day))
        if not path.exists():  # nothing served that day: nothing to judge
            precision_ok[key] = decline_ok[key] = DayResult(True, {"orders": 0})
            continue
        scored = read_parquet(
            path, columns=["order_id", "cents", "model_version", "score", "decision"]
        ).to_pandas()
        ids = scored["order_id"].astype(str)
        known = known_labels(data, day, ids, feed, clock)
        fraud = known["is_fraud"].to_numpy() == 1
        age = maturity(day, clock)
        figures = {
            "day": key,
            "maturity_days": round(age, 1),
            "mature": age >= MATURE_DAYS,
            "all": performance(
                scored["decision"], scored["score"], scored["cents"], fraud, known["source"]
            ).to_dict(),
            "by_model": {
                version: performance(
                    scored["decision"][mask],
                    scored["score"][mask],
                    scored["cents"][mask],
                    fraud[mask.to_numpy()],
                ).to_dict()
                for version, mask in (
                    (v, scored["model_version"] == v)
                    for v in sorted(scored["model_version"].unique())
                )
            },
        }
        with atomic_path(as_path(data.model_performance(day))) as tmp:
            tmp.write_text(json.dumps(figures, indent=1, sort_keys=True))
        per_day[key] = figures
        overall = figures["all"]
        context.add_asset_metadata(_day_metadata(figures), partition_key=key)
        review = overall["precision_at_review"]
        if not figures["mature"] or review is None:
            precision_ok[key] = DayResult(True, {"precision_at_review": review})
        else:
            precision_ok[key] = DayResult(
                review >= precision_min,
                {"precision_at_review": round(review, 4)},
                None
                if review >= precision_min
                else f"precision at review {review:.1%} < {precision_min:.1%}",
            )
        rate = overall["decline_rate"] or 0.0
        decline_ok[key] = DayResult(
            rate <= decline_max,
            {"decline_rate": round(rate, 4)},
            None if rate <= decline_max else f"decline rate {rate:.2%} > {decline_max:.2%}",
        )
    history = [json.loads(as_path(p).read_text()) for p in data.model_performance_files().values()]
    metadata = {
        "days": len(per_day),
        "labels_clock": clock.isoformat(timespec="seconds"),
        "figures": MetadataValue.json(per_day),
    }
    if history:
        metadata["over_time"] = png_markdown(
            "Realized performance by served day", png_bytes(performance_figure(history))
        )
    context.log.info(f"performance of {len(per_day)} served day(s), labels as of {clock:%Y-%m-%d}")
    return MaterializeResult(
        metadata=metadata,
        check_results=[
            range_check_result(
                REVIEW_PRECISION_IN_BAND, precision_ok, severity=AssetCheckSeverity.WARN
            ),
            range_check_result(DECLINE_RATE_IN_BAND, decline_ok, severity=AssetCheckSeverity.WARN),
        ],
    )
