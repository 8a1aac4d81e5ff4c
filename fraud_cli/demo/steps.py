"""The demo's steps, in order (`STEPS`). A later stage adds itself by appending a `Step`. The demo
runs the jobs the sensors launch in production: `daily_features_job` over all demo days as ONE
run (a single-run backfill over the partition range), then `retrain_job`.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from fraud_cli.demo.context import DemoContext, Step, StepFailed
from fraud_cli.demo.model import train_deploy_and_load
from fraud_cli.demo.retrain import feed_one_more_day
from fraud_cli.demo.serving import score_with_the_service


def run_job_over_days(ctx: DemoContext, job_name: str) -> None:
    """One run of the code location's job over every demo day (range tags); its summary."""
    from fraud_assets.partitions import partition_range_tags

    tags = {**partition_range_tags(ctx.first_day, ctx.last_day), "fraud/source": "demo"}
    report = ctx.dagster.run(job_name, tags)
    ctx.runs[job_name] = report
    if not report.success:
        raise StepFailed(f"run {report.run_id} of {job_name} failed (see `make dev`, Runs)")


def generate_sample_orders(ctx: DemoContext) -> None:
    """The demo days into the landing folder, in the contract's shape; the day after them is held
    back for the last step, which delivers it through the landing folder."""
    from fraud_core.contract.source import SourceFormat
    from fraud_core.generator import GeneratorConfig, write_landing_files
    from fraud_core.sample_data import CARD_PRESENT, ECOMMERCE, no_sample_data, sample_generator

    if ctx.args.no_generate:
        print(f"    using the landing files already in {ctx.layout.landing}")
        return
    generator = sample_generator(ctx.contract)
    if generator == CARD_PRESENT:
        _generate_card_present(ctx)
        return
    if generator != ECOMMERCE:
        raise StepFailed(f"{no_sample_data(ctx.contract)}; bring your own with --no-generate")
    config = GeneratorConfig(
        orders_per_day=ctx.args.orders_per_day,
        days=ctx.args.days + 1,
        start=ctx.first_day,
        seed=ctx.args.seed,
    )
    orders = fraud = 0
    held = ctx.layout.held_back
    next_day = f"orders_{ctx.last_day + timedelta(days=1)}"

    def count(path: Path, table) -> None:
        nonlocal orders, fraud
        if path.name.startswith(next_day):
            held.mkdir(parents=True, exist_ok=True)
            path.replace(held / path.name)
            return
        orders += table.num_rows
        fraud += int(table["is_fraud"].to_numpy().sum())

    source = SourceFormat.of(ctx.contract)
    paths = write_landing_files(config, ctx.layout.landing, on_file=count, source=source)
    print(
        f"    {len(paths) - 1} files in {ctx.layout.landing}: {orders:,} orders, "
        f"{fraud:,} fraud ({fraud / max(orders, 1):.2%}); {next_day} held back"
    )


def _generate_card_present(ctx: DemoContext) -> None:
    """Card-present transactions (`fraud_core.card_generator`), the last day held back."""
    from fraud_core.card_generator import CardGeneratorConfig, write_card_files

    config = CardGeneratorConfig(
        txns_per_day=ctx.args.orders_per_day,
        days=ctx.args.days + 1,
        start=ctx.first_day,
        seed=ctx.args.seed,
    )
    paths, txns, fraud = write_card_files(config, ctx.layout.landing, ctx.contract)
    last = paths[-1]
    ctx.layout.held_back.mkdir(parents=True, exist_ok=True)
    last.replace(ctx.layout.held_back / last.name)
    print(
        f"    {len(paths) - 1} files of card-present transactions in {ctx.layout.landing} "
        f"({txns:,} with the held-back day, {fraud / max(txns, 1):.2%} fraud); "
        f"{last.name} held back"
    )


def compute_features(ctx: DemoContext) -> None:
    run_job_over_days(ctx, "daily_features_job")


STEPS: list[Step] = [
    Step("generate sample orders into the landing folder", generate_sample_orders),
    Step(
        "validate, bucket and compute point-in-time features of every day (daily_features_job)",
        compute_features,
    ),
    Step(
        "train, gate and deploy a model, load the online store into Redis (retrain_job)",
        train_deploy_and_load,
    ),
    Step(
        "one more day, scored as it happens, then through the landing folder: the sensors "
        "ingest it, retrain, reload, judge the served day",
        feed_one_more_day,
    ),
    Step(
        "score orders through the scoring service (fraud serve); a list entry, a policy rule, "
        "a refused policy",
        score_with_the_service,
    ),
]
