"""The model summary an analyst reads in the UI: short enough to show without a click, the
figures rounded, and a plain word when the decline threshold catches almost nothing."""

from __future__ import annotations

import math

from fraud_core.model.artifact import ModelCard
from fraud_core.model.decisions import FALLBACK, NEVER, TARGET, ThresholdChoice, ThresholdTargets
from fraud_core.model.promotion import GateDecision, GatePolicy
from fraud_core.model.summary import (
    MAX_SUMMARY_CHARS,
    deployment_markdown,
    quality_figures,
    summary_markdown,
    threshold_note,
    window_entries,
)

WINDOW = {
    "train_first": "2026-01-01",
    "train_last": "2026-02-12",
    "validation_first": "2026-02-14",
    "validation_last": "2026-02-27",
}
METRICS = {
    "average_precision": 0.79512345,
    "roc_auc": 0.98,
    "customer_precision_at_100": 0.152,
    "decline_precision": 0.93,
    "decline_recall": 0.41,
    "decline_share": 0.004,
    "review_precision": 0.35,
    "review_recall": 0.72,
    "review_share": 0.014,
}
TARGETS = ThresholdTargets()


def test_a_usable_model_reads_in_a_few_lines():
    top = {f"customer_id__feature_with_a_rather_long_name_{i}": 1.0 for i in range(50)}
    text = summary_markdown(METRICS, {"review": 0.11, "decline": 0.8}, WINDOW, top, TARGETS, 100)
    assert len(text) <= MAX_SUMMARY_CHARS
    assert "**AP 0.795**" in text and "| decline | 0.8000 | 93.0% | 41.0% | 0.4% |" in text
    assert "2026-01-01..2026-02-12" in text and "Top features: `customer_id__" in text
    assert "⚠" not in text
    assert threshold_note(METRICS, {"review": 0.11, "decline": 0.8}, TARGETS) is None


def test_a_degenerate_decline_threshold_is_explained():
    tiny = {**METRICS, "decline_recall": 0.01, "decline_precision": 1.0}
    note = threshold_note(tiny, {"review": 0.116, "decline": 0.9998}, TARGETS)
    assert note is not None and "1.0% of fraud" in note and "decline_precision" in note
    never = threshold_note(METRICS, {"review": 0.2, "decline": NEVER}, TARGETS)
    assert never is not None and "nothing is declined" in never
    text = summary_markdown(tiny, {"review": 0.116, "decline": 0.9998}, WINDOW, {}, TARGETS, 100)
    assert "⚠" in text and len(text) <= MAX_SUMMARY_CHARS


def test_a_fallback_threshold_says_which_rule_set_it_and_why() -> None:
    fallback = ThresholdChoice(review=0.02, decline=0.85, rule=FALLBACK, decline_precision=0.8844)
    metrics = {**METRICS, "decline_precision": 0.8844, "decline_recall": 0.65}
    thresholds = fallback.thresholds
    note = threshold_note(metrics, thresholds, TARGETS, fallback, withheld_labels=49)
    assert note is not None and note.startswith("Fallback:")
    assert "90% precision target" in note and "88.4%" in note and "catches 20% of fraud" in note
    assert "49 validation frauds had no chargeback" in note
    top = {f"ip_addr__feature_with_a_rather_long_name_{i}": 1.0 for i in range(9)}
    text = summary_markdown(metrics, thresholds, WINDOW, top, TARGETS, 100, fallback, 49)
    assert len(text) <= MAX_SUMMARY_CHARS and f"ℹ {note}" in text and "⚠" not in text
    target = ThresholdChoice(review=0.02, decline=0.85, rule=TARGET, decline_precision=0.9)
    assert threshold_note(METRICS, thresholds, TARGETS, target, 49) is None


def _card(version: str, rule: str = FALLBACK) -> ModelCard:
    # gain falls with i; read back from JSON the keys come sorted (…_10 before …_2)
    top = {f"customer_id__feature_with_a_rather_long_name_{i}": 1.0 / (i + 1) for i in range(20)}
    top = dict(sorted(top.items()))
    return ModelCard(
        version=version,
        feature_names=list(top),
        thresholds={"review": 0.0219, "decline": 0.85},
        training_window={**WINDOW, "cutoff": "2026-04-02"},
        params={
            "threshold_targets": TARGETS.to_dict(),
            "threshold_choice": {
                "review": 0.0219,
                "decline": 0.85,
                "rule": rule,
                "decline_precision": 0.8844,
            },
        },
        metrics={
            "validation": METRICS,
            "validation_withheld_labels": 49,
            "top_features": top,
        },
    )


def _figures(ap: float, decline: float) -> dict[str, float]:
    return {
        **METRICS,
        "average_precision": ap,
        "decline_threshold": decline,
        "review_threshold": 0.02,
    }


def test_the_deployment_summary_puts_candidate_and_champion_side_by_side() -> None:
    new, old = "0123456789abcdef", "fedcba9876543210"
    decision = GateDecision(
        passed=True,
        candidate_version=new,
        candidate_ap=0.7851,
        champion_version=old,
        champion_ap=0.7702,
        ap_advantage_upper=0.0345,
        policy=GatePolicy().to_dict(),
        comparison={"candidate": _figures(0.7851, 0.85), "champion": _figures(0.7702, 0.9712)},
    )
    text = deployment_markdown(_card(new), "promoted", old, decision, 100)
    assert len(text) <= MAX_SUMMARY_CHARS
    assert text.startswith("**Serving `01234567`** · promoted (was `fedcba98`)")
    assert (
        "Gate **passed** for `01234567`: AP +0.0149 vs the champion (at most +0.0345 at 95% confidence), tolerance 0.005"
        in text
    )
    assert "| same validation orders | candidate `01234567` | champion `fedcba98` |" in text
    assert "| AP | 0.785 | 0.770 |" in text and "| ROC AUC | 0.980 | 0.980 |" in text
    assert "| customer precision@100 | 0.152 | 0.152 |" in text
    assert "| decline from | 0.8500 | 0.9712 |" in text
    assert "| decline precision · recall · share | 93.0% · 41.0% · 0.4% | 93.0%" in text
    assert "| review precision · recall · share |" in text
    assert "ℹ Fallback:" in text
    assert "Top features: `customer_id__feature_with_a_rather_long_name_0`, `customer_id__" in text
    assert "long_name_2`" in text and "long_name_10`" not in text  # by gain, not by name
    assert "2026-01-01..2026-02-12" in text

    refused = GateDecision(
        passed=False,
        candidate_version=new,
        candidate_ap=0.1,
        champion_version=old,
        champion_ap=0.77,
        policy=GatePolicy().to_dict(),
        comparison=decision.comparison,
    )
    kept = deployment_markdown(_card(old, rule=TARGET), "refused", old, refused, 100)
    assert kept.startswith("**Serving `fedcba98`** · kept, the candidate was refused")
    assert "Gate **refused** for `01234567`: candidate AP 0.100 below the floor 0.200" in kept
    assert "⚠" not in kept and "ℹ" not in kept and len(kept) <= MAX_SUMMARY_CHARS


def test_a_rollback_summary_shows_the_served_cards_own_figures_within_the_limit() -> None:
    text = deployment_markdown(
        _card("0123456789abcdef"), "rollback", "fedcba9876543210", None, 100, "x" * 2_000
    )
    assert len(text) <= MAX_SUMMARY_CHARS
    assert "Gate" not in text and "| own validation days | `01234567` |" in text
    assert "| decline from | 0.8500 |" in text and "| AP | 0.795 |" in text


def test_figures_for_the_ui_are_separate_and_rounded() -> None:
    figures = quality_figures(METRICS, {"review": 0.123456789, "decline": 0.8}, 100)
    assert figures["average_precision"] == 0.7951 and figures["review_threshold"] == 0.1235
    assert {f"{d}_{w}" for d in ("decline", "review") for w in ("precision", "recall", "share")} < (
        set(figures)
    )
    assert math.isnan(quality_figures({}, {"review": 0.1, "decline": 0.2}, 100)["roc_auc"])
    assert window_entries({**WINDOW, "cutoff": "2026-04-02"}) == {
        "train_days": "2026-01-01..2026-02-12",
        "validation_days": "2026-02-14..2026-02-27",
        "cutoff": "2026-04-02",
    }
