"""Evaluation as a fraud team reads it: how well the scores rank fraud (average precision, ROC
AUC), what the decision thresholds do (precision and recall of declines and reviews), how many of
the day's top-k customers an analyst would find fraudulent (customer precision@k), and the plots
behind those numbers as PNG bytes (matplotlib's Agg canvas, no display, no global state).
"""

from __future__ import annotations

import io
import math
from collections.abc import Mapping
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from fraud_core.features.spec import DEFAULT_SPEC

if TYPE_CHECKING:  # xgboost (and the sklearn it pulls in) loads where a model is used
    import xgboost as xgb

DEFAULT_K = 100
PRIMARY = DEFAULT_SPEC.primary  # the column customer precision@k ranks by default


def _nan_if_one_class(labels: np.ndarray) -> bool:
    return len(labels) == 0 or labels.min() == labels.max()


def average_precision(
    labels: np.ndarray, scores: np.ndarray, weights: np.ndarray | None = None
) -> float:
    """PR-AUC as average precision; NaN when only one class is present."""
    labels = np.asarray(labels)
    if _nan_if_one_class(labels):
        return float("nan")
    from sklearn.metrics import average_precision_score  # loaded where models are judged

    return float(average_precision_score(labels, scores, sample_weight=weights))


def roc_auc(labels: np.ndarray, scores: np.ndarray, weights: np.ndarray | None = None) -> float:
    labels = np.asarray(labels)
    if _nan_if_one_class(labels):
        return float("nan")
    from sklearn.metrics import roc_auc_score

    return float(roc_auc_score(labels, scores, sample_weight=weights))


def at_threshold(labels: np.ndarray, scores: np.ndarray, threshold: float) -> dict[str, float]:
    """Precision, recall and volume share of the orders scored >= `threshold`."""
    labels = np.asarray(labels)
    flagged = np.asarray(scores) >= threshold
    n_flagged = int(flagged.sum())
    tp = int((flagged & (labels == 1)).sum())
    positives = int((labels == 1).sum())
    return {
        "precision": tp / n_flagged if n_flagged else float("nan"),
        "recall": tp / positives if positives else float("nan"),
        "share": n_flagged / len(labels) if len(labels) else float("nan"),
        "flagged": n_flagged,
    }


def customer_precision_at_k(
    frame: pd.DataFrame,
    scores: np.ndarray,
    k: int = DEFAULT_K,
    known_fraud_since: pd.Series | None = None,
    label: str = "label",
    entity: str = PRIMARY,
) -> tuple[float, pd.Series]:
    """Customer precision@k, averaged over days, and its value per day. The "customer" is the
    contract's primary entity, the column `entity` (the built-in contract's by default).

    Each UTC day: every customer gets their highest order score of the day; customers whose
    fraud was already known before the day started (`known_fraud_since`: customer -> first
    known label_date) are left out, since nobody needs a model to review them; the top k by
    score are taken and the fraudulent ones among them (a fraudulent order that day) counted;
    the count is divided by k.
    """
    if not len(frame):
        return float("nan"), pd.Series(dtype=np.float64)
    day = frame["order_date"].dt.floor("D")
    per_order = pd.DataFrame(
        {
            "day": day.to_numpy(),
            "customer": frame[entity].to_numpy(),
            "score": np.asarray(scores, dtype=np.float64),
            "fraud": frame[label].to_numpy(dtype=np.int64),
        }
    )
    if known_fraud_since is not None and len(known_fraud_since):
        since = per_order["customer"].map(known_fraud_since)
        known = since.notna() & (since < per_order["day"])
        per_order = per_order[~known.to_numpy(dtype=bool)]
    customers = per_order.groupby(["day", "customer"], sort=False).agg(
        score=("score", "max"), fraud=("fraud", "max")
    )
    customers = customers.sort_values("score", ascending=False, kind="stable")
    top = customers.groupby(level="day", sort=True).head(k)
    per_day = top.groupby(level="day")["fraud"].sum() / k
    return float(per_day.mean()), per_day


def evaluate_scores(
    frame: pd.DataFrame,
    scores: np.ndarray,
    thresholds: Mapping[str, float] | None = None,
    k: int = DEFAULT_K,
    known_fraud_since: pd.Series | None = None,
    label: str = "label",
    entity: str = PRIMARY,
) -> dict[str, float]:
    """Every headline metric of scores on labelled orders (flat, JSON- and metadata-friendly);
    `entity`: the primary entity's column, for customer precision@k."""
    labels = frame[label].to_numpy(dtype=np.int64)
    cp, _ = customer_precision_at_k(frame, scores, k, known_fraud_since, label, entity)
    metrics: dict[str, float] = {
        "orders": len(labels),
        "fraud_orders": int(labels.sum()),
        "fraud_rate": float(labels.mean()) if len(labels) else float("nan"),
        "average_precision": average_precision(labels, scores),
        "roc_auc": roc_auc(labels, scores),
        f"customer_precision_at_{k}": cp,
    }
    for name, threshold in (thresholds or {}).items():
        for key, value in at_threshold(labels, scores, threshold).items():
            metrics[f"{name}_{key}"] = value
    return metrics


def clean(metrics: Mapping[str, float]) -> dict[str, float | None]:
    """NaN as None, so the dict is valid JSON."""
    return {k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in metrics.items()}


# ---------------------------------------------------------------------------------------------
# Plots


def png_bytes(figure: Figure) -> bytes:
    FigureCanvasAgg(figure)
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=90, bbox_inches="tight")
    return buffer.getvalue()


def pr_curve_png(
    labels: np.ndarray,
    scores: np.ndarray,
    thresholds: Mapping[str, float] | None = None,
    baseline_scores: np.ndarray | None = None,
    baseline_name: str = "champion",
) -> bytes:
    """Precision against recall, with the decision thresholds marked (and a comparison curve,
    e.g. the champion's, when given)."""
    figure = Figure(figsize=(5.5, 4.2))
    ax = figure.add_subplot()
    labels = np.asarray(labels)
    if not _nan_if_one_class(labels):
        from sklearn.metrics import precision_recall_curve

        precision, recall, _ = precision_recall_curve(labels, scores)
        ax.plot(recall, precision, label=f"model (AP {average_precision(labels, scores):.3f})")
        if baseline_scores is not None:
            p, r, _ = precision_recall_curve(labels, baseline_scores)
            ap = average_precision(labels, baseline_scores)
            ax.plot(r, p, linestyle="--", label=f"{baseline_name} (AP {ap:.3f})")
        for (name, threshold), marker in zip((thresholds or {}).items(), "os^", strict=False):
            point = at_threshold(labels, scores, threshold)
            if not math.isnan(point["precision"]):
                ax.plot(
                    point["recall"],
                    point["precision"],
                    marker,
                    label=f"{name} >= {threshold:.3f}",
                )
        ax.axhline(labels.mean(), color="grey", linewidth=0.8, label="fraud rate")
    ax.set_xlabel("recall (share of fraud orders caught)")
    ax.set_ylabel("precision (share of flagged orders that are fraud)")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1.02)
    ax.set_title("Precision-recall on validation days")
    ax.legend(loc="upper right", fontsize=8)
    return png_bytes(figure)


def score_distribution_png(
    labels: np.ndarray, scores: np.ndarray, thresholds: Mapping[str, float] | None = None
) -> bytes:
    """Histogram of scores per class (log count), with the thresholds as vertical lines."""
    figure = Figure(figsize=(5.5, 4.2))
    ax = figure.add_subplot()
    labels = np.asarray(labels)
    bins = np.linspace(0.0, 1.0, 51)
    scores = np.asarray(scores)
    ax.hist(scores[labels == 0], bins=bins, alpha=0.6, label="not fraud", log=True)
    ax.hist(scores[labels == 1], bins=bins, alpha=0.6, label="fraud", log=True)
    for name, threshold in (thresholds or {}).items():
        ax.axvline(threshold, linestyle="--", color="black", linewidth=0.8)
        ax.text(threshold, ax.get_ylim()[1], f" {name}", rotation=90, va="top", fontsize=8)
    ax.set_xlabel("score")
    ax.set_ylabel("orders (log)")
    ax.set_title("Score distribution by class")
    ax.legend(fontsize=8)
    return png_bytes(figure)


def feature_importance(booster: xgb.Booster, kind: str = "total_gain") -> dict[str, float]:
    """Feature -> share of the model's total gain (sums to 1), largest first."""
    raw = booster.get_score(importance_type=kind)
    total = sum(raw.values()) or 1.0
    return dict(sorted(((k, v / total) for k, v in raw.items()), key=lambda kv: -kv[1]))


def mean_contributions(
    booster: xgb.Booster, frame: pd.DataFrame, names: list[str], rows: int = 5_000, seed: int = 0
) -> dict[str, float]:
    """Feature -> mean |SHAP contribution| (XGBoost's `pred_contribs`, in log-odds) over the
    rows (a sample of at most `rows`), largest first: how much each feature moves the scores
    of real orders, where gain says how much it helped the training splits."""
    import xgboost as xgb

    if len(frame) > rows:
        frame = frame.sample(rows, random_state=seed)
    if not len(frame):
        return {}
    matrix = xgb.DMatrix(frame[names].to_numpy(dtype=np.float32), feature_names=list(names))
    contribs = np.abs(booster.predict(matrix, pred_contribs=True)[:, : len(names)]).mean(axis=0)
    order = np.argsort(-contribs, kind="stable")
    return {names[i]: float(contribs[i]) for i in order}


def feature_importance_png(booster: xgb.Booster, top: int = 20) -> bytes:
    importance = list(feature_importance(booster).items())[:top][::-1]
    figure = Figure(figsize=(6.5, 0.28 * max(len(importance), 4) + 1.0))
    ax = figure.add_subplot()
    ax.barh([name for name, _ in importance], [value for _, value in importance])
    ax.set_xlabel("share of total gain")
    ax.set_title(f"Top {len(importance)} features")
    ax.tick_params(axis="y", labelsize=7)
    return png_bytes(figure)
