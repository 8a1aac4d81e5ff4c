"""A model's quality as an analyst reads it in the Dagster UI: a few rounded figures and a
Markdown summary short enough to show without a click (Dagster folds longer Markdown behind a
button), with a plain explanation when the decline threshold is degenerate."""

from __future__ import annotations

import math
from collections.abc import Mapping

from fraud_core.model.decisions import NEVER, ThresholdTargets

MAX_SUMMARY_CHARS = 1_000
DEGENERATE_RECALL = 0.05  # declines catching less than this share of fraud are not a policy


def _pct(value: float | None) -> str:
    return "–" if value is None or math.isnan(value) else f"{value:.1%}"


def _num(value: float | None, digits: int = 3) -> str:
    return "–" if value is None or math.isnan(value) else f"{value:.{digits}f}"


def threshold_note(
    metrics: Mapping[str, float | None],
    thresholds: Mapping[str, float],
    targets: ThresholdTargets,
) -> str | None:
    """Why the decline threshold says little, or None when it is a usable policy."""
    recall = metrics.get("decline_recall")
    if thresholds["decline"] >= NEVER:
        return (
            f"No score reaches {targets.decline_precision:.0%} precision with at least "
            f"{targets.min_declines} declines on the validation days, so nothing is declined "
            "automatically. Lower `decline_precision` or send more to review."
        )
    if recall is not None and not math.isnan(recall) and recall < DEGENERATE_RECALL:
        return (
            f"Only the very top scores reach {targets.decline_precision:.0%} precision: the "
            f"decline threshold {thresholds['decline']:.4f} catches {recall:.1%} of fraud. "
            "Review catches the rest; lower `decline_precision` for more automatic declines."
        )
    return None


def summary_markdown(
    metrics: Mapping[str, float | None],
    thresholds: Mapping[str, float],
    window: Mapping[str, str],
    top_features: Mapping[str, float],
    targets: ThresholdTargets,
    k: int,
) -> str:
    """At most `MAX_SUMMARY_CHARS` of Markdown: headline figures, both thresholds with what they
    catch, the training window, the top features and, when needed, the threshold note."""
    lines = [
        f"**AP {_num(metrics.get('average_precision'))}** · ROC AUC "
        f"{_num(metrics.get('roc_auc'))} · customer precision@{k} "
        f"{_num(metrics.get(f'customer_precision_at_{k}'))}",
        "",
        "| decision | from score | precision | recall | share of orders |",
        "|---|---|---|---|---|",
    ]
    for name in ("decline", "review"):
        lines.append(
            f"| {name} | {thresholds[name]:.4f} | {_pct(metrics.get(f'{name}_precision'))} | "
            f"{_pct(metrics.get(f'{name}_recall'))} | {_pct(metrics.get(f'{name}_share'))} |"
        )
    lines += [
        "",
        f"Trained on {window.get('train_first')}..{window.get('train_last')}, validated on "
        f"{window.get('validation_first')}..{window.get('validation_last')}.",
    ]
    note = threshold_note(metrics, thresholds, targets)
    if note:
        lines += ["", f"⚠ {note}"]
    features = list(top_features)[:5]
    if features:
        lines += ["", "Top features: " + ", ".join(f"`{f}`" for f in features)]
    text = "\n".join(lines)
    while len(text) > MAX_SUMMARY_CHARS and features:  # long feature names: fewer of them
        features.pop()
        text = "\n".join([*lines[:-1], "Top features: " + ", ".join(f"`{f}`" for f in features)])
    return text[:MAX_SUMMARY_CHARS]
