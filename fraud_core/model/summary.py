"""A model's quality as an analyst reads it in the Dagster UI: a few rounded figures and a
Markdown summary short enough to show without a click (Dagster folds longer Markdown behind a
button), with a plain word on how the decline threshold was found when the precision target was
out of reach (the fallback of `decisions`) or why it says little."""

from __future__ import annotations

import math
from collections.abc import Mapping

from fraud_core.model.decisions import FALLBACK, NEVER, ThresholdChoice, ThresholdTargets

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
    choice: ThresholdChoice | None = None,
    withheld_labels: int | None = None,
) -> str | None:
    """How the decline threshold was found when not by the target (the fallback), or why it
    says little; None when it meets the target and catches enough fraud. `withheld_labels`: the
    validation frauds without a label at the cutoff, which count as false declines here."""
    recall = metrics.get("decline_recall")
    if thresholds["decline"] >= NEVER:
        fallback = (
            f", and no set catching {targets.min_decline_recall:.0%} of fraud reaches the "
            f"fallback's {targets.fallback_min_precision:.0%}"
            if targets.min_decline_recall > 0
            else ""
        )
        return (
            f"No score reaches {targets.decline_precision:.0%} precision with at least "
            f"{targets.min_declines} declines on the validation days{fallback}, so nothing is "
            "declined automatically. Lower `decline_precision` or send more to review."
        )
    if choice is not None and choice.rule == FALLBACK:
        unlabelled = (
            f" {withheld_labels} validation frauds had no chargeback yet at the cutoff; they "
            "count as false declines here, so the true precision is higher."
            if withheld_labels
            else ""
        )
        return (
            f"Fallback: no decline set that catches {targets.min_decline_recall:.0%} of fraud "
            f"reaches the {targets.decline_precision:.0%} precision target, so declines are set "
            f"for {choice.decline_precision:.1%}, the best precision measured at that recall."
            f"{unlabelled}"
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
    choice: ThresholdChoice | None = None,
    withheld_labels: int | None = None,
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
    note = threshold_note(metrics, thresholds, targets, choice, withheld_labels)
    if note:
        lines += ["", f"{'ℹ' if choice and choice.rule == FALLBACK else '⚠'} {note}"]
    features = list(top_features)[:5]
    if features:
        lines += ["", "Top features: " + ", ".join(f"`{f}`" for f in features)]
    text = "\n".join(lines)
    while len(text) > MAX_SUMMARY_CHARS and features:  # long feature names: fewer of them
        features.pop()
        text = "\n".join([*lines[:-1], "Top features: " + ", ".join(f"`{f}`" for f in features)])
    return text[:MAX_SUMMARY_CHARS]
