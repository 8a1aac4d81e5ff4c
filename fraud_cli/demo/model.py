"""The demo's model step: one run of `train_model_job` (training set at the cutoff after the last
demo day, model, promotion gate, deployment), recorded in the demo's Dagster instance, and a short
report of what the fraud team would look at: the metrics, the thresholds and the gate's verdict.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from fraud_core.model.dataset import TrainingSetConfig

if TYPE_CHECKING:
    from fraud_cli.demo.context import DemoContext

MIN_TRAIN_DAYS = 14


def days_needed(config: TrainingSetConfig | None = None) -> int:
    """Days of history the default training set needs: maturity, validation, gap, training."""
    c = config or TrainingSetConfig()
    return c.maturity_days + c.validation_days + c.gap_days + MIN_TRAIN_DAYS


def run_train_model_job(ctx: DemoContext) -> None:
    from fraud_assets.assets.deployed_model import CANDIDATE_NOT_WORSE
    from fraud_cli.demo.context import StepFailed
    from fraud_core.model.artifact import current_version, read_card

    days = (ctx.last_day - ctx.first_day).days + 1
    if days < days_needed():
        print(
            f"    skipped: {days} days are too few for a training set with matured labels "
            f"(need {days_needed()}; run the demo with --days 90)"
        )
        return
    report = ctx.dagster.run("train_model_job", {"fraud/source": "demo"})
    ctx.runs["train_model_job"] = report
    gate = report.check(CANDIDATE_NOT_WORSE)
    refused = gate is not None and not gate.passed
    if not report.success and not refused:
        raise StepFailed(f"run {report.run_id} of train_model_job failed (see `make dev`, Runs)")
    meta = report.metadata("fraud_model")
    if meta:
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
    if gate is not None:
        print(f"    promotion gate {'passed' if gate.passed else 'REFUSED'}: {gate.description}")
    served = current_version(ctx.layout.models)
    if served is not None:
        card = read_card(ctx.layout.models, served)
        print(
            f"    serving {served} (trained on {card.training_window.get('train_first')}.."
            f"{card.training_window.get('train_last')})"
        )
