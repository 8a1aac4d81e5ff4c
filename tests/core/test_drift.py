"""PSI on known distributions, its invariants, and the drift report's round trip and plot."""

from __future__ import annotations

import json
import math
from datetime import date, timedelta

import numpy as np
import pandas as pd
from hypothesis import given, settings
from hypothesis import strategies as st

from fraud_core.drift import (
    EPSILON,
    SCORE,
    TRAILING,
    TRAINING_WINDOW,
    DriftReport,
    ReferenceBins,
    SlidingBins,
    _sorted_quantiles,
    bin_shares,
    plan_reference,
    psi,
    psi_by_column,
    psi_plot_png,
    quantile_edges,
    read_report,
    reference_days,
    stride_sample,
    window_days,
    write_report,
)
from fraud_core.features.spec import DEFAULT_SPEC
from fraud_core.storage import DataLayout

RNG = np.random.default_rng(0)
NORMAL = RNG.normal(0, 1, 20_000)


def test_the_same_distribution_does_not_drift():
    assert psi(NORMAL, NORMAL) == 0.0
    assert psi(NORMAL, RNG.normal(0, 1, 5_000)) < 0.02


def test_a_shift_drifts_in_proportion():
    small = psi(NORMAL, RNG.normal(0.1, 1, 5_000))
    large = psi(NORMAL, RNG.normal(1.0, 1, 5_000))
    assert small < 0.1 < 0.2 < large


def test_by_hand_on_ten_equal_bins():
    reference = np.arange(100, dtype=float)  # deciles: 10 rows per bin
    current = np.concatenate([np.zeros(50), np.arange(50, 100, dtype=float)])
    # current: bin 0 has 50 %, bins 1-4 none (floored at EPSILON), bins 5-9 keep 10 % each
    expected_shares = np.full(10, 0.1)
    actual = np.array([0.5, 0, 0, 0, 0, 0.1, 0.1, 0.1, 0.1, 0.1])
    assert np.allclose(bin_shares(current, quantile_edges(reference))[:-1], actual)
    a = np.maximum(actual, EPSILON)
    assert math.isclose(
        psi(reference, current), float(np.sum((a - expected_shares) * np.log(a / expected_shares)))
    )


def test_more_empty_values_is_drift_and_discrete_features_work():
    with_gaps = NORMAL.copy()
    with_gaps[: len(with_gaps) // 3] = np.nan
    assert psi(NORMAL, with_gaps) > 0.2
    flags = (RNG.random(10_000) < 0.1).astype(float)
    assert len(quantile_edges(flags)) <= 2
    assert psi(flags, (RNG.random(10_000) < 0.1).astype(float)) < 0.01
    assert psi(flags, (RNG.random(10_000) < 0.5).astype(float)) > 0.2


def test_nothing_to_compare_is_nan():
    assert math.isnan(psi(np.array([]), NORMAL))
    assert math.isnan(psi(NORMAL, np.array([])))
    frame = pd.DataFrame({"a": NORMAL[:100], "b": NORMAL[100:200]})
    assert set(psi_by_column(frame, frame[["a"]], ["a", "b", "c"])) == {"a"}


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.floats(-1e6, 1e6) | st.just(float("nan")), min_size=1, max_size=60),
    st.lists(st.floats(-1e6, 1e6) | st.just(float("nan")), min_size=1, max_size=60),
)
def test_psi_is_never_negative_and_zero_on_itself(reference, current):
    reference, current = np.array(reference), np.array(current)
    assert psi(reference, current) >= 0
    assert psi(reference, reference) == 0
    shares = bin_shares(current, quantile_edges(reference))
    assert math.isclose(shares.sum(), 1.0)


def test_report_round_trip_drifted_order_and_plot(tmp_path):
    report = DriftReport(
        day="2026-02-01",
        threshold=0.2,
        reference={"kind": "trailing", "days": ["2026-01-31"], "rows": 10},
        rows=5,
        psi={"a": 0.05, "b": 0.9, "c": float("nan"), "d": 0.3},
        score_psi=0.25,
        model_version="abc",
    )
    assert list(report.drifted) == ["b", "d", SCORE]
    assert report.max_psi == 0.9
    layout = DataLayout(tmp_path)
    write_report(layout, report)
    again = read_report(layout, "2026-02-01")
    assert again.drifted == report.drifted and math.isnan(again.psi["c"])
    assert psi_plot_png(report).startswith(b"\x89PNG")


def test_reference_windows_and_sampling():
    days = [date(2026, 1, 1) + timedelta(days=i) for i in range(40)]
    assert reference_days(days[35], days, 28) == days[7:35]
    assert reference_days(days[0], days, 28) == []
    window = {"train_first": "2026-01-05", "train_last": "2026-01-09", "cutoff": "2026-01-20"}
    assert window_days(window, days) == days[4:9]
    assert window_days({}, days) == []
    frame = pd.DataFrame({"x": range(1000)})
    sample = stride_sample(frame, 300)
    assert len(sample) <= 300 and sample["x"].iloc[0] == 0 and sample["x"].iloc[-1] > 900


def test_the_reference_skips_the_features_warm_up():
    days = [date(2026, 1, 1) + timedelta(days=i) for i in range(80)]
    warmup = DEFAULT_SPEC.warmup_days
    assert warmup == 37

    # no model: a day inside the warm-up, or with under a week of days past it, has no PSI
    for day in (days[7], days[warmup], days[warmup + 6]):
        plan = plan_reference(day, days, [])
        assert plan.kind == TRAILING and plan.days == [] and "warm-up" in plan.note
    first = plan_reference(days[warmup + 7], days, [])
    assert first.days == days[warmup : warmup + 7] and first.complete_from == days[warmup]
    # later the trailing 28 days, all past the warm-up
    assert plan_reference(days[79], days, []).days == days[51:79]

    # a model: its training days past the warm-up, and no PSI for a day inside it
    training = days[20:50]
    plan = plan_reference(days[70], days, training)
    assert plan.kind == TRAINING_WINDOW and plan.days == days[warmup:50]
    assert "17 training day(s)" in plan.note
    assert plan_reference(days[30], days, training).days == []
    # a model trained on warm-up days only: they are the reference all the same, said so
    plan = plan_reference(days[70], days, days[10:30])
    assert plan.days == days[10:30] and "every training day" in plan.note

    # the warm-up is a setting: 0 gives the reference of before
    assert plan_reference(days[35], days, [], warmup_days=0).days == days[7:35]
    assert plan_reference(days[70], days, training, warmup_days=0).days == training


def test_reference_bins_give_psi_column_by_column_exactly():
    """The bins of a reference, computed once and reused for every day, change no figure."""
    reference = pd.DataFrame(
        {"a": NORMAL[:5_000], "b": np.where(NORMAL[5_000:10_000] > 1, np.nan, NORMAL[:5_000])}
    )
    reference["flag"] = (NORMAL[10_000:15_000] > 0.5).astype(float)
    bins = ReferenceBins.of(reference, ["a", "b", "flag", "missing"])
    for shift in (0.0, 0.3):
        day = reference.sample(1_000, random_state=1) + shift
        by_column = {c: psi(reference[c].to_numpy(), day[c].to_numpy()) for c in reference}
        assert bins.psi(day) == by_column
        assert psi_by_column(reference, day, ["a", "b", "flag"]) == by_column


def test_sliding_bins_equal_the_bins_of_each_window():
    """A window moved a day at a time (and jumping, shrinking, empty) bins exactly as its rows
    concatenated do, with empty values, repeated values and infinities; the bins survive JSON
    exactly."""
    rng = np.random.default_rng(3)
    columns = ["a", "b", "flag", "inf"]
    days = [date(2025, 1, 1) + timedelta(days=i) for i in range(45)]
    frames = {}
    for i, day in enumerate(days):
        n = 0 if i == 5 else int(rng.integers(1, 300))
        frames[day] = pd.DataFrame(
            {
                "a": rng.normal(i / 30, 1, n).round(2),
                "b": np.where(rng.random(n) < 0.2, np.nan, rng.exponential(1, n)),
                "flag": (rng.random(n) < 0.1).astype(float),
                "inf": np.where(rng.random(n) < 0.05, np.inf, rng.integers(0, 3, n)),
            }
        )
    sliding = SlidingBins(columns)
    windows = [days[i : i + 14] for i in range(0, 20)]
    windows += [days[30:35], days[31:45], days[2:3], [], days[:28]]
    for window in windows:
        found = sliding.move(window, lambda d: {c: frames[d][c].to_numpy() for c in columns})
        rows = [frames[d] for d in window]
        reference = pd.concat(rows, ignore_index=True) if rows else pd.DataFrame()
        expected = ReferenceBins.of(reference, columns)
        assert sliding.rows == len(reference)
        assert list(found.edges) == list(expected.edges)
        for column in expected.edges:
            assert np.array_equal(found.edges[column], expected.edges[column])
            assert np.array_equal(found.expected[column], expected.expected[column])
        back = ReferenceBins.from_dict(json.loads(json.dumps(found.to_dict())))
        assert all(np.array_equal(back.edges[c], found.edges[c]) for c in found.edges)
        assert all(np.array_equal(back.expected[c], found.expected[c]) for c in found.edges)


def test_quantiles_read_off_sorted_values_are_numpys():
    quantiles = np.arange(1, 10) / 10
    rng = np.random.default_rng(1)
    for n in [*range(1, 40), 1_000, 50_001]:
        values = np.sort(rng.normal(0, 1, n).round(rng.integers(0, 3)))
        values[rng.random(n) < 0.1] = np.inf
        values[rng.random(n) < 0.1] = -np.inf
        values = np.sort(values)
        with np.errstate(invalid="ignore"):
            expected = np.quantile(values, quantiles)
        assert np.array_equal(_sorted_quantiles(values, quantiles), expected, equal_nan=True)
