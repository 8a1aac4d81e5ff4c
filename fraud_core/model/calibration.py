"""Calibration: the served score as a probability of fraud.

A boosted model's raw probability is only roughly one: class weights, subsampled negatives and
early stopping all bend it. Platt scaling fits `p = 1 / (1 + exp(-(slope * margin + intercept)))`
on the validation days' raw margins (the log-odds the trees add up), so a threshold of 0.3 reads
"at least a 30 % chance of fraud". It is strictly increasing (slope > 0), so the ranking, the
average precision, the promotion gate and the reasons (all on margins) do not change. Isotonic
regression is not offered: it maps ranges of scores onto one value, which ties orders the model
told apart.

One owner: the offline code (`fraud_core.model.train.predict`) and the service
(`fraud_core.scoring.scorer.Scorer`) both call `Calibration.apply` on float32 margins, so their
scores agree to 1e-6.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

IDENTITY = "identity"  # the model's own probability: sigmoid(margin)
PLATT = "platt"
RELIABILITY_EDGES = (0.0, 0.01, 0.02, 0.05, 0.1, 0.2, 0.3, 0.5, 0.7, 0.9, 1.0)


@dataclass(frozen=True)
class Calibration:
    """`p = sigmoid(slope * margin + intercept)`; the identity (1, 0) is the raw model."""

    method: str = IDENTITY
    slope: float = 1.0
    intercept: float = 0.0

    def __post_init__(self) -> None:
        if self.method not in (IDENTITY, PLATT):
            raise ValueError(f"calibration method must be {IDENTITY!r} or {PLATT!r}")
        if not (math.isfinite(self.slope) and self.slope > 0 and math.isfinite(self.intercept)):
            raise ValueError(
                "calibration slope must be finite and > 0 (a calibration may not reverse or "
                f"flatten the ranking), and the intercept finite: got {self.slope}, "
                f"{self.intercept}"
            )

    def apply(self, margin: np.ndarray) -> np.ndarray:
        """Probabilities (float64) from raw margins (XGBoost's `predict_type="margin"`)."""
        z = self.slope * np.asarray(margin, dtype=np.float64) + self.intercept
        with np.errstate(over="ignore"):  # exp(800) is inf: the probability is 0, as it should
            return 1.0 / (1.0 + np.exp(-z))

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any] | None) -> Calibration:
        """The calibration a card records; none (older cards) is the identity."""
        if not data:
            return cls()
        return cls(str(data["method"]), float(data["slope"]), float(data["intercept"]))


def fit_platt(margins: np.ndarray, labels: np.ndarray, iterations: int = 50) -> Calibration:
    """Platt scaling by Newton's method on the log loss, with Platt's smoothed targets
    ((n+ + 1) / (n+ + 2) and 1 / (n- + 2)), so a separable validation set does not send the
    slope to infinity. With a single class, or a fit that would not increase with the margin,
    the identity."""
    m = np.asarray(margins, dtype=np.float64)
    y = np.asarray(labels, dtype=np.int64)
    positives = int((y == 1).sum())
    negatives = len(y) - positives
    if positives == 0 or negatives == 0:
        return Calibration()
    target = np.where(y == 1, (positives + 1.0) / (positives + 2.0), 1.0 / (negatives + 2.0))

    def loss(a: float, b: float) -> float:  # log loss against the smoothed targets
        z = a * m + b
        return float(np.sum(np.logaddexp(0.0, z) - target * z))

    a, b = 1.0, 0.0
    current = loss(a, b)
    for _ in range(iterations):
        with np.errstate(over="ignore"):
            p = 1.0 / (1.0 + np.exp(-(a * m + b)))
        w = np.maximum(p * (1.0 - p), 1e-12)
        g = np.array([np.dot(p - target, m), np.sum(p - target)])
        h = np.array([[np.dot(w, m * m), np.dot(w, m)], [np.dot(w, m), np.sum(w)]])
        step = np.linalg.solve(h + np.eye(2) * 1e-9, g)
        size = 1.0  # Newton with backtracking: never a step that raises the loss
        while size > 1e-8 and loss(a - size * step[0], b - size * step[1]) > current:
            size /= 2
        if size <= 1e-8:
            break
        a, b = a - size * step[0], b - size * step[1]
        previous, current = current, loss(a, b)
        if previous - current < 1e-10 * max(1.0, abs(current)):
            break
    try:
        return Calibration(PLATT, float(a), float(b))
    except ValueError:
        return Calibration()


def brier_score(labels: np.ndarray, probabilities: np.ndarray) -> float:
    """Mean squared difference between probability and outcome (lower is better)."""
    y = np.asarray(labels, dtype=np.float64)
    if not len(y):
        return float("nan")
    return float(np.mean((np.asarray(probabilities, dtype=np.float64) - y) ** 2))


def reliability(labels: np.ndarray, probabilities: np.ndarray) -> list[dict[str, float | None]]:
    """Per probability band (`RELIABILITY_EDGES`): orders, mean predicted probability and the
    observed fraud rate (None for a band without orders); a calibrated model has the two close
    in every band with orders."""
    y = np.asarray(labels, dtype=np.float64)
    p = np.asarray(probabilities, dtype=np.float64)
    band = np.clip(np.searchsorted(RELIABILITY_EDGES, p, side="right") - 1, 0, 9)
    rows = []
    for i in range(len(RELIABILITY_EDGES) - 1):
        inside = band == i
        n = int(inside.sum())
        rows.append(
            {
                "low": RELIABILITY_EDGES[i],
                "high": RELIABILITY_EDGES[i + 1],
                "orders": n,
                "predicted": float(p[inside].mean()) if n else None,
                "observed": float(y[inside].mean()) if n else None,
            }
        )
    return rows


def reliability_png(labels: np.ndarray, raw: np.ndarray, calibrated: np.ndarray) -> bytes:
    """Observed fraud rate against mean predicted probability per band, raw and calibrated."""
    from matplotlib.figure import Figure  # loaded where models are judged, not served

    from fraud_core.model.evaluate import png_bytes

    figure = Figure(figsize=(5.5, 4.2))
    ax = figure.add_subplot()
    ax.plot([0, 1], [0, 1], color="grey", linewidth=0.8, label="perfectly calibrated")
    for name, scores, marker in (("raw", raw, "o--"), ("calibrated", calibrated, "s-")):
        rows = [r for r in reliability(labels, scores) if r["orders"]]
        brier = brier_score(labels, scores)
        ax.plot(
            [r["predicted"] for r in rows],
            [r["observed"] for r in rows],
            marker,
            label=f"{name} (Brier {brier:.4f})",
        )
    ax.set_xlabel("mean predicted probability of fraud (band)")
    ax.set_ylabel("observed fraud rate")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1.02)
    ax.set_title("Reliability on validation days")
    ax.legend(loc="upper left", fontsize=8)
    return png_bytes(figure)
