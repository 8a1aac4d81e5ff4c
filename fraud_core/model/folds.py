"""Time-ordered folds, shared by the backtest and model selection.

Fold 0 assesses the last `test_days` up to `end`; each further fold shifts back by `test_days`.
A fold's cutoff is the first day of its assessment window: its training set is built exactly as
the `training_set` asset builds one at that cutoff (labels known by then, orders at least
`delay_days` old, the newest matured days for early stopping, thresholds and calibration), and
its assessment days are judged with the labels known at `known_by` (None: every label known now).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import date, timedelta

import numpy as np
import pandas as pd

from fraud_core.labels import apply_feed
from fraud_core.model.dataset import (
    LABEL,
    FeatureSource,
    TrainingSetConfig,
    TrainingWindow,
    labels_known_at,
    merge_known_fraud,
    plan_window,
)
from fraud_core.model.evaluate import DEFAULT_K


@dataclass(frozen=True)
class FoldConfig:
    end: date  # last assessed day (inclusive)
    train_days: int = 90  # matured days per training set (train + gap + validation)
    delay_days: int = 30  # maturity: skipped between the training days and the cutoff
    test_days: int = 14
    folds: int = 4
    k: int = DEFAULT_K

    def __post_init__(self) -> None:
        for name in ("train_days", "test_days", "folds", "k"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.delay_days < 0:
            raise ValueError(f"delay_days must be >= 0, got {self.delay_days}")


@dataclass(frozen=True)
class Fold:
    index: int  # 0 = the most recent
    window: TrainingWindow
    test_first: date
    test_last: date

    @property
    def test_days(self) -> list[date]:
        n = (self.test_last - self.test_first).days + 1
        return [self.test_first + timedelta(days=i) for i in range(n)]

    @property
    def test(self) -> str:
        return f"{self.test_first}..{self.test_last}"


def training_config(config: FoldConfig, base: TrainingSetConfig) -> TrainingSetConfig:
    """The production training-set settings with the folds' window and delay; validation
    and gap shrink when the training window is short."""
    validation = min(base.validation_days, max(1, config.train_days // 5))
    gap = min(base.gap_days, max(0, config.train_days - validation - 1))
    return replace(
        base,
        window_days=config.train_days,
        maturity_days=config.delay_days,
        validation_days=validation,
        gap_days=gap,
    )


def plan_folds(
    config: FoldConfig, training: TrainingSetConfig, first_day: date | None = None
) -> list[Fold]:
    folds = []
    for i in range(config.folds):
        test_last = config.end - timedelta(days=i * config.test_days)
        test_first = test_last - timedelta(days=config.test_days - 1)
        window = plan_window(test_first, training, first_day)
        folds.append(Fold(i, window, test_first, test_last))
    return folds


def assessment_frame(
    source: FeatureSource,
    fold: Fold,
    feed: pd.DataFrame | None = None,
    known_by: pd.Timestamp | None = None,
) -> pd.DataFrame:
    """The fold's assessment days with `label`: the labels known at `known_by` (None: every
    label known now). ValueError when the days hold no data."""
    frames = [f for d in fold.test_days if (f := source(d)) is not None]
    if not frames:
        raise ValueError(f"fold {fold.index}: no data in {fold.test}")
    test = apply_feed(pd.concat(frames, ignore_index=True), feed, known_by)
    if known_by is None:
        test[LABEL] = test["is_fraud"].fillna(0).to_numpy(dtype=np.int8)
    else:
        test[LABEL] = labels_known_at(test, known_by).astype(np.int8)
    return test


def known_fraud_before(
    source: FeatureSource,
    window: TrainingWindow,
    fold: Fold,
    primary: str,
    feed: pd.DataFrame | None = None,
    known_by: pd.Timestamp | None = None,
) -> pd.Series:
    """Per customer (the `primary` entity), the first fraud label that had arrived by the end
    of the assessment window, or by `known_by` when earlier (customer precision@k leaves a
    customer out from the day after that)."""
    last = pd.Timestamp((fold.test_last + timedelta(days=1)).isoformat(), tz="UTC")
    if known_by is not None:
        last = min(last, known_by)
    parts = []
    day = window.train_first
    while day <= fold.test_last:
        frame = source(day)
        if frame is not None and len(frame):
            frame = apply_feed(frame, feed, last)
            label = labels_known_at(frame, last)
            rows = frame.loc[label == 1, [primary, "label_date"]]
            parts.append(rows.groupby(primary)["label_date"].min())
        day += timedelta(days=1)
    return merge_known_fraud(parts)
