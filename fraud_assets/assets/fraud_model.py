"""`fraud_model`: an XGBoost model trained with `xgboost.dask` on the latest training set, with its
model card, decision thresholds and evaluation on the validation days.

Each trained model becomes a version in the registry (`$FRAUD_DATA_DIR/models`) and the
registry's candidate; it serves only once `deployed_model` promotes it through the gate.
"""

# No `from __future__ import annotations`: Dagster checks the `context` annotation at
# definition time.
import hashlib
from datetime import UTC, datetime

import dask.dataframe as dd
from dagster import AssetExecutionContext, Config, MaterializeResult, MetadataValue, asset
from pydantic import Field

from fraud_assets.assets.training_set import read_latest_manifest, training_set
from fraud_assets.lib.images import png_markdown, save_png
from fraud_assets.resources import DaskResource, DataLayoutResource
from fraud_core.model.artifact import CARD_FILE, ModelCard, save_version
from fraud_core.model.dataset import LABEL, TRAIN, VALIDATION, WEIGHT
from fraud_core.model.decisions import ThresholdTargets, choose_thresholds
from fraud_core.model.evaluate import (
    DEFAULT_K,
    clean,
    evaluate_scores,
    feature_importance,
    feature_importance_png,
    pr_curve_png,
    score_distribution_png,
)
from fraud_core.model.promotion import set_candidate
from fraud_core.model.summary import summary_markdown, threshold_note
from fraud_core.model.train import TrainParams, predict, train_model

_P = TrainParams()
_T = ThresholdTargets()


class FraudModelConfig(Config):
    """Hyperparameters and decision targets (the Launchpad shows these)."""

    max_depth: int = Field(default=_P.max_depth, description="Tree depth.")
    learning_rate: float = Field(default=_P.learning_rate, description="Shrinkage per round.")
    num_boost_round: int = Field(default=_P.num_boost_round, description="Most boosting rounds.")
    early_stopping_rounds: int = Field(
        default=_P.early_stopping_rounds,
        description="Stop when validation PR-AUC has not improved for this many rounds.",
    )
    min_child_weight: float = Field(default=_P.min_child_weight)
    subsample: float = Field(default=_P.subsample)
    colsample_bytree: float = Field(default=_P.colsample_bytree)
    reg_lambda: float = Field(default=_P.reg_lambda)
    max_bin: int = Field(default=_P.max_bin)
    seed: int = Field(default=_P.seed)
    decline_precision: float = Field(
        default=_T.decline_precision,
        description="Decline from the lowest score whose declines are at least this precise.",
    )
    review_share: float = Field(
        default=_T.review_share,
        description="Share of all orders sent to manual review below the decline threshold.",
    )

    def params(self) -> TrainParams:
        return TrainParams(
            max_depth=self.max_depth,
            learning_rate=self.learning_rate,
            num_boost_round=self.num_boost_round,
            early_stopping_rounds=self.early_stopping_rounds,
            min_child_weight=self.min_child_weight,
            subsample=self.subsample,
            colsample_bytree=self.colsample_bytree,
            reg_lambda=self.reg_lambda,
            max_bin=self.max_bin,
            seed=self.seed,
        )

    def targets(self) -> ThresholdTargets:
        return ThresholdTargets(
            decline_precision=self.decline_precision, review_share=self.review_share
        )


def _spec_hash(names: list[str]) -> str:
    return hashlib.sha256("\n".join(names).encode()).hexdigest()[:16]


@asset(
    deps=[training_set],
    group_name="model",
    kinds={"xgboost", "dask"},
    description=(
        "The fraud model: gradient-boosted trees (XGBoost, trained on Dask) scoring each order's "
        "probability of fraud, with early stopping on the validation days. Its card holds the "
        "features in order, the approve/review/decline thresholds, the training window, the "
        "parameters and the validation metrics: average precision (PR-AUC), ROC AUC, precision "
        "and recall at the thresholds, and customer precision@100 (of the 100 customers an "
        "analyst would look at first each day, the share that were fraudulent)."
    ),
)
def fraud_model(
    context: AssetExecutionContext,
    config: FraudModelConfig,
    layout: DataLayoutResource,
    dask: DaskResource,
) -> MaterializeResult:
    data = layout.layout()
    manifest = read_latest_manifest(data)
    names = manifest.feature_names
    params = config.params()
    validation = manifest.read_role(VALIDATION)
    with dask.get_client() as client:
        # numeric columns only: no string conversion to worry about
        train = dd.read_parquet(manifest.files[TRAIN], columns=[*names, LABEL, WEIGHT])
        result = train_model(client, train, validation, names, params)
    scores = predict(result.booster, validation, names)
    labels = validation[LABEL].to_numpy()
    thresholds = choose_thresholds(labels, scores, config.targets())
    known = manifest.known_fraud_since()
    metrics = clean(evaluate_scores(validation, scores, thresholds, DEFAULT_K, known))
    importance = feature_importance(result.booster)

    card = ModelCard(
        version="",
        feature_names=list(names),
        thresholds=thresholds,
        training_window=manifest.window,
        params={
            **params.to_dict(),
            "xgboost": params.xgb_params(),
            "best_iteration": result.best_iteration,
            "rounds_run": result.rounds,
            "threshold_targets": config.targets().to_dict(),
            "training_set": manifest.config,
        },
        metrics={
            "validation": metrics,
            "train_rows": result.n_train,
            "train_seconds": round(result.train_seconds, 2),
            "top_features": dict(list(importance.items())[:10]),
        },
        data_versions={
            "training_set": {"path": manifest.folder, "fingerprint": manifest.fingerprint},
            "entity_features": {
                "days": f"{manifest.window['train_first']}..{manifest.window['validation_last']}",
                "files": len(manifest.inputs),
                "fingerprint": hashlib.sha256(
                    repr(sorted(manifest.inputs.items())).encode()
                ).hexdigest()[:16],
            },
            "feature_spec": _spec_hash(names),
            "dagster_run_id": context.run.run_id,
        },
        notes=(
            f"trained {datetime.now(UTC):%Y-%m-%d %H:%M} UTC on labels known at "
            f"{manifest.window['cutoff']}; evaluated on validation days "
            f"{manifest.window['validation_first']}..{manifest.window['validation_last']}"
        ),
    )
    card = save_version(data.models, result.booster, card)
    set_candidate(data.models, card.version)
    folder = data.models / card.version
    plots = {
        "pr_curve": ("Precision-recall", pr_curve_png(labels, scores, thresholds)),
        "score_distribution": (
            "Score distribution",
            score_distribution_png(labels, scores, thresholds),
        ),
        "feature_importance": ("Feature importance", feature_importance_png(result.booster)),
    }
    plot_metadata = {}
    for key, (title, png) in plots.items():
        plot_metadata[f"{key}_plot"] = png_markdown(title, png)
        plot_metadata[f"{key}_path"] = save_png(png, folder / "plots" / f"{key}.png")

    context.log.info(
        f"model {card.version}: AP {metrics['average_precision']:.4f}, ROC AUC "
        f"{metrics['roc_auc']:.4f}, {result.best_iteration + 1} trees, "
        f"{result.train_seconds:.1f} s on {result.n_train:,} rows"
    )
    summary = summary_markdown(
        metrics, thresholds, manifest.window, importance, config.targets(), DEFAULT_K
    )
    note = threshold_note(metrics, thresholds, config.targets())
    if note:
        context.log.warning(note)
    return MaterializeResult(
        metadata={
            "summary": MetadataValue.md(summary),
            "version": card.version,
            "average_precision": MetadataValue.float(_num(metrics["average_precision"])),
            "roc_auc": MetadataValue.float(_num(metrics["roc_auc"])),
            f"customer_precision_at_{DEFAULT_K}": MetadataValue.float(
                _num(metrics[f"customer_precision_at_{DEFAULT_K}"])
            ),
            "decline_threshold": MetadataValue.float(_num(thresholds["decline"])),
            "review_threshold": MetadataValue.float(_num(thresholds["review"])),
            "decline_precision": MetadataValue.float(_num(metrics.get("decline_precision"))),
            "decline_recall": MetadataValue.float(_num(metrics.get("decline_recall"))),
            "review_precision": MetadataValue.float(_num(metrics.get("review_precision"))),
            "review_recall": MetadataValue.float(_num(metrics.get("review_recall"))),
            "validation_orders": int(metrics["orders"]),
            "validation_fraud_orders": int(metrics["fraud_orders"]),
            "best_iteration": result.best_iteration,
            "train_rows": result.n_train,
            "train_seconds": MetadataValue.float(round(result.train_seconds, 2)),
            "card": MetadataValue.path(str(folder / CARD_FILE)),
            "metrics": MetadataValue.json(metrics),
            **plot_metadata,
        }
    )


def _num(value: float | None) -> float:
    """Rounded for the UI (the card keeps every digit)."""
    return float("nan") if value is None else round(float(value), 4)
