"""Decision thresholds chosen from the fraud team's targets on validation scores.

Approve below `review`, review from `review`, decline from `decline`. The decline threshold is the
lowest score at which the declined orders are still precise enough (the largest set of declines
meeting the precision target); the next `review_share` of the order volume below it goes to manual
review.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from fraud_core.model.settings import setting


@dataclass(frozen=True)
class ThresholdTargets:
    """The fraud team's targets, declared once (`fraud_model`'s config is built from them)."""

    decline_precision: float = setting(
        0.9, "Decline from the lowest score whose declines are at least this precise."
    )
    review_share: float = setting(
        0.01, "Share of all orders sent to manual review below the decline threshold."
    )
    min_declines: int = setting(
        3, "Fewer declined validation orders than this are no evidence of precision."
    )

    def __post_init__(self) -> None:
        if not 0.0 < self.decline_precision <= 1.0:
            raise ValueError(f"decline_precision must be in (0, 1], got {self.decline_precision}")
        if not 0.0 <= self.review_share < 1.0:
            raise ValueError(f"review_share must be in [0, 1), got {self.review_share}")

    def to_dict(self) -> dict[str, float]:
        return asdict(self)


NEVER = 1.0
"""The decline threshold when no score reaches the precision target: a probability of 1."""


def choose_thresholds(
    labels: np.ndarray, scores: np.ndarray, targets: ThresholdTargets | None = None
) -> dict[str, float]:
    """{"review": r, "decline": d} with r <= d, from validation labels and scores.

    Only cuts between distinct scores are considered, so tied orders share one decision."""
    targets = targets or ThresholdTargets()
    labels = np.asarray(labels, dtype=np.int64)
    scores = np.asarray(scores, dtype=np.float64)
    n = len(scores)
    if n == 0:
        return {"review": NEVER, "decline": NEVER}
    order = np.argsort(-scores, kind="stable")
    s, y = scores[order], labels[order]
    # cut after position i (flag rows 0..i) only where the next score differs
    boundary = np.ones(n, dtype=bool)
    boundary[:-1] = s[1:] < s[:-1]
    flagged = np.arange(1, n + 1)
    precision = np.cumsum(y) / flagged
    ok = boundary & (precision >= targets.decline_precision) & (flagged >= targets.min_declines)
    if ok.any():
        last = int(np.flatnonzero(ok)[-1])
        decline = float(s[last])
        n_declined = last + 1
    else:
        decline, n_declined = NEVER, 0
    n_review = round(targets.review_share * n)
    if n_review == 0:
        return {"review": decline, "decline": decline}
    end = min(n_declined + n_review, n) - 1
    # extend to the end of a tie group so that the whole group is reviewed
    while end + 1 < n and not boundary[end]:
        end += 1
    review = min(float(s[end]), decline)
    return {"review": review, "decline": decline}
