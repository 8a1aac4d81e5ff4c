"""`backtest_report`: how the production training code would have done on the days it had not
seen yet, fold by fold, next to the hand-written rules a fraud team starts with.

Reads the `entity_features` files day by day (never all partitions at once) and trains one model
per fold on the Dask resource; see `fraud_core.model.backtest` for the fold rules.
"""

# No `from __future__ import annotations`: Dagster checks the `context` annotation at
# definition time.
import json
from datetime import date
from typing import Literal

from dagster import (
    AssetExecutionContext,
    Config,
    Failure,
    MaterializeResult,
    MetadataValue,
    asset,
)
from pydantic import Field

from fraud_assets.lib.label_feed import read_feed
from fraud_assets.resources import DaskResource, DataLayoutResource
from fraud_core.model.backtest import (
    RULES_TEXT,
    BacktestConfig,
    rules_text,
    run_backtest,
)
from fraud_core.model.dataset import TrainingSetConfig, disk_source
from fraud_core.model.evaluate import DEFAULT_K
from fraud_core.model.selection import SelectionConfig, read_selection
from fraud_core.storage import atomic_path

_B = BacktestConfig(end=date(2026, 1, 1))
_S = SelectionConfig(end=date(2026, 1, 1))


class BacktestReportConfig(Config):
    end: str | None = Field(
        default=None,
        description="Last assessed day, YYYY-MM-DD. Empty: the newest entity_features day.",
    )
    train_days: int = Field(default=_B.train_days, description="Matured days per training set.")
    delay_days: int = Field(
        default=_B.delay_days, description="Days between training data and the cutoff."
    )
    test_days: int = Field(default=_B.test_days, description="Assessment days per fold.")
    folds: int = Field(default=_B.folds, description="Folds, each shifted back by test_days.")
    compare: Literal["none", "selected", "nested"] = Field(
        default="none",
        description="Also train, in every fold, other hyperparameters and report default vs "
        "them: 'selected' = the latest model_selection's setting (chosen on days that may "
        "overlap the assessed ones: optimistic); 'nested' = a model selection inside each fold "
        "on the days before its cutoff (honest, slower).",
    )
    selection_folds: int = Field(
        default=_S.folds, description="Folds of each nested selection (compare = nested)."
    )
    selection_budget_seconds: float = Field(
        default=_S.budget_seconds, description="Wall seconds of each nested selection."
    )


@asset(
    deps=["entity_features", "labels"],
    group_name="model",
    kinds={"xgboost", "dask"},
    description=(
        "A prequential backtest: for each fold, train on a window with the labels known at the "
        "fold's cutoff, skip the label delay, and assess the following days with their final "
        "labels; folds step back in time. Reports average precision, ROC AUC and customer "
        f"precision@{DEFAULT_K} per fold and as mean ± std, for the model and for a rules "
        f"baseline ({RULES_TEXT})"
    ),
)
def backtest_report(
    context: AssetExecutionContext,
    config: BacktestReportConfig,
    layout: DataLayoutResource,
    dask: DaskResource,
) -> MaterializeResult:
    data = layout.layout()
    spec = layout.contract().spec
    on_disk = layout.feature_days(data)
    end = date.fromisoformat(config.end) if config.end else on_disk[-1]
    try:
        settings = BacktestConfig(
            end=end,
            train_days=config.train_days,
            delay_days=config.delay_days,
            test_days=config.test_days,
            folds=config.folds,
        )
        nested = compare = None
        if config.compare == "nested":
            nested = SelectionConfig.nested_in(
                settings, config.selection_folds, config.selection_budget_seconds
            )
        elif config.compare == "selected":
            selection = read_selection(data.model_selection())
            if selection is None:
                raise ValueError("compare = selected, but model_selection has not run yet")
            setting = selection.selected_setting()
            compare = {
                "params": setting["params"],
                "negative_rate": setting["negative_rate"],
                "setting": selection.selected,
            }
    except ValueError as err:
        raise Failure(str(err)) from err
    try:
        with dask.get_client() as client:
            report = run_backtest(
                client,
                disk_source(data, on_disk),
                settings,
                TrainingSetConfig(warmup_days=spec.warmup_days),
                first_day=on_disk[0],
                log=context.log.info,
                spec=spec,
                feed=read_feed(data),
                compare=compare,
                nested=nested,
            )
    except ValueError as err:
        raise Failure(f"backtest impossible on the features on disk: {err}") from err

    with atomic_path(data.backtest_report("json")) as tmp:
        tmp.write_text(json.dumps(report.to_dict(), indent=2, default=str))
    markdown = report.to_markdown()
    with atomic_path(data.backtest_report("md")) as tmp:
        tmp.write_text(markdown + "\n\n" + report.result_line() + "\n")
    summary = report.summary()
    metadata = {
        "folds": len(report.folds),
        "end": str(end),
        "first_cutoff": str(min(f.cutoff for f in report.folds)),
        "report": MetadataValue.md(markdown),
        "report_path": MetadataValue.path(str(data.backtest_report("json"))),
        "result": report.result_line(),
        "rules_baseline": rules_text(spec),
    }
    gain = report.paired_ap()
    if gain is not None:
        metadata["selected_minus_default_ap"] = MetadataValue.json(gain)
    for system in report.systems:
        for metric, (mean, std) in summary[system].items():
            metadata[f"{system}_{metric}"] = MetadataValue.float(mean)
            metadata[f"{system}_{metric}_std"] = MetadataValue.float(std)
    context.log.info(report.result_line())
    return MaterializeResult(metadata=metadata)
