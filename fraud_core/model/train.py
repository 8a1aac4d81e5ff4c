"""Training with `xgboost.dask`: a booster from a training set on whatever Dask cluster the
caller's client points at (a LocalCluster on a laptop, a scheduler address in production), with
early stopping on the out-of-time validation days.

The client is passed in (`distributed.Client`); this module never starts a cluster, so the Dagster
resource, the backtest and the benchmark decide where the work runs.
"""

from __future__ import annotations

import itertools
import time
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

import dask.dataframe as dd
import numpy as np
import pandas as pd

from fraud_core.model.calibration import Calibration
from fraud_core.model.dataset import LABEL, WEIGHT
from fraud_core.model.settings import setting

if TYPE_CHECKING:  # xgboost (and the sklearn it pulls in) loads where a model is trained
    import xgboost as xgb

VALIDATION_NAME = "validation"


@dataclass(frozen=True)
class TrainParams:
    """Hyperparameters, declared once: `fraud_model`'s config is built from these fields, their
    defaults and descriptions. `eval_metric` drives early stopping (PR-AUC: fraud is rare)."""

    max_depth: int = setting(6, "Tree depth.")
    learning_rate: float = setting(0.1, "Shrinkage per round.")
    num_boost_round: int = setting(400, "Most boosting rounds.")
    early_stopping_rounds: int = setting(
        40, "Stop when the validation metric has not improved for this many rounds."
    )
    min_child_weight: float = setting(1.0, "Least summed row weight (hessian) in a leaf.")
    subsample: float = setting(0.8, "Share of training rows sampled for each tree.")
    colsample_bytree: float = setting(0.8, "Share of features sampled for each tree.")
    reg_lambda: float = setting(1.0, "L2 regularisation of leaf weights.")
    scale_pos_weight: float = setting(
        1.0, "Weight of fraud rows against the rest (class weighting; 1: none)."
    )
    max_bin: int = setting(256, "Histogram bins per feature.")
    eval_metric: str = setting("aucpr", "Validation metric for early stopping (XGBoost's name).")
    seed: int = setting(0, "Random seed of row and feature sampling.")

    def xgb_params(self) -> dict[str, Any]:
        return {
            "objective": "binary:logistic",
            "tree_method": "hist",
            "eval_metric": self.eval_metric,
            "max_depth": self.max_depth,
            "learning_rate": self.learning_rate,
            "min_child_weight": self.min_child_weight,
            "subsample": self.subsample,
            "colsample_bytree": self.colsample_bytree,
            "reg_lambda": self.reg_lambda,
            "scale_pos_weight": self.scale_pos_weight,
            "max_bin": self.max_bin,
            "seed": self.seed,
        }

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class TrainResult:
    booster: xgb.Booster  # cut at the best iteration: serving uses every tree it holds
    best_iteration: int
    rounds: int  # boosting rounds actually run
    history: dict[str, list[float]] = field(default_factory=dict)  # validation metric per round
    train_seconds: float = 0.0
    n_train: int = 0
    n_validation: int = 0

    @property
    def best_score(self) -> float:
        values = self.history.get(next(iter(self.history), ""), [])
        return float(values[self.best_iteration]) if values else float("nan")


Frame = pd.DataFrame | dd.DataFrame


def _as_dask(client: Any, frame: Frame, columns: list[str], npartitions: int) -> dd.DataFrame:
    """A Dask frame of `columns`. Pandas rows are scattered to the workers in pieces rather
    than embedded in the task graph (which a remote scheduler would have to ship around)."""
    if isinstance(frame, dd.DataFrame):
        # Materialized once on the workers and rebuilt from those pieces, so features, label
        # and weight share one partitioning: dask-expr would otherwise fuse parquet partitions
        # differently for each column projection.
        projected = frame[columns]
        futures = client.futures_of(client.persist(projected))
        meta = pd.DataFrame({c: pd.Series(dtype=t) for c, t in projected.dtypes.items()})
        return dd.from_delayed(futures, meta=meta, verify_meta=False)
    frame = frame[columns]
    n = max(1, min(npartitions, len(frame) // 20_000 + 1))
    bounds = np.linspace(0, len(frame), n + 1).astype(int)
    pieces = [frame.iloc[a:b] for a, b in itertools.pairwise(bounds)]
    futures = client.scatter(pieces)
    return dd.from_delayed(futures, meta=frame.iloc[:0], verify_meta=False)


def blank(frame: Any, switched_off: tuple[str, ...]) -> Any:
    """`frame` (pandas or Dask) with the `switched_off` columns empty (NaN, float32)."""
    if not switched_off:
        return frame
    if isinstance(frame, pd.DataFrame):
        return frame.assign(**{name: np.float32(np.nan) for name in switched_off})
    return frame.map_partitions(blank, switched_off)


def _n_threads(client: Any) -> int:
    try:
        return max(1, sum(client.nthreads().values()))
    except Exception:  # a client without workers yet; the partition count is only a hint
        return 1


def train_model(
    client: Any,
    train: Frame,
    validation: Frame,
    feature_names: list[str],
    params: TrainParams | None = None,
    switched_off: tuple[str, ...] = (),
) -> TrainResult:
    """Train on `train` (columns: features, `label`, `weight`) with early stopping on
    `validation` (same columns). `client` is a `distributed.Client`; pandas frames are split into
    Dask partitions, Dask frames (e.g. `dd.read_parquet` of the training-set files) are used as
    they are, so rows never pass through this process. `switched_off` features (the contract's)
    are blanked: a column that is always empty is never split on, so the model ignores them
    while it keeps the spec's columns (the service still sends every feature).
    """
    import xgboost.dask as dxgb

    params = params or TrainParams()
    parts = _n_threads(client)
    columns = [*feature_names, LABEL, WEIGHT]
    train_dd = _as_dask(client, blank(train, switched_off), columns, parts)
    valid_dd = _as_dask(client, blank(validation, switched_off), columns, parts)
    started = time.perf_counter()
    dtrain = dxgb.DaskQuantileDMatrix(
        client,
        train_dd[feature_names],
        train_dd[LABEL],
        weight=train_dd[WEIGHT],
        max_bin=params.max_bin,
    )
    dvalid = dxgb.DaskQuantileDMatrix(
        client,
        valid_dd[feature_names],
        valid_dd[LABEL],
        weight=valid_dd[WEIGHT],
        max_bin=params.max_bin,
        ref=dtrain,
    )
    output = dxgb.train(
        client,
        params.xgb_params(),
        dtrain,
        num_boost_round=params.num_boost_round,
        evals=[(dvalid, VALIDATION_NAME)],
        early_stopping_rounds=params.early_stopping_rounds,
        verbose_eval=False,
    )
    seconds = time.perf_counter() - started
    booster: xgb.Booster = output["booster"]
    history = {
        metric: [float(v) for v in values]
        for metric, values in output["history"].get(VALIDATION_NAME, {}).items()
    }
    rounds = booster.num_boosted_rounds()
    best = int(getattr(booster, "best_iteration", rounds - 1))
    best_booster = booster[: best + 1]
    best_booster.feature_names = list(feature_names)
    return TrainResult(
        booster=best_booster,
        best_iteration=best,
        rounds=rounds,
        history=history,
        train_seconds=seconds,
        n_train=_rows(train, train_dd),
        n_validation=_rows(validation, valid_dd),
    )


def _rows(frame: Frame, frame_dd: dd.DataFrame) -> int:
    if isinstance(frame, pd.DataFrame):
        return len(frame)
    return int(frame_dd.map_partitions(len).sum().compute())


def margins(booster: xgb.Booster, frame: pd.DataFrame, feature_names: list[str]) -> np.ndarray:
    """The raw log-odds per row (float32, as XGBoost adds up the trees; NaN = missing)."""
    if not len(frame):
        return np.empty(0, dtype=np.float32)
    matrix = frame[feature_names].to_numpy(dtype=np.float32)
    return np.asarray(booster.inplace_predict(matrix, predict_type="margin"), dtype=np.float32)


def predict(
    booster: xgb.Booster,
    frame: pd.DataFrame,
    feature_names: list[str],
    calibration: Calibration | None = None,
) -> np.ndarray:
    """Fraud probability per row (numpy in, as the service does): `calibration` (a card's
    `calibrator()`) of the margins, the model's own probability when None."""
    return (calibration or Calibration()).apply(margins(booster, frame, feature_names))
