"""`fraud demo`: the platform end to end on sample data, recorded in the Dagster instance under
$DAGSTER_HOME so `make dev` shows every run, materialization, check result and sensor tick.

The demo generates days of orders ending the day before yesterday and holds back yesterday, which
its last step delivers through the landing folder; it records its first day as the data's first
day (`fraud_core.calendar`), so the daily partitions are exactly the data's days. Its runs are
real runs of the code location (`dagster_runs`); the steps are in `steps.STEPS`.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from fraud_cli.args import day, positive_int

if TYPE_CHECKING:
    from dagster import DagsterInstance

    from fraud_core.storage import DataLayout

# 100 days: the training set skips the features' 37-day warm-up and needs 30 days of label
# maturity, 14 validation days, a 3-day gap and 14 days to train on
# (`model.days_for_a_full_window`); fewer days cut the warm-up short.
DEFAULT_DAYS = 100
# Fewer orders a day than the generator's default (3,333): the demo keeps its 4-minute budget on
# 2 cores, with ~15 frauds a day, ~200 to validate a model on.
DEFAULT_ORDERS_PER_DAY = 1_500
LOG_NAME = "demo.log"  # under $DAGSTER_HOME: what the code server, daemon and runs printed


def default_first_day(days: int, today: date | None = None) -> date:
    """The first of `days` demo days that end the day before yesterday (UTC): the held-back day
    is then yesterday, the newest daily partition, and every partition has its day of data."""
    today = today or datetime.now(UTC).date()
    return today - timedelta(days=days + 1)


def demo_days(args: argparse.Namespace, layout: DataLayout) -> tuple[date, int]:
    """(first day, number of days) of the demo. Generated data: `--start` (default: ending the
    day before yesterday) and `--days`. With `--no-generate` and no `--start`: the span of the
    order days in the landing files (your own data), so the partitions and the runs match them."""
    if args.start is None and args.no_generate:
        from fraud_core.landing import scan_landing

        days = sorted(
            {d for f in scan_landing(layout.landing) if f.problem is None for d in f.days}
        )
        if not days:
            raise ValueError(f"no readable landing file with orders in {layout.landing}")
        return days[0], (days[-1] - days[0]).days + 1
    return args.start or default_first_day(args.days), args.days


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--days", type=positive_int, default=DEFAULT_DAYS, help=f"days (default {DEFAULT_DAYS})"
    )
    parser.add_argument(
        "--start",
        type=day,
        default=None,
        help="first day (default: the days end the day before yesterday, UTC)",
    )
    parser.add_argument(
        "--orders-per-day",
        type=positive_int,
        default=DEFAULT_ORDERS_PER_DAY,
        help=f"orders per day on average (default {DEFAULT_ORDERS_PER_DAY:,})",
    )
    parser.add_argument("--seed", type=int, default=42, help="generator seed (default 42)")
    parser.add_argument(
        "--contract",
        type=Path,
        default=None,
        help="the data contract for every step (default $FRAUD_CONTRACT, else the built-in one); "
        "generated files take its shape",
    )
    parser.add_argument(
        "--no-generate",
        action="store_true",
        help="use the landing files already there (bring your own data); without --start the "
        "days are the span of their orders",
    )


def _instance() -> DagsterInstance:
    from dagster import DagsterInstance

    home = os.environ.get("DAGSTER_HOME")
    if not home:
        home = str(Path(".dagster").resolve())
        os.environ["DAGSTER_HOME"] = home
    Path(home).mkdir(parents=True, exist_ok=True)
    # Created here, before the code server and the daemon open it (SQLite storage created by
    # two processes at once breaks).
    return DagsterInstance.get()


def run(args: argparse.Namespace) -> int:
    import warnings

    from dagster import BetaWarning

    # Importing the code location's assets (a gate's check name, say) makes Dagster warn that
    # backfill policies are in beta, once per asset: nothing the demo's reader can act on.
    warnings.filterwarnings("ignore", category=BetaWarning)

    from fraud_assets.sensors.ticks import MIN_INTERVAL_ENV, SELECTION_EVERY_ENV, TICK_ENV
    from fraud_cli.demo.context import DemoContext, StepFailed
    from fraud_cli.demo.dagster_runs import DagsterProcesses
    from fraud_cli.demo.retrain import TICK_S
    from fraud_cli.demo.steps import STEPS
    from fraud_core.calendar import START_ENV, first_day, record_first_day
    from fraud_core.contract import CONTRACT_ENV, applied_contract
    from fraud_core.decision_log import DRAIN_AFTER_ENV
    from fraud_core.freshness import CLOCK_ENV
    from fraud_core.labels import LABEL_DRAIN_AFTER_ENV
    from fraud_core.redis_server import ensure_redis
    from fraud_core.storage import DataLayout

    started = time.perf_counter()
    layout = DataLayout.from_env()
    os.environ["FRAUD_DATA_DIR"] = str(layout.root)  # the code server and its runs use it too
    if args.contract is not None:  # the code server, its runs and the service read it too
        os.environ[CONTRACT_ENV] = str(args.contract.resolve())
    try:
        contract = applied_contract()
        start, days = demo_days(args, layout)
    except ValueError as err:  # a ContractError too
        print(f"fraud demo: {err}", file=sys.stderr)
        return 2
    if os.environ.get(START_ENV) and first_day(layout) > start:
        print(
            f"fraud demo: {START_ENV}={first_day(layout)} is after the demo's first day "
            f"{start}; unset it or pass --start",
            file=sys.stderr,
        )
        return 2
    record_first_day(layout, start)
    redis = ensure_redis()  # before the code server starts: its runs load the store there
    os.environ[TICK_ENV] = str(TICK_S)  # the code server reads it when it loads
    # The demo retrains on its last day at once, whenever it last retrained (a demo run twice).
    os.environ[MIN_INTERVAL_ENV] = "0"
    # Its 100 days are too few for a model selection's folds (train, skip 30 days of label
    # delay, assess, three times): the retrain does not try one (model_selection_job does).
    os.environ.setdefault(SELECTION_EVERY_ENV, "0")
    # Its feedback loop at once too: the decision log and the posted labels drained as soon as
    # they wait, and the monitoring judged by the data's own clock (its days are history).
    os.environ[DRAIN_AFTER_ENV] = "0"
    os.environ[LABEL_DRAIN_AFTER_ENV] = "0"
    os.environ.setdefault(CLOCK_ENV, "data")
    os.environ["REDIS_URL"] = redis.url
    instance = _instance()
    log_path = Path(os.environ["DAGSTER_HOME"]) / LOG_NAME
    log_path.write_text("")
    dagster = DagsterProcesses(instance, log_path)
    ctx = DemoContext(
        args=args,
        layout=layout,
        instance=instance,
        dagster=dagster,
        first_day=start,
        last_day=start + timedelta(days=days - 1),
        contract=contract,
    )
    print(
        f"fraud demo: {days} days {ctx.first_day}..{ctx.last_day}"
        f"{'' if args.no_generate else ' and one more later'}; "
        f"data in {layout.root}, Dagster instance in {os.environ['DAGSTER_HOME']}, "
        f"Redis {'started for the demo' if redis.started else 'at'} {redis.url}"
    )
    launched_from = time.time()
    finished = False
    try:
        dagster.start_code_server()
        for number, step in enumerate(STEPS, start=1):
            step_started = time.perf_counter()
            print(f"[{number}/{len(STEPS)}] {step.title}")
            step.run(ctx)
            print(f"    done in {time.perf_counter() - step_started:.1f} s")
        finished = True
    except StepFailed as err:
        print(f"fraud demo: {err}", file=sys.stderr)
        print(f"fraud demo: Dagster's log: {log_path}", file=sys.stderr)
        return 1
    finally:
        # Stopped early (an error, Ctrl-C): runs still in flight are marked failed.
        dagster.stop(since=None if finished else launched_from)
        instance.dispose()
    print(
        f"fraud demo finished in {time.perf_counter() - started:.1f} s. Dagster's log: "
        f"{log_path}. See it all in the UI: `make dev`, then http://127.0.0.1:3000"
    )
    return 0
