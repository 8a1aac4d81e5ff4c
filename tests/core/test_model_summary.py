"""The model summary an analyst reads in the UI: short enough to show without a click, the
figures rounded, and a plain word when the decline threshold catches almost nothing."""

from __future__ import annotations

from fraud_core.model.decisions import FALLBACK, NEVER, TARGET, ThresholdChoice, ThresholdTargets
from fraud_core.model.summary import MAX_SUMMARY_CHARS, summary_markdown, threshold_note

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
