"""A model's quality as an analyst reads it in the Dagster UI: rounded figures as separate
entries and Markdown summaries short enough to show without a click (Dagster folds longer Markdown
behind a button): one for a trained model, one for the deployment (the candidate beside the model
that was serving, on the same validation orders, and the gate's verdict). Both say how the decline
threshold was found when the precision target was out of reach (the fallback of `decisions`), or
why it says little."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import TYPE_CHECKING

from fraud_core.model.decisions import FALLBACK, NEVER, ThresholdChoice, ThresholdTargets

if TYPE_CHECKING:
    from fraud_core.model.artifact import ModelCard
    from fraud_core.model.promotion import GateDecision

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
    note = _marked(threshold_note(metrics, thresholds, targets, choice, withheld_labels), choice)
    return _fit(lines, note, list(top_features))


def _fit(lines: list[str], note: str | None, features: list[str], top: int = 5) -> str:
    """`lines`, the note and up to `top` feature names in at most `MAX_SUMMARY_CHARS`: long
    feature names make room by being fewer, then the note goes (the card keeps it); a few
    features stay rather than the note when only one fits."""
    counts = range(min(top, len(features)), 0, -1)
    tries = [(note, n) for n in counts] + [(None, n) for n in counts] + [(note, 0), (None, 0)]
    for kept_note, n in tries:
        tail = ["", kept_note] if kept_note else []
        if n:
            tail += ["", "Top features: " + ", ".join(f"`{f}`" for f in features[:n])]
        text = "\n".join(lines + tail)
        if len(text) <= MAX_SUMMARY_CHARS:
            return text
    return "\n".join(lines)[:MAX_SUMMARY_CHARS]


# ---------------------------------------------------------------------------------------------
# Separate figures for the UI, and the deployment's summary


DECISIONS = ("decline", "review")
ACTIONS = {"refused": "kept, the candidate was refused"}
AT_THRESHOLD = ("precision", "recall", "share")


def quality_figures(
    metrics: Mapping[str, float | None], thresholds: Mapping[str, float], k: int
) -> dict[str, float]:
    """The headline figures as separate values rounded to 4 digits (NaN when unknown): AP, ROC
    AUC, customer precision@k, and each threshold with the precision, recall and share of
    orders it flags. The card keeps every digit."""
    out = {
        name: rounded(metrics.get(name))
        for name in ("average_precision", "roc_auc", f"customer_precision_at_{k}")
    }
    for decision in DECISIONS:
        out[f"{decision}_threshold"] = rounded(thresholds.get(decision))
        for what in AT_THRESHOLD:
            out[f"{decision}_{what}"] = rounded(metrics.get(f"{decision}_{what}"))
    return out


def window_entries(window: Mapping[str, str]) -> dict[str, str]:
    """The training window as three short texts: train days, validation days, cutoff."""
    return {
        "train_days": f"{window.get('train_first')}..{window.get('train_last')}",
        "validation_days": f"{window.get('validation_first')}..{window.get('validation_last')}",
        "cutoff": str(window.get("cutoff")),
    }


def rounded(value: float | None) -> float:
    """4 digits for the UI (the card keeps every digit); NaN when unknown."""
    return float("nan") if value is None else round(float(value), 4)


def _short(version: str | None) -> str:
    return f"`{version[:8]}`" if version else "none"


def _gate_line(decision: GateDecision) -> str:
    policy = decision.policy
    parts = []
    ap = decision.candidate_ap
    floor = policy.get("min_average_precision")
    if ap is None or math.isnan(ap):
        parts.append("candidate AP undefined")
    elif floor is not None and ap < floor:
        parts.append(f"candidate AP {ap:.3f} below the floor {floor:.3f}")
    champion = decision.champion_version
    if champion is None:
        parts.append("no champion yet")
    elif champion == decision.candidate_version:
        parts.append("the candidate already serves")
    elif decision.champion_ap is None or math.isnan(decision.champion_ap):
        parts.append("the champion could not be scored on these orders")
    else:
        text = f"AP {ap - decision.champion_ap:+.4f} vs the champion"
        if decision.ap_advantage_upper is not None:
            text += (
                f" (at most {decision.ap_advantage_upper:+.4f} at "
                f"{policy.get('confidence', 0.95):.0%} confidence)"
            )
        parts.append(f"{text}, tolerance {policy.get('tolerance')}")
    verdict = "passed" if decision.passed else "refused"
    return f"Gate **{verdict}** for {_short(decision.candidate_version)}: " + "; ".join(parts)


def _comparison_rows(columns: list[Mapping[str, float | None]], k: int) -> list[str]:
    rows = [
        ("AP", "average_precision", _num),
        ("ROC AUC", "roc_auc", _num),
        (f"customer precision@{k}", f"customer_precision_at_{k}", _num),
    ]
    lines = [
        f"| {title} | " + " | ".join(f(c.get(key)) for c in columns) + " |"
        for title, key, f in rows
    ]
    for decision in DECISIONS:
        lines.append(
            f"| {decision} from | "
            + " | ".join(_num(c.get(f"{decision}_threshold"), 4) for c in columns)
            + " |"
        )
        lines.append(
            f"| {decision} precision · recall · share | "
            + " | ".join(
                " · ".join(_pct(c.get(f"{decision}_{what}")) for what in AT_THRESHOLD)
                for c in columns
            )
            + " |"
        )
    return lines


def deployment_markdown(
    card: ModelCard,
    action: str,
    previous: str | None,
    decision: GateDecision | None,
    k: int,
    reason: str = "",
) -> str:
    """At most `MAX_SUMMARY_CHARS` of Markdown on what serves now: the action, the gate's
    verdict, the candidate's and the champion's figures side by side on the candidate's
    validation orders (each at its own thresholds; the served card's own figures when the gate
    did not run), the served model's window, threshold note and top features."""
    head = f"**Serving {_short(card.version)}** · {ACTIONS.get(action, action)}"
    if previous and previous != card.version:
        head += f" (was {_short(previous)})"
    if action == "rollback" and reason:
        head += f": {reason[:120]}"
    lines = [head]
    comparison = decision.comparison if decision is not None else {}
    if decision is not None:
        lines += ["", _gate_line(decision)]
    if comparison:
        names = [n for n in ("candidate", "champion") if n in comparison]
        versions = {"candidate": decision.candidate_version, "champion": decision.champion_version}
        header = "| same validation orders | " + " | ".join(
            f"{n} {_short(versions[n])}" for n in names
        )
        columns = [comparison[n] for n in names]
    else:
        validation = card.metrics.get("validation", {})
        header = f"| own validation days | {_short(card.version)}"
        columns = [{**validation, **{f"{n}_threshold": v for n, v in card.thresholds.items()}}]
    lines += [
        "",
        header + " |",
        "|---|" + "---|" * len(columns),
        *_comparison_rows(columns, k),
    ]
    window = card.training_window
    lines += [
        "",
        f"Serving model trained on {window.get('train_first')}..{window.get('train_last')}, "
        f"validated on {window.get('validation_first')}..{window.get('validation_last')}.",
    ]
    top = card.metrics.get("top_features", {})  # the card's JSON sorts keys: order by gain
    return _fit(lines, _card_note(card), sorted(top, key=lambda name: -top[name]))


def _card_note(card: ModelCard) -> str | None:
    """The served model's threshold note, from its card (older cards hold no rule)."""
    params = card.params
    try:
        targets = ThresholdTargets(**params.get("threshold_targets", {}))
    except (TypeError, ValueError):
        targets = ThresholdTargets()
    try:
        choice = ThresholdChoice(**params["threshold_choice"])
    except (TypeError, KeyError):
        choice = None
    note = threshold_note(
        card.metrics.get("validation", {}),
        card.thresholds,
        targets,
        choice,
        card.metrics.get("validation_withheld_labels"),
    )
    # its first sentence: the rule or the problem; the rest is in fraud_model's summary
    return _marked(note.split(". ")[0].rstrip(".") + "." if note else None, choice)


def _marked(note: str | None, choice: ThresholdChoice | None) -> str | None:
    """The note with its sign: the fallback is a rule that worked, the others need a look."""
    if note is None:
        return None
    return f"{'ℹ' if choice is not None and choice.rule == FALLBACK else '⚠'} {note}"
