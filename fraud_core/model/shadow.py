"""The challenger judged on live traffic: orders the service scored with the champion and, in
shadow, with the challenger (decision log v2's `shadow_version` / `shadow_score`), on served days
whose labels have matured.

Both scores rank the same orders, so their average precisions compare like for like. Only
*watched* orders count (approved, reviewed, held out): a declined order never gets a chargeback,
so its label would favour whichever model declined it. Promotion can require the challenger to
be at least as good there as the champion (`PromotionGate.shadow_days`).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd

from fraud_core.model.evaluate import average_precision
from fraud_core.performance import WATCHED


@dataclass(frozen=True)
class ShadowVerdict:
    challenger: str
    days: int  # matured served days on which the challenger was scored
    orders: int  # watched orders with both scores on those days
    fraud: int  # known fraud among them
    ap_champion: float | None
    ap_challenger: float | None
    passed: bool
    reason: str

    def to_dict(self) -> dict:
        return asdict(self)


def shadow_verdict(
    challenger: str,
    days: list[pd.DataFrame],
    min_days: int,
    tolerance: float,
    min_fraud: int = 5,
) -> ShadowVerdict:
    """`days`: each matured served day's scored orders (columns `score`, `decision`,
    `shadow_version`, `shadow_score`, `is_fraud`). Passes when the challenger was scored on at
    least `min_days` of them, on orders with at least `min_fraud` known fraud, and its AP there
    is at least the champion's minus `tolerance`."""
    frames = []
    for frame in days:
        mine = frame[
            (frame["shadow_version"] == challenger)
            & frame["shadow_score"].notna()
            & frame["decision"].isin(WATCHED)
        ]
        if len(mine):
            frames.append(mine)
    n_days = len(frames)
    both = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
    fraud = both["is_fraud"].to_numpy(dtype=bool) if len(both) else np.zeros(0, dtype=bool)
    common = dict(challenger=challenger, days=n_days, orders=len(both), fraud=int(fraud.sum()))
    if n_days < min_days or int(fraud.sum()) < min_fraud:
        return ShadowVerdict(
            **common,
            ap_champion=None,
            ap_challenger=None,
            passed=False,
            reason=(
                f"challenger {challenger} was scored in shadow on {n_days} matured day(s) with "
                f"{int(fraud.sum())} known fraud among watched orders; promotion needs "
                f"{min_days} day(s) and {min_fraud} fraud"
            ),
        )
    champion_ap = average_precision(fraud, both["score"].to_numpy(dtype=float))
    challenger_ap = average_precision(fraud, both["shadow_score"].to_numpy(dtype=float))
    passed = not math.isnan(challenger_ap) and challenger_ap >= champion_ap - tolerance
    return ShadowVerdict(
        **common,
        ap_champion=champion_ap,
        ap_challenger=challenger_ap,
        passed=passed,
        reason=(
            f"in shadow on {n_days} matured day(s), {len(both):,} watched orders: challenger AP "
            f"{challenger_ap:.4f} {'>=' if passed else '<'} champion AP {champion_ap:.4f} "
            f"- tolerance {tolerance}"
        ),
    )
