"""`fraud_model`: an XGBoost model trained with `xgboost.dask` on the latest training set, with its
model card, decision thresholds and evaluation on the validation days.

Each trained model becomes a version in the registry (`$FRAUD_DATA_DIR/models`) and the
registry's candidate; it serves only once `deployed_model` promotes it through the gate. Training,
thresholds, evaluation and the card are `fraud_core.model.candidate`'s; this asset adds the Dask
client, the run id and what the UI shows.
"""

# No `from __future__ import annotations`: Dagster checks the `context` annotation at
# definition time.
import dataclasses
import typing
from collections.abc import Mapping
from typing import Any, Literal

from dagster import AssetExecutionContext, Config, MaterializeResult, MetadataValue, asset
from pydantic import Field, create_model

from fraud_assets.assets.model_selection import model_selection
from fraud_assets.assets.training_set import training_set
from fraud_assets.lib.images import png_markdown, save_png
from fraud_assets.resources import DaskResource, DataLayoutResource
from fraud_core.model.artifact import CARD_FILE
from fraud_core.model.candidate import register_candidate, spec_hash, train_candidate
from fraud_core.model.dataset import read_latest_manifest
from fraud_core.model.decisions import FALLBACK, ThresholdTargets
from fraud_core.model.evaluate import DEFAULT_K
from fraud_core.model.selection import read_selection
from fraud_core.model.settings import describe
from fraud_core.model.summary import quality_figures, window_entries
from fraud_core.model.train import TrainParams
from fraud_core.storage import DataLayout


def _config_fields(*settings: type) -> dict[str, Any]:
    """Pydantic field definitions (type, default, description) of settings dataclasses, so the
    Launchpad shows what `fraud_core` declares, without a second copy here."""
    fields: dict[str, Any] = {}
    for cls in settings:
        hints = typing.get_type_hints(cls)
        for f in dataclasses.fields(cls):
            if f.name in fields:
                raise TypeError(f"{f.name} is a setting of two of {settings}")
            fields[f.name] = (hints[f.name], Field(default=f.default, description=describe(f)))
    return fields


def _settings(cls: type, config: Config) -> Any:
    return cls(**{f.name: getattr(config, f.name) for f in dataclasses.fields(cls)})


class FraudModelConfig(
    create_model(
        "FraudModelSettings",
        __base__=Config,
        __module__=__name__,
        **_config_fields(TrainParams, ThresholdTargets),
    )
):
    """Hyperparameters and decision targets (the Launchpad shows these): the fields, defaults
    and descriptions of `TrainParams` and `ThresholdTargets`, declared once in fraud_core."""

    hyperparameters: Literal["selected", "pinned"] = Field(
        default="selected",
        description="selected: the latest model_selection's setting when there is one for "
        "these features (else the values below); pinned: the values below.",
    )

    def params(self) -> TrainParams:
        return _settings(TrainParams, self)

    def targets(self) -> ThresholdTargets:
        return _settings(ThresholdTargets, self)


@asset(
    deps=[training_set, model_selection],
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
    params, negative_rate, selection = chosen_params(data, config, list(manifest.feature_names))
    context.log.info(f"hyperparameters: {selection['source']} ({selection['why']})")
    with dask.get_client() as client:
        candidate = train_candidate(
            client,
            manifest,
            params,
            config.targets(),
            k=DEFAULT_K,
            lineage={"dagster_run_id": context.run.run_id},
            selection=selection,
            negative_rate=negative_rate,
        )
    card = register_candidate(data.models, candidate)
    folder = data.models / card.version
    plot_metadata = {}
    for key, (title, png) in candidate.plots().items():
        plot_metadata[f"{key}_plot"] = png_markdown(title, png)
        plot_metadata[f"{key}_path"] = save_png(png, folder / "plots" / f"{key}.png")

    metrics, thresholds, result = candidate.metrics, candidate.thresholds, candidate.result
    context.log.info(
        f"model {card.version}: AP {metrics['average_precision']:.4f}, ROC AUC "
        f"{metrics['roc_auc']:.4f}, {result.best_iteration + 1} trees, "
        f"{result.train_seconds:.1f} s on {result.n_train:,} rows"
    )
    if candidate.note:  # the fallback is a rule that worked; the other notes need a look
        log = context.log.info if candidate.choice.rule == FALLBACK else context.log.warning
        log(candidate.note)
    return MaterializeResult(
        metadata={
            "summary": MetadataValue.md(candidate.summary()),
            "version": card.version,
            **quality_metadata(metrics, thresholds, card.training_window),
            "threshold_rule": candidate.choice.rule,
            "hyperparameters": selection["source"],
            "hyperparameters_why": selection["why"],
            "brier": MetadataValue.float(float(metrics["brier"] or 0.0)),
            "brier_raw": MetadataValue.float(float(metrics["brier_raw"] or 0.0)),
            "calibration": MetadataValue.json(card.calibration),
            "mean_abs_contribution": MetadataValue.json(
                {k: round(v, 4) for k, v in list(candidate.contributions.items())[:20]}
            ),
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


def chosen_params(
    data: DataLayout, config: FraudModelConfig, names: list[str]
) -> tuple[TrainParams, float | None, dict[str, Any]]:
    """(params, negative rate or None, what the card records about them): the latest
    selection's setting when asked for and made for these features, else the config's."""
    pinned = config.params()
    if config.hyperparameters == "pinned":
        return pinned, None, {"source": "pinned", "why": "pinned in the run config"}
    report = read_selection(data.model_selection())
    if report is None:
        return pinned, None, {"source": "config", "why": "no model_selection yet"}
    if report.feature_spec != spec_hash(names):
        return (
            pinned,
            None,
            {
                "source": "config",
                "why": "the latest model_selection was made for other features",
            },
        )
    setting = report.selected_setting()
    return (
        TrainParams(**setting["params"]),
        setting["negative_rate"],
        {
            "source": "selected",
            "setting": report.selected,
            "why": report.reason,
            "report": str(data.model_selection()),
            "assessed": [f["test"] for f in report.folds],
        },
    )


def quality_metadata(
    metrics: Mapping[str, float | None],
    thresholds: Mapping[str, float],
    window: Mapping[str, str],
    k: int = DEFAULT_K,
) -> dict[str, Any]:
    """A model's figures as separate entries, rounded to 4 digits (the card keeps every digit),
    and its training window; `deployed_model` shows the served model's the same way."""
    return {
        **{
            name: MetadataValue.float(value)
            for name, value in quality_figures(metrics, thresholds, k).items()
        },
        **window_entries(window),
    }
