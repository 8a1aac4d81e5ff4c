"""Decision thresholds chosen from the fraud team's targets on validation scores.

Approve below `review`, review from `review`, decline from `decline`. The decline threshold is the
lowest score at which the declined orders are still precise enough (the largest set of declines
meeting the precision target); the next `review_share` of the order volume below it goes to manual
review.

When the declines that meet the precision target catch less than `min_decline_recall` of the
validation fraud (or none meets it), the target is out of reach for this model on these days, and
a threshold that declines a handful of orders is no policy. Precision is measured on the labels
known at the cutoff, and the newest chargebacks have not arrived yet: a fraud whose chargeback
comes later counts as a false decline, so measured precision stays below the true one (on the
demo's data about one validation fraud in nine has no label yet, and no set of declines measures
above ~88 % although nearly all of them are fraud). The fallback then lowers the target to the
best precision measured among the decline sets catching at least `min_decline_recall` of the fraud
and declines the largest set that precise, provided that is at least `fallback_min_precision`;
otherwise the strict result stands. The choice says which rule applied (`ThresholdChoice.rule`).
Set `min_decline_recall` to 0 for the strict rule alone.
"""

from __future__ import annotations

import hashlib
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
    min_decline_recall: float = setting(
        0.2,
        "Declines meeting decline_precision must catch at least this share of the validation "
        "fraud; otherwise the target falls to the best precision measured at this recall "
        "(0: never).",
    )
    fallback_min_precision: float = setting(
        0.7, "The fallback never declines at a measured precision below this."
    )

    def __post_init__(self) -> None:
        if not 0.0 < self.decline_precision <= 1.0:
            raise ValueError(f"decline_precision must be in (0, 1], got {self.decline_precision}")
        if not 0.0 <= self.review_share < 1.0:
            raise ValueError(f"review_share must be in [0, 1), got {self.review_share}")
        if not 0.0 <= self.min_decline_recall <= 1.0:
            raise ValueError(f"min_decline_recall must be in [0, 1], got {self.min_decline_recall}")
        if not 0.0 < self.fallback_min_precision <= 1.0:
            raise ValueError(
                f"fallback_min_precision must be in (0, 1], got {self.fallback_min_precision}"
            )

    def to_dict(self) -> dict[str, float]:
        return asdict(self)


NEVER = 1.0
"""The decline threshold when no score reaches the precision target: a probability of 1."""


TARGET = "target"  # the declines meet decline_precision and catch enough fraud
FALLBACK = "fallback"  # they did not; the best precision measured at min_decline_recall
UNMET = "unmet"  # neither: the strict rule's result (a tiny set of declines, or none)


@dataclass(frozen=True)
class ThresholdChoice:
    """The thresholds and how the decline threshold was found."""

    review: float
    decline: float
    rule: str  # TARGET, FALLBACK or UNMET
    decline_precision: float  # the precision the declines were chosen for (the target or less)

    @property
    def thresholds(self) -> dict[str, float]:
        return {"review": self.review, "decline": self.decline}

    def to_dict(self) -> dict[str, float | str]:
        return asdict(self)


def pick_thresholds(
    labels: np.ndarray, scores: np.ndarray, targets: ThresholdTargets | None = None
) -> ThresholdChoice:
    """The thresholds (review <= decline) from validation labels and scores, and the rule that
    set the decline threshold (see the module docstring).

    Only cuts between distinct scores are considered, so tied orders share one decision."""
    targets = targets or ThresholdTargets()
    labels = np.asarray(labels, dtype=np.int64)
    scores = np.asarray(scores, dtype=np.float64)
    n = len(scores)
    if n == 0:
        return ThresholdChoice(NEVER, NEVER, UNMET, targets.decline_precision)
    order = np.argsort(-scores, kind="stable")
    s, y = scores[order], labels[order]
    # cut after position i (flag rows 0..i) only where the next score differs
    boundary = np.ones(n, dtype=bool)
    boundary[:-1] = s[1:] < s[:-1]
    flagged = np.arange(1, n + 1)
    caught = np.cumsum(y)
    precision = caught / flagged
    recall = caught / max(int(caught[-1]), 1)
    cuts = boundary & (flagged >= targets.min_declines)

    rule, wanted = UNMET, targets.decline_precision
    ok = cuts & (precision >= wanted)
    if ok.any() and recall[np.flatnonzero(ok)[-1]] >= targets.min_decline_recall:
        rule = TARGET
    elif targets.min_decline_recall > 0:  # 0: the strict rule alone, never a fallback
        enough = cuts & (recall >= targets.min_decline_recall) & (caught > 0)
        best = float(precision[enough].max()) if enough.any() else 0.0
        if best >= targets.fallback_min_precision:
            rule, wanted = FALLBACK, best
            ok = enough & (precision >= best)
    if ok.any():
        last = int(np.flatnonzero(ok)[-1])
        decline = float(s[last])
        n_declined = last + 1
    else:
        decline, n_declined = NEVER, 0
    n_review = round(targets.review_share * n)
    if n_review == 0:
        return ThresholdChoice(decline, decline, rule, wanted)
    end = min(n_declined + n_review, n) - 1
    # extend to the end of a tie group so that the whole group is reviewed
    while end + 1 < n and not boundary[end]:
        end += 1
    review = min(float(s[end]), decline)
    return ThresholdChoice(review, decline, rule, wanted)


def choose_thresholds(
    labels: np.ndarray, scores: np.ndarray, targets: ThresholdTargets | None = None
) -> dict[str, float]:
    """{"review": r, "decline": d} with r <= d: `pick_thresholds` without the rule."""
    return pick_thresholds(labels, scores, targets).thresholds


HOLDOUT = "holdout"
"""The decision-log value of a would-be decline that was approved and watched (`held_out`)."""
HOLDOUT_ENV = "FRAUD_DECLINE_HOLDOUT_SHARE"
MAX_HOLDOUT_SHARE = 0.5


def check_holdout_share(share: float) -> float:
    if not 0.0 <= share <= MAX_HOLDOUT_SHARE:
        raise ValueError(f"{HOLDOUT_ENV} must be in [0, {MAX_HOLDOUT_SHARE}], got {share}")
    return share


def held_out(order_id: str, share: float) -> bool:
    """Whether a would-be decline of `order_id` is approved and watched instead: the realized
    precision at decline can only be measured on declines that went through (a declined order
    never gets a chargeback). Decided by the order id (a fixed uniform draw from its SHA-256), so
    a retried order gets the same answer and the share holds over any traffic."""
    if share <= 0.0:
        return False
    draw = int.from_bytes(hashlib.sha256(order_id.encode()).digest()[:8], "big") / 2.0**64
    return draw < share
