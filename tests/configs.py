"""The configuration several test modules share: the first day of generated data, the resources
of a feature run on an in-process Dask cluster, the model tests' generated orders and the
training run config that goes with them. A value one test chose for its own needs stays there."""

from __future__ import annotations

from datetime import date
from os import PathLike

from fraud_assets.jobs import DAILY_FEATURE_ASSETS, DAILY_FEATURE_CHECKS
from fraud_assets.resources import DaskResource, DataLayoutResource
from fraud_core.generator import GeneratorConfig

FEATURE_LANE = [*DAILY_FEATURE_ASSETS, *DAILY_FEATURE_CHECKS]
"""The daily lane from landing files to features, every check included (the daily job's
selection)."""

START = date(2026, 1, 1)
"""The first day of the generated orders (of the assets' `landed` fixture among others)."""


def feature_resources(data_dir: str | PathLike | None = None, **more: object) -> dict:
    """`layout` and `dask` for the feature assets, plus `more`. The data folder is `data_dir`,
    else the one $FRAUD_DATA_DIR names (as the `data_dir` fixture sets it). Dask runs one worker
    of two threads in this process: no worker processes to start on the shared cores. New
    resources each call, since the Dask resource keeps the cluster it started."""
    layout = (
        DataLayoutResource() if data_dir is None else DataLayoutResource(data_dir=str(data_dir))
    )
    dask = DaskResource(n_workers=1, threads_per_worker=2, processes=False)
    return {"layout": layout, "dask": dask, **more}


def labelled_orders(
    days: int, seed: int, label_delay_days: tuple[int, int] = (1, 8)
) -> GeneratorConfig:
    """Orders a model learns from in a few weeks: more fraud and faster chargebacks than the
    generator's defaults, so that few days hold enough known labels."""
    return GeneratorConfig(
        n_customers=800,
        n_emails=800,
        n_ips=600,
        orders_per_day=300,
        days=days,
        start=START,
        seed=seed,
        fraud_rate=0.03,
        label_delay_days=label_delay_days,
    )


# The smallest data on which the promotion gate passes twice (see test_model_assets).
MODEL_DATA = labelled_orders(days=42, seed=5)

FAST_TRAIN_PARAMS = {
    "max_depth": 4,
    "learning_rate": 0.2,
    "num_boost_round": 60,
    "early_stopping_rounds": 15,
    "max_bin": 64,
}
"""Small, quick XGBoost parameters for the tests' data (`TrainParams` field names)."""

TRAINING_OPS = {
    "training_set": {
        "config": {
            "window_days": 30,
            "maturity_days": 8,
            "validation_days": 7,
            "gap_days": 1,
            "negative_rate": 0.5,
        }
    },
    "fraud_model": {"config": dict(FAST_TRAIN_PARAMS)},
}
"""Op config of `training_set` and `fraud_model` for MODEL_DATA; `{"ops": TRAINING_OPS}` is a
run config."""

NO_WARMUP = {"feature_drift": {"config": {"warmup_days": 0}}}
"""Op config that lets `feature_drift` compute PSI on days inside the features' warm-up."""
