"""`fraud demo`: the platform end to end on sample data, recorded in the Dagster instance under
$DAGSTER_HOME so `make dev` shows every run, materialization and check result afterwards.

The demo is a list of steps (`STEPS`); a later stage (features, model, serving) adds itself by
appending a `Step`. Partitioned stages run all demo days as ONE run (a single-run backfill over
the partition range), which is how a backfill of many days runs in production too.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from fraud_cli.args import day, positive_int
from fraud_cli.demo_retrain import feed_one_more_day
from fraud_cli.serve_demo import load_online_store, score_with_the_service
from fraud_core.storage import DataLayout

if TYPE_CHECKING:  # Dagster is imported when the command runs, not when the CLI starts
    from dagster import DagsterInstance, ExecuteInProcessResult

# The terminal shows the demo's own step lines; Dagster's per-event console log (hundreds of
# DEBUG lines a run) stays in the instance, where the UI shows it for every run. Warnings and
# errors still reach the terminal.
QUIET_CONSOLE = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}

# 90 days: the model's training set needs 30 days of label maturity, 14 validation days and
# a few weeks to train on before that (a 30-day demo leaves ~20 known frauds to validate on).
DEFAULT_DAYS = 90
DEFAULT_START = date(2026, 1, 1)


@dataclass
class DemoContext:
    """What the steps share: the arguments, the data folder, the Dagster instance, the days."""

    args: argparse.Namespace
    layout: DataLayout
    instance: DagsterInstance
    first_day: date
    last_day: date
    results: dict[str, ExecuteInProcessResult] = field(default_factory=dict)


@dataclass(frozen=True)
class Step:
    title: str
    run: Callable[[DemoContext], None]


class StepFailed(RuntimeError):
    """A step could not finish; the message says what to look at."""


# ---------------------------------------------------------------------------------------------
# Helpers for steps


def run_job_over_days(ctx: DemoContext, job_name: str) -> ExecuteInProcessResult:
    """Run a job of the code location for every demo day as one run (range tags), in this
    process, recorded in the persistent instance. Prints what it materialized and checked."""
    from fraud_assets.definitions import defs
    from fraud_assets.partitions import partition_range_tags

    job = defs.resolve_job_def(job_name)
    tags = {**partition_range_tags(ctx.first_day, ctx.last_day), "fraud/source": "demo"}
    result = job.execute_in_process(
        instance=ctx.instance, tags=tags, run_config=QUIET_CONSOLE, raise_on_error=False
    )
    ctx.results[job_name] = result
    print_run_summary(result)
    if not result.success:
        raise StepFailed(f"run {result.run_id} of {job_name} failed (see `make dev`, Runs)")
    return result


def print_run_summary(result: ExecuteInProcessResult) -> None:
    from dagster import AssetCheckSeverity

    partitions: dict[str, set[str]] = defaultdict(set)
    rows: Counter[str] = Counter()
    quarantined: Counter[str] = Counter()
    for event in result.get_asset_materialization_events():
        asset = event.asset_key.to_user_string()
        metadata = event.materialization.metadata
        partitions[asset].add(event.partition or "-")
        if "dagster/row_count" in metadata:
            rows[asset] += int(metadata["dagster/row_count"].value)
        if "quarantined_count" in metadata:
            quarantined[asset] += int(metadata["quarantined_count"].value)
    print(f"    run {result.run_id} {'succeeded' if result.success else 'FAILED'}")
    for asset, keys in sorted(partitions.items()):
        span = f"{min(keys)}..{max(keys)}" if len(keys) > 1 else next(iter(keys))
        extra = f", {quarantined[asset]:,} quarantined" if asset in quarantined else ""
        print(f"    {asset:<20} {len(keys):>3} partitions ({span}): {rows[asset]:,} rows{extra}")
    verdicts: dict[str, Counter[str]] = defaultdict(Counter)
    for evaluation in result.get_asset_check_evaluations():
        name = f"{evaluation.asset_key.to_user_string()}.{evaluation.check_name}"
        if evaluation.passed:
            verdicts[name]["passed"] += 1
        elif evaluation.severity == AssetCheckSeverity.WARN:
            verdicts[name]["warned"] += 1  # reported, does not stop anything
        else:
            verdicts[name]["FAILED"] += 1
    for name, count in sorted(verdicts.items()):
        others = "".join(f", {count[k]} {k}" for k in ("warned", "FAILED") if count[k])
        print(f"    check {name:<55} {count['passed']} passed{others}")


# ---------------------------------------------------------------------------------------------
# The steps


def generate_sample_orders(ctx: DemoContext) -> None:
    """The demo days into the landing folder; the day after them is held back for the last
    step, which delivers it through the landing folder."""
    from fraud_cli.demo_retrain import HELD_BACK_DIR
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
        f"{fraud:,} fraud ({fraud / max(orders, 1):.2%}); {next_day} held back in {held}"
    )


def ingest_orders(ctx: DemoContext) -> None:
    run_job_over_days(ctx, "ingest_orders_job")


def train_and_deploy_model(ctx: DemoContext) -> None:
    """One unpartitioned run of `train_model_job`; a model refused by the gate is reported, not
    an error (the champion, if any, keeps serving)."""
    from fraud_cli.demo_model import run_train_model_job

    run_train_model_job(ctx)


def compute_features(ctx: DemoContext) -> None:
    run_job_over_days(ctx, "entity_features_job")


STEPS: list[Step] = [
    Step("generate sample orders into the landing folder", generate_sample_orders),
    Step("validate and bucket the orders (raw_orders, orders_by_entity)", ingest_orders),
    Step("compute point-in-time features per order (entity_features)", compute_features),
    Step(
        "train, evaluate and deploy a model (training_set, fraud_model, gate, deployed_model)",
        train_and_deploy_model,
    ),
    Step("load the entity states into Redis (online_store)", load_online_store),
    Step("score orders through the scoring service (fraud serve)", score_with_the_service),
    Step(
        "one more day through the landing folder: sensors retrain, deploy, reload the store",
        feed_one_more_day,
    ),
]


# ---------------------------------------------------------------------------------------------
# CLI


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--days", type=positive_int, default=DEFAULT_DAYS, help=f"days (default {DEFAULT_DAYS})"
    )
    parser.add_argument(
        "--start", type=day, default=DEFAULT_START, help=f"first day (default {DEFAULT_START})"
    )
    parser.add_argument(
        "--orders-per-day",
        type=positive_int,
        default=None,
        help="orders per day on average (default: the generator's)",
    )
    parser.add_argument("--seed", type=int, default=42, help="generator seed (default 42)")
    parser.add_argument(
        "--no-generate",
        action="store_true",
        help="use the landing files already there (bring your own data)",
    )


def _instance() -> DagsterInstance:
    from dagster import DagsterInstance

    home = os.environ.get("DAGSTER_HOME")
    if not home:
        home = str(Path(".dagster").resolve())
        os.environ["DAGSTER_HOME"] = home
    Path(home).mkdir(parents=True, exist_ok=True)
    return DagsterInstance.get()


def _silence_known_warnings() -> None:
    """Dagster marks features this project relies on as Beta or Preview (`backfill_policy`,
    `allow_nonexistent_upstream_partitions`, `partitions_def` on asset checks), once per
    definition at import: known and accepted, so the demo's terminal does not repeat them."""
    import warnings

    from dagster import BetaWarning, PreviewWarning

    warnings.filterwarnings("ignore", category=BetaWarning)
    warnings.filterwarnings("ignore", category=PreviewWarning)


def run(args: argparse.Namespace) -> int:
    started = time.perf_counter()
    _silence_known_warnings()
    layout = DataLayout.from_env()
    instance = _instance()
    ctx = DemoContext(
        args=args,
        layout=layout,
        instance=instance,
        first_day=args.start,
        last_day=args.start + timedelta(days=args.days - 1),
    )
    print(
        f"fraud demo: {args.days} days from {ctx.first_day} to {ctx.last_day}, "
        f"data in {layout.root}, Dagster instance in {os.environ['DAGSTER_HOME']}"
    )
    try:
        for number, step in enumerate(STEPS, start=1):
            step_started = time.perf_counter()
            print(f"[{number}/{len(STEPS)}] {step.title}")
            step.run(ctx)
            print(f"    done in {time.perf_counter() - step_started:.1f} s")
    except StepFailed as err:
        print(f"fraud demo: {err}", file=sys.stderr)
        return 1
    finally:
        instance.dispose()
    print(
        f"fraud demo finished in {time.perf_counter() - started:.1f} s; "
        "see it in the UI: `make dev`, then http://127.0.0.1:3000"
    )
    return 0
