"""How long `fraud_model`'s training takes on about a million rows: generated orders, their
features from the production feature code, written as training-set files the way the
`training_set` asset writes them, then read with Dask and trained with `xgboost.dask` on a
LocalCluster exactly as the asset does (`train_model`, early stopping on validation days).

Prints `RESULT train_seconds=<value> s` (reading the files, building the quantile DMatrix and
boosting; the wall time of `train_model`) and the row count.

    .venv/bin/python bench/train.py [--days 320] [--threads 2] [--processes]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import dask.dataframe as dd
from distributed import Client, LocalCluster

from fraud_assets.resources import LOOPBACK_DASHBOARD
from fraud_core.features.spec import DEFAULT_SPEC
from fraud_core.generator import GeneratorConfig, iter_daily_orders
from fraud_core.model.dataset import (
    LABEL,
    TRAIN,
    VALIDATION,
    WEIGHT,
    TrainingSetConfig,
    day_file,
    plan_window,
    prepare_day,
)
from fraud_core.model.evaluate import average_precision
from fraud_core.model.replay import feature_days
from fraud_core.model.train import TrainParams, predict, train_model
from fraud_core.storage import write_parquet


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, default=320, help="days of orders (3,333 a day)")
    parser.add_argument("--validation-days", type=int, default=14)
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    parser.add_argument(
        "--processes", action="store_true", help="worker in its own process (default: threads)"
    )
    parser.add_argument("--learning-rate", type=float, default=TrainParams.learning_rate)
    parser.add_argument("--rounds", type=int, default=TrainParams.num_boost_round)
    args = parser.parse_args()

    started = time.perf_counter()
    generator = GeneratorConfig(days=args.days)
    # Every row and every label (a cutoff after the last chargeback, no subsampling): the
    # benchmark is about the cost of training, not about label timing.
    label_horizon = generator.label_delay_days[1] + 1
    training = TrainingSetConfig(
        window_days=args.days,
        maturity_days=label_horizon,
        validation_days=args.validation_days,
        gap_days=0,
        negative_rate=1.0,
        warmup_days=0,  # the warm-up days too: the same rows as before the warm-up rule
    )
    cutoff = generator.day(args.days - 1) + timedelta(days=label_horizon + 1)
    window = plan_window(cutoff, training, generator.start)
    files: dict[str, list[str]] = {TRAIN: [], VALIDATION: []}
    with tempfile.TemporaryDirectory() as tmp:
        for day, frame in feature_days(iter_daily_orders(generator)):
            role = window.role(day)
            rows, _, _ = prepare_day(frame, day, window, training)
            path = day_file(Path(tmp), role, day)
            write_parquet(rows, path)
            files[role].append(str(path))
        print(
            f"generated orders, features and training-set files in {time.perf_counter() - started:.1f} s"
        )

        names = DEFAULT_SPEC.feature_names
        params = replace(
            TrainParams(), learning_rate=args.learning_rate, num_boost_round=args.rounds
        )
        validation = dd.read_parquet(files[VALIDATION]).compute()
        with (
            LocalCluster(
                n_workers=1,
                threads_per_worker=args.threads,
                processes=args.processes,
                dashboard_address=LOOPBACK_DASHBOARD,
            ) as cluster,
            Client(cluster) as client,
        ):
            t0 = time.perf_counter()
            train = dd.read_parquet(files[TRAIN], columns=[*names, LABEL, WEIGHT])
            result = train_model(client, train, validation, names, params)
            seconds = time.perf_counter() - t0
        ap = average_precision(
            validation[LABEL].to_numpy(), predict(result.booster, validation, names)
        )

    print(
        f"{result.n_train:,} training rows x {len(names)} features, "
        f"{len(validation):,} validation rows; 1 worker x {args.threads} threads "
        f"({'process' if args.processes else 'in-process'}), {os.cpu_count()} cores"
    )
    print(
        f"{result.rounds} rounds run, best {result.best_iteration + 1} (early stopping "
        f"{params.early_stopping_rounds}), depth {params.max_depth}, learning rate "
        f"{params.learning_rate}; quantile DMatrix + boosting {result.train_seconds:.1f} s; validation AP {ap:.3f}"
    )
    print(f"rows={result.n_train}")
    print(f"RESULT train_seconds={seconds:.1f} s")


if __name__ == "__main__":
    main()
