"""`fraud backtest`: how the model would have done on past days, next to a rules baseline.

Self-contained: it validates the landing files of every day it needs (from the first landing day
on, so features have their history) and computes the features in memory with the production
feature code, then runs the prequential backtest with the production training code on a Dask
cluster (a LocalCluster, or $DASK_SCHEDULER_ADDRESS). Nothing is written to the data folder. The
last line is `RESULT ap=... auc=... cp100=...` (means over the folds).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import time
from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path
from typing import Any

from fraud_cli.args import data_layout, day, non_negative_int, positive_int
from fraud_core.model.backtest import BacktestConfig
from fraud_core.model.selection import SEARCH_SPACE, SelectionConfig, search_space

_D = BacktestConfig(end=date(2026, 1, 1))
_S = SelectionConfig(end=date(2026, 1, 1))


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--data-dir",
        type=str,
        default=None,
        help="data folder whose landing/ holds the order files (default $FRAUD_DATA_DIR, ./data)",
    )
    parser.add_argument(
        "--end", type=day, default=None, help="last assessed day (default: last landing day)"
    )
    parser.add_argument(
        "--train-days",
        type=positive_int,
        default=_D.train_days,
        help=f"matured days per training set (default {_D.train_days})",
    )
    parser.add_argument(
        "--delay-days",
        type=non_negative_int,
        default=_D.delay_days,
        help=f"label delay skipped between training and assessment (default {_D.delay_days})",
    )
    parser.add_argument(
        "--test-days",
        type=positive_int,
        default=_D.test_days,
        help=f"days assessed per fold (default {_D.test_days})",
    )
    parser.add_argument(
        "--folds", type=positive_int, default=_D.folds, help=f"folds (default {_D.folds})"
    )
    parser.add_argument(
        "--compare",
        choices=("none", "nested"),
        default="none",
        help="nested: also train, in every fold, the setting a model selection picks on the "
        "days before the fold's cutoff (labels known then), and report default vs selected",
    )
    parser.add_argument(
        "--selection-folds",
        type=positive_int,
        default=_S.folds,
        help=f"folds of each nested selection (default {_S.folds}; test and train days as above)",
    )
    parser.add_argument(
        "--selection-budget",
        type=float,
        default=_S.budget_seconds,
        help=f"wall seconds of each nested selection (default {_S.budget_seconds:g})",
    )
    parser.add_argument(
        "--settings",
        default=",".join(s.name for s in SEARCH_SPACE),
        help="the nested selection's settings, comma-separated (default: all of them)",
    )
    parser.add_argument(
        "--contract",
        type=Path,
        default=None,
        help="the data contract of the landing files (default $FRAUD_CONTRACT, else the "
        "built-in one)",
    )
    parser.add_argument(
        "--workers-threads",
        type=positive_int,
        default=None,
        help="threads of the local Dask worker (default: all cores)",
    )


@contextlib.contextmanager
def dask_client(threads: int | None = None) -> Iterator[Any]:
    """A client on $DASK_SCHEDULER_ADDRESS, else on an in-process LocalCluster (one worker:
    xgboost trains fastest with all threads in one worker on one machine)."""
    from distributed import Client, LocalCluster

    from fraud_assets.resources import LOOPBACK_DASHBOARD

    address = os.environ.get("DASK_SCHEDULER_ADDRESS")
    if address:
        with Client(address) as client:
            yield client
        return
    with (
        LocalCluster(
            n_workers=1,
            threads_per_worker=threads or os.cpu_count() or 1,
            processes=False,
            dashboard_address=LOOPBACK_DASHBOARD,
        ) as cluster,
        Client(cluster) as client,
    ):
        yield client


def run(args: argparse.Namespace) -> int:
    from fraud_core.contract import CONTRACT_ENV, ContractError, applied_contract
    from fraud_core.model.backtest import run_backtest
    from fraud_core.model.dataset import TrainingSetConfig
    from fraud_core.model.replay import feature_days, landing_days, validated_days

    if args.contract is not None:  # validation reads it from the environment too
        os.environ[CONTRACT_ENV] = str(args.contract.resolve())
    try:
        spec = applied_contract().spec
    except ContractError as err:
        print(f"fraud backtest: {err}", file=sys.stderr)
        return 2
    layout = data_layout(args.data_dir)
    days = landing_days(layout.landing)
    if not days:
        print(f"fraud backtest: no landing files in {layout.landing}", file=sys.stderr)
        return 2
    end = args.end or days[-1]
    try:
        config = BacktestConfig(
            end=end,
            train_days=args.train_days,
            delay_days=args.delay_days,
            test_days=args.test_days,
            folds=args.folds,
        )
        space = search_space([n.strip() for n in args.settings.split(",") if n.strip()])
        nested = None
        if args.compare == "nested":
            nested = SelectionConfig.nested_in(config, args.selection_folds, args.selection_budget)
    except ValueError as err:
        print(f"fraud backtest: {err}", file=sys.stderr)
        return 2
    oldest_cutoff = end - timedelta(days=args.folds * args.test_days - 1)
    oldest_train = oldest_cutoff - timedelta(days=args.delay_days + args.train_days)
    if oldest_train < days[0]:
        print(
            f"fraud backtest: data starts {days[0]} but the oldest fold would train from "
            f"{oldest_train}: its training window is shorter",
            file=sys.stderr,
        )

    started = time.perf_counter()
    counts: dict[str, int] = {}
    features = dict(feature_days(validated_days(layout.landing, days[0], end, counts), spec))
    print(
        f"ingested {counts.get('orders', 0):,} orders ({counts.get('quarantined', 0):,} "
        f"quarantined) and computed their features, {days[0]}..{end}, in "
        f"{time.perf_counter() - started:.1f} s"
    )
    try:
        with dask_client(args.workers_threads) as client:
            report = run_backtest(
                client,
                features.get,
                config,
                TrainingSetConfig(warmup_days=spec.warmup_days),
                first_day=days[0],
                log=print,
                spec=spec,
                nested=nested,
                space=space,
            )
    except ValueError as err:
        print(f"fraud backtest: {err}", file=sys.stderr)
        return 2
    print()
    print(report.to_markdown())
    print(f"\nbacktest finished in {time.perf_counter() - started:.1f} s")
    print(report.result_line())
    return 0
