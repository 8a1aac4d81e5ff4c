"""The demo's model step: one run of `train_model_job` (training set at the cutoff after the last
demo day, model, promotion gate, deployment), recorded in the demo's Dagster instance, and a short
report of what the fraud team would look at: the metrics, the thresholds and the gate's verdict.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from fraud_core.model.dataset import TrainingSetConfig

if TYPE_CHECKING:
    from fraud_cli.demo import DemoContext

MIN_TRAIN_DAYS = 14


def days_needed(config: TrainingSetConfig | None = None) -> int:
    """Days of history the default training set needs: maturity, validation, gap, training."""
    c = config or TrainingSetConfig()
    return c.maturity_days + c.validation_days + c.gap_days + MIN_TRAIN_DAYS


def run_train_model_job(ctx: DemoContext) -> None:
    from fraud_assets.definitions import defs
    from fraud_cli.demo import QUIET_CONSOLE, StepFailed, print_run_summary
    from fraud_core.model.artifact import current_version, read_card

    days = (ctx.last_day - ctx.first_day).days + 1
    if days < days_needed():
        print(
            f"    skipped: {days} days are too few for a training set with matured labels "
            f"(need {days_needed()}; run the demo with --days 90)"
        )
        return
    job = defs.resolve_job_def("train_model_job")
    result = job.execute_in_process(
        instance=ctx.instance,
        tags={"fraud/source": "demo"},
        run_config=QUIET_CONSOLE,
        raise_on_error=False,
    )
    ctx.results["train_model_job"] = result
    print_run_summary(result)
    gate = [
        c
        for c in result.get_asset_check_evaluations()
        if c.check_name == "fraud_model_not_worse_than_champion"
    ]
    refused = bool(gate) and not gate[0].passed
    if not result.success and not refused:
        raise StepFailed(f"run {result.run_id} of train_model_job failed (see `make dev`, Runs)")

    registry = ctx.layout.models
    for event in result.get_asset_materialization_events():
        if event.asset_key.path != ["fraud_model"]:
            continue
        meta = {k: v.value for k, v in event.materialization.metadata.items()}
        print(
            f"    model {meta['version']}: validation AP {meta['average_precision']:.3f}, "
            f"ROC AUC {meta['roc_auc']:.3f}, customer precision@100 "
            f"{meta['customer_precision_at_100']:.3f}"
        )
        print(
            f"    decline from {meta['decline_threshold']:.3f} (precision "
            f"{meta['decline_precision']:.2f}, recall {meta['decline_recall']:.2f}), "
            f"review from {meta['review_threshold']:.3f}"
        )
    if gate:
        verdict = "passed" if gate[0].passed else "REFUSED"
        print(f"    promotion gate {verdict}: {gate[0].description}")
    served = current_version(registry)
    if served is not None:
        card = read_card(registry, served)
        print(
            f"    serving {served} (trained on {card.training_window.get('train_first')}.."
            f"{card.training_window.get('train_last')}); registry: {registry}"
        )
