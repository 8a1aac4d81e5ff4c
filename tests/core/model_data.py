"""Small generated data for the model tests: seven weeks of orders with their features computed
by the production feature code, cached for the session (read-only: do not mutate)."""

from __future__ import annotations

import functools
from datetime import date, timedelta

import numpy as np
import pandas as pd

from fraud_core.generator import GeneratorConfig, iter_daily_orders
from fraud_core.model.dataset import TrainingSetConfig
from fraud_core.model.replay import feature_days
from fraud_core.model.train import TrainParams

START = date(2026, 1, 1)
# More fraud and faster chargebacks than the defaults, so a few weeks hold enough known labels.
SMALL = GeneratorConfig(
    n_customers=800,
    n_emails=800,
    n_ips=600,
    orders_per_day=300,
    days=49,
    start=START,
    seed=11,
    fraud_rate=0.03,
    label_delay_days=(1, 10),
)
CUTOFF = START + timedelta(days=SMALL.days)  # the day after the last one
# Every label has arrived after 10 days: training and validation labels are complete.
TRAINING = TrainingSetConfig(
    window_days=35, maturity_days=10, validation_days=7, gap_days=1, negative_rate=0.5
)
FAST = TrainParams(
    max_depth=4, learning_rate=0.2, num_boost_round=60, early_stopping_rounds=15, max_bin=64
)


@functools.cache
def small_features() -> dict[date, pd.DataFrame]:
    return dict(feature_days(iter_daily_orders(SMALL), dtype=np.float64))


def source(day: date) -> pd.DataFrame | None:
    return small_features().get(day)
