"""`backtest_report`: how the production training code would have done on the days it had not
seen yet, fold by fold, next to the hand-written rules a fraud team starts with.

Reads the `entity_features` files day by day (never all partitions at once) and trains one model
per fold on the Dask resource; see `fraud_core.model.backtest` for the fold rules.
"""

# No `from __future__ import annotations`: Dagster checks the `context` annotation at
# definition time.
import json
from datetime import date

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
    MODEL,
    RULES,
    RULES_TEXT,
    BacktestConfig,
    rules_text,
    run_backtest,
)
from fraud_core.model.dataset import TrainingSetConfig, feature_days_on_disk, read_feature_day
from fraud_core.model.evaluate import DEFAULT_K
from fraud_core.storage import atomic_path

_B = BacktestConfig(end=date(2026, 1, 1))


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
    on_disk = feature_days_on_disk(data)
    if not on_disk:
        raise Failure("no entity_features partition on disk: materialize entity_features first")
    end = date.fromisoformat(config.end) if config.end else on_disk[-1]
    try:
        settings = BacktestConfig(
            end=end,
            train_days=config.train_days,
            delay_days=config.delay_days,
            test_days=config.test_days,
            folds=config.folds,
        )
    except ValueError as err:
        raise Failure(str(err)) from err
    available = set(on_disk)

    def source(day: date):
        return read_feature_day(data, day) if day in available else None

    try:
        with dask.get_client() as client:
            report = run_backtest(
                client,
                source,
                settings,
                TrainingSetConfig(warmup_days=spec.warmup_days),
                first_day=on_disk[0],
                log=context.log.info,
                spec=spec,
                feed=read_feed(data),
            )
    except ValueError as err:
        raise Failure(f"backtest impossible on the features on disk: {err}") from err

    with atomic_path(data.backtest_report("json")) as tmp:
        tmp.write_text(json.dumps(report.to_dict(), indent=2, default=str))
    with atomic_path(data.backtest_report("md")) as tmp:
        tmp.write_text(report.to_markdown() + "\n\n" + report.result_line() + "\n")
    summary = report.summary()
    metadata = {
        "folds": len(report.folds),
        "end": str(end),
        "first_cutoff": str(min(f.cutoff for f in report.folds)),
        "report": MetadataValue.md(report.to_markdown()),
        "report_path": MetadataValue.path(str(data.backtest_report("json"))),
        "result": report.result_line(),
        "rules_baseline": rules_text(spec),
    }
    for system in (MODEL, RULES):
        for metric, (mean, std) in summary[system].items():
            metadata[f"{system}_{metric}"] = MetadataValue.float(mean)
            metadata[f"{system}_{metric}_std"] = MetadataValue.float(std)
    context.log.info(report.result_line())
    return MaterializeResult(metadata=metadata)
