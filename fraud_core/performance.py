"""Realized performance of the served model on one served day, from what the service decided
(`scored_orders`) and the labels known so far (the label feed merged with the order rows' own
labels): the `model_performance` asset's figures (issue 16).

What the figures can and cannot show. Chargebacks come only for orders that went through: a
declined order never gets one, so its label comes only from an analyst or another posted source,
and precision at decline cannot be read from chargebacks. The figures on *watched* orders
(approved and reviewed) can: average precision of the score among them, the share of reviewed
orders that turned out fraud (precision at review), the share of their known fraud that was sent
to review (recall at review). With a holdout share (`FRAUD_DECLINE_HOLDOUT_SHARE`, default 0) a
random share of would-be declines is approved and watched: the fraud among them is the realized
precision at decline (`precision_at_decline_holdout`), the one figure chargebacks cannot give
otherwise. Fraud amounts caught (reviewed or declined, labelled fraud), missed (approved) and let
through by the holdout count known labels only. A young day has few labels yet: `maturity_days`
(days from the day's end to the labels' clock) says how far its labels had time to arrive, and a
day younger than the training set's maturity window is marked `mature: false`, so that a young
day's few chargebacks never read as a good model.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import date, datetime, timedelta

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from fraud_core.model.calibration import brier_score
from fraud_core.model.decisions import HOLDOUT
from fraud_core.model.evaluate import average_precision

APPROVE, REVIEW, DECLINE = "approve", "review", "decline"
# orders that went through, their chargebacks can arrive: approved, reviewed, and the would-be
# declines held out (FRAUD_DECLINE_HOLDOUT_SHARE), approved and watched
WATCHED = (APPROVE, REVIEW, HOLDOUT)


def _share(num: int, den: int) -> float | None:
    return num / den if den else None


@dataclass
class Performance:
    orders: int
    decisions: dict[str, int]
    decline_rate: float | None
    review_rate: float | None
    labelled_fraud: int  # orders of the day known as fraud so far
    watched: int  # approved + reviewed
    watched_fraud: int
    ap_watched: float | None  # average precision of the score on watched orders (both classes)
    precision_at_review: float | None
    recall_at_review: float | None  # of watched known fraud, the share reviewed
    declined_labelled_fraud: int  # declines confirmed by a non-chargeback source
    fraud_cents_caught: int
    fraud_cents_missed: int
    holdout: int = 0  # would-be declines approved and watched
    precision_at_decline_holdout: float | None = None  # fraud among them
    fraud_cents_held_out: int = 0
    label_sources: dict[str, int] = field(default_factory=dict)
    # Realized calibration on watched orders: the fraud the served (calibrated) scores expected
    # against the fraud known so far, and the Brier score (young days: labels still arriving)
    expected_fraud_watched: float | None = None
    brier_watched: float | None = None

    def to_dict(self) -> dict:
        return asdict(self)


def performance(
    decision: np.ndarray,
    score: np.ndarray,
    cents: np.ndarray,
    fraud: np.ndarray,
    sources: pd.Series | None = None,
) -> Performance:
    """The figures over orders with their decision, score, amount (cents) and known label."""
    decision = np.asarray(decision).astype(str)
    fraud = np.asarray(fraud).astype(bool)
    cents = np.asarray(cents, dtype=np.int64)
    n = len(decision)
    counts = {d: int((decision == d).sum()) for d in (APPROVE, REVIEW, DECLINE, HOLDOUT)}
    held = decision == HOLDOUT
    watched = np.isin(decision, WATCHED)
    reviewed = decision == REVIEW
    caught = fraud & np.isin(decision, (REVIEW, DECLINE))
    labels = fraud[watched].astype(np.int8)
    watched_scores = np.asarray(score, dtype=np.float64)[watched]
    ap = average_precision(labels, watched_scores) if watched.any() else float("nan")
    return Performance(
        orders=n,
        decisions=counts,
        decline_rate=_share(counts[DECLINE], n),
        review_rate=_share(counts[REVIEW], n),
        labelled_fraud=int(fraud.sum()),
        watched=int(watched.sum()),
        watched_fraud=int((fraud & watched).sum()),
        ap_watched=None if np.isnan(ap) else float(ap),
        precision_at_review=_share(int((fraud & reviewed).sum()), int(reviewed.sum())),
        recall_at_review=_share(int((fraud & reviewed).sum()), int((fraud & watched).sum())),
        declined_labelled_fraud=int((fraud & (decision == DECLINE)).sum()),
        fraud_cents_caught=int(cents[caught].sum()),
        fraud_cents_missed=int(cents[fraud & (decision == APPROVE)].sum()),
        holdout=counts[HOLDOUT],
        precision_at_decline_holdout=_share(int((fraud & held).sum()), int(held.sum())),
        fraud_cents_held_out=int(cents[fraud & held].sum()),
        label_sources=(
            {k: int(v) for k, v in sources[fraud].value_counts().items()}
            if sources is not None
            else {}
        ),
        expected_fraud_watched=float(watched_scores.sum()) if watched.any() else None,
        brier_watched=brier_score(labels, watched_scores) if watched.any() else None,
    )


def maturity(day: date, clock: datetime) -> float:
    """Days from the end of `day` (UTC) to `clock`: how long its labels had to arrive."""
    end = datetime(day.year, day.month, day.day, tzinfo=clock.tzinfo) + timedelta(days=1)
    return max(0.0, (clock - end).total_seconds() / 86_400)


def performance_figure(history: list[dict]) -> Figure:
    """Average precision on watched orders, precision at review and decline rate by served day
    (`model_performance`'s per-day figures); young days drawn hollow."""
    rows = sorted(history, key=lambda h: h["day"])
    days = [datetime.fromisoformat(h["day"]) for h in rows]
    mature = np.array([bool(h["mature"]) for h in rows])
    figure = Figure(figsize=(8, 3.2))
    axes = figure.subplots()
    for name, label in (
        ("ap_watched", "AP (approved + reviewed)"),
        ("precision_at_review", "precision at review"),
        ("decline_rate", "decline rate"),
    ):
        values = np.array([h["all"][name] if h["all"][name] is not None else np.nan for h in rows])
        (line,) = axes.plot(days, values, label=label, linewidth=1)
        x = np.array(days, dtype="datetime64[D]")
        axes.scatter(x[mature], values[mature], color=line.get_color(), s=10)
        axes.scatter(
            x[~mature], values[~mature], facecolors="none", edgecolors=line.get_color(), s=10
        )
    axes.set_ylim(0, 1)
    axes.set_xlabel("served day (hollow: labels not mature yet)")
    axes.legend(loc="upper left", fontsize=7)
    figure.autofmt_xdate()
    return figure
