"""`model_selection`: which hyperparameters hold on days the model has not seen, chosen on
time-ordered folds of the `entity_features` files, with the evidence for every feature.

`fraud_model` trains with the selected setting (unless its config pins the parameters) and its
card says which and why. The blocking check `no_likely_leaks` fails when a feature alone
separates fraud almost perfectly on days after the label delay: the retrain that follows stops
there instead of deploying a model that learned the answer. See `fraud_core.model.selection`.
"""

# No `from __future__ import annotations`: Dagster checks the `context` annotation at
# definition time.
import json
from datetime import date, timedelta

from dagster import (
    AssetCheckResult,
    AssetCheckSeverity,
    AssetCheckSpec,
    AssetExecutionContext,
    Config,
    Failure,
    MaterializeResult,
    MetadataValue,
    asset,
)
from pydantic import Field

from fraud_assets.lib.images import png_markdown
from fraud_assets.lib.label_feed import read_feed
from fraud_assets.resources import DaskResource, DataLayoutResource
from fraud_core.model.dataset import TrainingSetConfig, disk_source
from fraud_core.model.selection import (
    AP,
    SEARCH_SPACE,
    SelectionConfig,
    describe_setting,
    run_selection,
    search_space,
)
from fraud_core.storage import atomic_path

NO_LIKELY_LEAKS = "no_likely_leaks"
_S = SelectionConfig(end=date(2026, 1, 1))


class ModelSelectionConfig(Config):
    end: str | None = Field(
        default=None,
        description="Last assessed day, YYYY-MM-DD. Empty: the newest entity_features day less "
        "delay_days (labels there have matured).",
    )
    train_days: int = Field(default=_S.train_days, description="Matured days per training set.")
    delay_days: int = Field(
        default=_S.delay_days, description="Label delay skipped between training and assessment."
    )
    test_days: int = Field(default=_S.test_days, description="Assessment days per fold.")
    folds: int = Field(default=_S.folds, description="Folds, each shifted back by test_days.")
    budget_seconds: float = Field(
        default=_S.budget_seconds,
        description="Wall time of the search; settings not finished in it are left out.",
    )
    min_gain_se: float = Field(
        default=_S.min_gain_se,
        description="The best setting replaces the defaults only when its paired AP gain "
        "exceeds this many standard errors.",
    )
    leak_auc: float = Field(
        default=_S.leak_auc,
        description="A feature whose ROC AUC alone reaches this on every fold is a likely leak.",
    )
    settings: list[str] = Field(
        default_factory=lambda: [s.name for s in SEARCH_SPACE],
        description="The settings to try, in order (the defaults always first): "
        + "; ".join(f"{s.name}: {describe_setting(s)}" for s in SEARCH_SPACE),
    )


@asset(
    deps=["entity_features", "labels"],
    group_name="model",
    kinds={"xgboost", "dask"},
    check_specs=[
        AssetCheckSpec(
            NO_LIKELY_LEAKS,
            asset="model_selection",
            blocking=True,
            description="No feature alone separates fraud almost perfectly on assessment days "
            "after the label delay (a feature that knows the label is a leak, not a signal).",
        )
    ],
    description=(
        "Prequential model selection: a small search over depth, learning rate and rounds, min "
        "child weight, column sampling and class imbalance (negative subsampling vs class "
        "weights), each setting trained on time-ordered folds (train on earlier days, skip the "
        "label delay, assess later days) within a wall-time budget. The best mean AP replaces "
        "the defaults only when it beats them by more than the noise between folds. Also the "
        "evidence per feature (SHAP contributions, permutation AP drop, AUC alone): features "
        "that never help, and likely leaks. fraud_model trains with the selected setting."
    ),
)
def model_selection(
    context: AssetExecutionContext,
    config: ModelSelectionConfig,
    layout: DataLayoutResource,
    dask: DaskResource,
) -> MaterializeResult:
    data = layout.layout()
    spec = layout.contract().spec
    on_disk = layout.feature_days(data)
    end = (
        date.fromisoformat(config.end)
        if config.end
        else on_disk[-1] - timedelta(days=config.delay_days)
    )
    try:
        settings = SelectionConfig(
            end=end,
            train_days=config.train_days,
            delay_days=config.delay_days,
            test_days=config.test_days,
            folds=config.folds,
            budget_seconds=config.budget_seconds,
            min_gain_se=config.min_gain_se,
            leak_auc=config.leak_auc,
        )
        space = search_space(config.settings)
    except ValueError as err:
        raise Failure(str(err)) from err
    try:
        with dask.get_client() as client:
            report = run_selection(
                client,
                disk_source(data, on_disk),
                settings,
                TrainingSetConfig(warmup_days=spec.warmup_days),
                space=space,
                first_day=on_disk[0],
                spec=spec,
                feed=read_feed(data),
                log=context.log.info,
            )
    except ValueError as err:
        # Too little data for the folds (a new deployment): nothing is selected, fraud_model
        # keeps the previous selection or its config, and a retrain is not stopped here.
        reason = f"no selection: too little data on disk for {config.folds} fold(s): {err}"
        context.log.warning(reason)
        return MaterializeResult(
            metadata={"selected": "", "reason": reason},
            check_results=[
                AssetCheckResult(
                    check_name=NO_LIKELY_LEAKS,
                    passed=True,
                    description="nothing assessed (no selection was made)",
                )
            ],
        )

    with atomic_path(data.model_selection("json")) as tmp:
        tmp.write_text(json.dumps(report.to_dict(), indent=2, default=str))
    markdown = report.to_markdown()
    with atomic_path(data.model_selection("md")) as tmp:
        tmp.write_text(markdown + "\n")
    context.log.info(f"selected {report.selected}: {report.reason}")
    summary = report.summary()
    metadata = {
        "selected": report.selected,
        "reason": report.reason,
        "selected_params": MetadataValue.json(report.selected_params()),
        "report": MetadataValue.md(markdown),
        "ap_by_setting_plot": png_markdown("AP by setting", report.plot_png()),
        "report_path": MetadataValue.path(str(data.model_selection("json"))),
        "folds": MetadataValue.json(report.folds),
        "assessed_days": f"{report.folds[-1]['test'].split('..')[0]}..{end}",
        "wall_seconds": MetadataValue.float(report.wall_seconds),
        "not_evaluated": MetadataValue.json(report.not_evaluated),
        "never_helped": MetadataValue.json(report.never_helped),
        "feature_evidence": MetadataValue.json(
            {name: report.evidence[name] for name in list(report.evidence)[:20]}
        ),
    }
    for name, entry in summary.items():
        metadata[f"{name}_ap"] = MetadataValue.float(entry[AP][0])
        metadata[f"{name}_ap_std"] = MetadataValue.float(entry[AP][1])
    leaks = ", ".join(f"{x['feature']} (AUC alone {x['alone_auc']:.3f})" for x in report.leaks)
    return MaterializeResult(
        metadata=metadata,
        check_results=[
            AssetCheckResult(
                check_name=NO_LIKELY_LEAKS,
                passed=not report.leaks,
                severity=AssetCheckSeverity.ERROR,
                description=(
                    f"likely leaks: {leaks}" if report.leaks else "no feature alone is too good"
                ),
                metadata={
                    "leaks": MetadataValue.json(report.leaks),
                    "leak_auc": settings.leak_auc,
                    "highest_alone_auc": max(
                        (v["alone_auc"] for v in report.evidence.values() if v["alone_auc"] >= 0),
                        default=0.0,
                    ),
                },
            )
        ],
    )
