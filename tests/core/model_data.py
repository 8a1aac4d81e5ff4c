"""Small generated data for the model tests: seven weeks of orders with their features computed
by the production feature code, cached for the session (read-only: do not mutate)."""

from __future__ import annotations

import functools
from datetime import date, timedelta

import numpy as np
import pandas as pd

from fraud_core.generator import iter_daily_orders
from fraud_core.model.dataset import TrainingSetConfig
from fraud_core.model.replay import feature_days
from fraud_core.model.train import TrainParams

from ..configs import FAST_TRAIN_PARAMS, START, labelled_orders

SMALL = labelled_orders(days=49, seed=11, label_delay_days=(1, 10))
CUTOFF = START + timedelta(days=SMALL.days)  # the day after the last one
# Every label has arrived after 10 days: training and validation labels are complete.
TRAINING = TrainingSetConfig(
    window_days=35, maturity_days=10, validation_days=7, gap_days=1, negative_rate=0.5
)
FAST = TrainParams(**FAST_TRAIN_PARAMS)


@functools.cache
def small_features() -> dict[date, pd.DataFrame]:
    return dict(feature_days(iter_daily_orders(SMALL), dtype=np.float64))


def source(day: date) -> pd.DataFrame | None:
    return small_features().get(day)
