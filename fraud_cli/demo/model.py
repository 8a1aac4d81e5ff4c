"""The demo's model step: one run of `retrain_job` (training set at the cutoff after the last demo
day, model, promotion gate, deployment, online store), recorded in the demo's Dagster instance,
and a short report of what the fraud team would look at: the metrics, the thresholds, the gate's
verdict and the store the service will read.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from fraud_core.model.dataset import TrainingSetConfig

if TYPE_CHECKING:
    from fraud_cli.demo.context import DemoContext


def days_needed(config: TrainingSetConfig | None = None) -> int:
    """The fewest days a training set can be built from: maturity, validation, gap and the
    minimum of training days (the features' warm-up is then cut short)."""
    c = config or TrainingSetConfig()
    return c.maturity_days + c.validation_days + c.gap_days + c.min_train_days


def days_for_a_full_window(config: TrainingSetConfig | None = None) -> int:
    """Days from which the training set also skips the features' whole warm-up."""
    c = config or TrainingSetConfig()
    return days_needed(c) + c.warmup_days


def train_deploy_and_load(ctx: DemoContext) -> None:
    from fraud_assets.assets.deployed_model import CANDIDATE_NOT_WORSE
    from fraud_cli.demo.context import StepFailed

    days = (ctx.last_day - ctx.first_day).days + 1
    if days < days_needed():
        raise StepFailed(
            f"{days} days are too few for a training set with matured labels "
            f"(need {days_needed()}; run the demo with the default --days)"
        )
    report = ctx.dagster.run("retrain_job", {"fraud/source": "demo"})
    ctx.runs["retrain_job"] = report
    gate = report.check(CANDIDATE_NOT_WORSE)
    refused = gate is not None and not gate.passed
    if not report.success and not refused:
        raise StepFailed(f"run {report.run_id} of retrain_job failed (see `make dev`, Runs)")
    model = report.metadata("fraud_model")
    if model:
        print(
            f"    model {model['version']}: validation AP {model['average_precision']:.3f}, "
            f"ROC AUC {model['roc_auc']:.3f}; decline from {model['decline_threshold']:.3f} "
            f"(precision {model['decline_precision']:.2f}, recall {model['decline_recall']:.2f}), "
            f"review from {model['review_threshold']:.3f}"
        )
    if gate is not None:
        print(f"    promotion gate {'passed' if gate.passed else 'REFUSED'}: {gate.description}")
    store = report.metadata("online_store")
    if store:
        entities = ", ".join(f"{n:,} {kind}s" for kind, n in store["entities"].items())
        print(f"    online store {store['namespace']}: {entities} in {os.environ['REDIS_URL']}")
