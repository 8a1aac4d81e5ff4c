"""The demo's steps, in order (`STEPS`). A later stage (features, model, serving) adds itself by
appending a `Step`. Partitioned stages run all demo days as ONE run (a single-run backfill over
the partition range), which is how a backfill of many days runs in production too.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from fraud_cli.demo.context import DemoContext, Step, StepFailed
from fraud_cli.demo.model import run_train_model_job
from fraud_cli.demo.retrain import HELD_BACK_DIR, feed_one_more_day
from fraud_cli.demo.serving import load_online_store, score_with_the_service


def run_job_over_days(ctx: DemoContext, job_name: str) -> None:
    """One run of the code location's job over every demo day (range tags); its summary."""
    from fraud_assets.partitions import partition_range_tags

    tags = {**partition_range_tags(ctx.first_day, ctx.last_day), "fraud/source": "demo"}
    report = ctx.dagster.run(job_name, tags)
    ctx.runs[job_name] = report
    if not report.success:
        raise StepFailed(f"run {report.run_id} of {job_name} failed (see `make dev`, Runs)")


def generate_sample_orders(ctx: DemoContext) -> None:
    """The demo days into the landing folder; the day after them is held back for the last
    step, which delivers it through the landing folder."""
    from fraud_core.generator import GeneratorConfig, write_landing_files

    if ctx.args.no_generate:
        print(f"    using the landing files already in {ctx.layout.landing}")
        return
    defaults = GeneratorConfig()
    config = GeneratorConfig(
        orders_per_day=ctx.args.orders_per_day or defaults.orders_per_day,
        days=ctx.args.days + 1,
        start=ctx.first_day,
        seed=ctx.args.seed,
    )
    orders = fraud = 0
    held = ctx.layout.root / HELD_BACK_DIR
    next_day = f"orders_{ctx.last_day + timedelta(days=1)}"

    def count(path: Path, table) -> None:
        nonlocal orders, fraud
        if path.name.startswith(next_day):
            held.mkdir(parents=True, exist_ok=True)
            path.replace(held / path.name)
            return
        orders += table.num_rows
        fraud += int(table["is_fraud"].to_numpy().sum())

    paths = write_landing_files(config, ctx.layout.landing, on_file=count)
    print(
        f"    {len(paths) - 1} files in {ctx.layout.landing}: {orders:,} orders, "
        f"{fraud:,} fraud ({fraud / max(orders, 1):.2%}); {next_day} held back"
    )


def ingest_orders(ctx: DemoContext) -> None:
    run_job_over_days(ctx, "ingest_orders_job")


def compute_features(ctx: DemoContext) -> None:
    run_job_over_days(ctx, "entity_features_job")


STEPS: list[Step] = [
    Step("generate sample orders into the landing folder", generate_sample_orders),
    Step("validate and bucket the orders (raw_orders, orders_by_entity)", ingest_orders),
    Step("compute point-in-time features per order (entity_features)", compute_features),
    Step(
        "train, evaluate and deploy a model (training_set, fraud_model, gate, deployed_model)",
        run_train_model_job,
    ),
    Step("load the entity states into Redis (online_store)", load_online_store),
    Step(
        "one more day through the landing folder: the sensors ingest it, retrain, reload",
        feed_one_more_day,
    ),
    Step("score orders through the scoring service (fraud serve)", score_with_the_service),
]
