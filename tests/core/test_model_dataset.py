"""Training sets keep time: labels known at the cutoff only, matured orders only, an out-of-time
split with a gap, and non-fraud subsampling that the weights undo."""

from __future__ import annotations

from dataclasses import replace
from datetime import date, timedelta

import numpy as np
import pandas as pd
import pytest

from fraud_core.features.spec import DEFAULT_SPEC
from fraud_core.model.backtest import BacktestConfig, plan_folds, training_config
from fraud_core.model.dataset import (
    MANIFEST,
    TRAIN,
    VALIDATION,
    Manifest,
    TrainingSetConfig,
    build_training_set,
    day_file,
    day_start,
    latest_manifest_path,
    plan_window,
    prepare_day_file,
    prune_training_sets,
    read_latest_manifest,
    time_rule_violations,
    training_set_dir,
    warmup_note,
)
from fraud_core.storage import DataLayout, write_parquet

from .model_data import CUTOFF, START, TRAINING, small_features, source


def _final_labels() -> pd.DataFrame:
    frames = small_features().values()
    return pd.concat(frames, ignore_index=True)[["order_id", "is_fraud", "label_date"]]


def test_window_is_out_of_time_with_maturity_and_gap() -> None:
    w = plan_window(date(2026, 3, 1), TrainingSetConfig(120, 30, 14, 3), first_day=START)
    assert w.validation_last == date(2026, 1, 29)  # its day ended 30 days before the cutoff
    assert w.validation_first == date(2026, 1, 16)
    assert w.train_last == date(2026, 1, 12)  # 3 gap days: 13, 14, 15
    assert w.train_first == START  # clipped to the data
    assert w.role(date(2026, 1, 14)) is None
    assert len(w.days(VALIDATION)) == 14
    with pytest.raises(ValueError, match="no matured training day"):
        plan_window(date(2026, 1, 20), TrainingSetConfig(120, 30, 14, 3), first_day=START)


def test_training_starts_after_the_features_warm_up_or_as_late_as_the_data_allow() -> None:
    config = TrainingSetConfig(120, 30, 14, 3)
    warmup = DEFAULT_SPEC.warmup_days
    assert config.warmup_days == warmup == 37  # the 30-day risk window ends 7 days back

    # enough data: no training day before the features' windows are inside the data
    long = plan_window(START + timedelta(days=120), config, first_day=START)
    assert long.train_first == START + timedelta(days=warmup)
    assert (long.train_first - START).days >= warmup
    assert "after the features' warm-up" in warmup_note(long, START, config)

    # shorter data: the warm-up is cut short, 14 training days remain, and the note says so
    short = plan_window(START + timedelta(days=80), config, first_day=START)
    assert short.train_last == START + timedelta(days=32)
    assert short.train_first == START + timedelta(days=19)
    note = warmup_note(short, START, config)
    assert "too short" in note and "14 training day(s), 2026-01-20..2026-02-02" in note

    # fewer training days than the minimum: all of them, as before the warm-up rule
    tiny = plan_window(START + timedelta(days=60), config, first_day=START)
    assert tiny.train_first == START and len(tiny.days(TRAIN)) == 13

    # the warm-up can be switched off (a configuration, not a literal)
    off = plan_window(START + timedelta(days=120), replace(config, warmup_days=0), START)
    assert off.train_first == START
    with pytest.raises(ValueError, match="min_train_days"):
        replace(config, min_train_days=0)


@pytest.mark.parametrize("cutoff_offset", [0, -6, -13])
def test_no_training_row_carries_a_label_unknown_at_the_cutoff(cutoff_offset: int) -> None:
    # a short maturity, so that many rows' chargebacks arrive after the cutoff
    config = replace(TRAINING, maturity_days=2)
    cutoff = CUTOFF + timedelta(days=cutoff_offset)
    window = plan_window(cutoff, config, first_day=START)
    ts = build_training_set(source, window, config)
    cutoff_ts = day_start(cutoff)
    rows = pd.concat([ts.train, ts.validation], ignore_index=True)
    truth = rows[["order_id", "label"]].merge(_final_labels(), on="order_id", how="left")

    # a positive label was known by the cutoff ...
    positives = truth[truth["label"] == 1]
    assert len(positives) > 0
    assert (positives["label_date"] <= cutoff_ts).all()
    # ... and every fraud whose chargeback came later is a 0 here (there are some)
    late = (truth["is_fraud"] == 1) & (truth["label_date"] > cutoff_ts)
    assert late.sum() > 0
    assert (truth.loc[late, "label"] == 0).all()
    # no order younger than the maturity window; validation strictly after training
    assert rows["order_date"].max() < cutoff_ts - pd.Timedelta(days=config.maturity_days)
    assert ts.train["order_date"].max() < ts.validation["order_date"].min()
    # the rows' own label_date never shows a date after the cutoff
    assert not (rows["label_date"] > cutoff_ts).any()


def test_backtest_folds_train_on_labels_known_at_their_own_cutoff() -> None:
    end = CUTOFF - timedelta(days=1)
    config = BacktestConfig(end=end, train_days=25, delay_days=3, test_days=5, folds=3)
    training = training_config(config, TRAINING)
    for fold in plan_folds(config, training, first_day=START):
        assert fold.window.cutoff == fold.test_first
        ts = build_training_set(source, fold.window, training)
        positives = ts.train.merge(_final_labels(), on="order_id", suffixes=("", "_final"))
        positives = positives[positives["label"] == 1]
        assert (positives["label_date_final"] <= day_start(fold.test_first)).all()
        assert ts.validation["order_date"].max() < day_start(fold.test_first)


def test_written_training_set_passes_the_time_rule_check(tmp_path) -> None:
    window = plan_window(CUTOFF, TRAINING, first_day=START)
    files: dict[str, list[str]] = {TRAIN: [], VALIDATION: []}
    for day in window.days():
        src = tmp_path / "features" / f"{day}.parquet"
        write_parquet(small_features()[day], src)
        dst = day_file(tmp_path / "set", window.role(day), day)
        prepare_day_file(str(src), str(dst), day, window, TRAINING)
        files[window.role(day)].append(str(dst))
    manifest = Manifest(str(tmp_path / "set"), window.to_dict(), {}, [], files, {}, {})
    assert time_rule_violations(manifest) == {
        "label_after_cutoff": 0,
        "label_without_date": 0,
        "order_after_maturity": 0,
    }
    # a row with a label from after the cutoff is caught
    path = files[TRAIN][0]
    frame = pd.read_parquet(path)
    frame.loc[0, "label"] = 1
    frame.loc[0, "label_date"] = day_start(CUTOFF) + pd.Timedelta(hours=1)
    write_parquet(frame, tmp_path / "bad.parquet")
    manifest.files[TRAIN][0] = str(tmp_path / "bad.parquet")
    assert time_rule_violations(manifest)["label_after_cutoff"] == 1


def test_subsampling_keeps_every_fraud_and_weights_restore_the_volume() -> None:
    window = plan_window(CUTOFF, TRAINING, first_day=START)
    full = build_training_set(source, window, replace(TRAINING, negative_rate=1.0))
    sub = build_training_set(source, window, TRAINING)
    assert sub.train["label"].sum() == full.train["label"].sum()
    negatives = sub.train[sub.train["label"] == 0]
    assert len(negatives) < 0.6 * (full.train["label"] == 0).sum()
    assert negatives["weight"].sum() == pytest.approx((full.train["label"] == 0).sum(), rel=0.05)
    assert (sub.train.loc[sub.train["label"] == 1, "weight"] == 1).all()
    # validation is never subsampled: it measures the model on the real mix
    assert len(sub.validation) == len(full.validation)
    assert (sub.validation["weight"] == 1).all()
    # deterministic: the same rows again
    again = build_training_set(source, window, TRAINING)
    assert np.array_equal(again.train["order_id"], sub.train["order_id"])


def test_pruning_keeps_the_newest_sets_and_the_one_in_use(tmp_path) -> None:
    import json
    import os

    layout = DataLayout(tmp_path)
    folders = []
    for i in range(6):
        folder = training_set_dir(layout, date(2026, 3, 1 + i), f"run{i}")
        folder.mkdir(parents=True)
        if i != 1:  # run1 never finished
            (folder / MANIFEST).write_text("{}")
        os.utime(folder, ns=(i * 10**9, i * 10**9))
        folders.append(folder)
    latest_manifest_path(layout).write_text(json.dumps({"manifest": str(folders[0] / MANIFEST)}))
    deleted = prune_training_sets(layout, keep=3)
    assert sorted(deleted) == [folders[1], folders[2]]
    assert [f.exists() for f in folders] == [True, False, False, True, True, True]


def test_the_latest_manifest_is_what_latest_json_points_at(tmp_path) -> None:
    import json

    layout = DataLayout(tmp_path)
    with pytest.raises(FileNotFoundError, match="no training set yet"):
        read_latest_manifest(layout)
    folder = training_set_dir(layout, date(2026, 3, 1), "run0")
    folder.mkdir(parents=True)
    manifest = Manifest(str(folder), {}, {}, [], {TRAIN: [], VALIDATION: []}, {}, {}, "abc")
    (folder / MANIFEST).write_text(manifest.to_json())
    latest_manifest_path(layout).write_text(json.dumps({"manifest": str(folder / MANIFEST)}))
    assert read_latest_manifest(layout) == manifest


def test_the_label_feed_labels_rows_as_known_at_the_cutoff() -> None:
    """Training sets (the asset's and the backtest's) merge the label feed with the rows' own
    labels: a feed label known by the cutoff counts, one that arrives after it does not, and a
    retraction known by the cutoff clears the row's own label."""
    config = replace(TRAINING, negative_rate=1.0)
    window = plan_window(CUTOFF, config, first_day=START)
    plain = build_training_set(source, window, config)
    cutoff_ts = day_start(CUTOFF)
    rows = plain.train.set_index("order_id")
    honest = rows[rows["label"] == 0].index[:2]
    fraud = rows[rows["label"] == 1].index[0]
    feed = pd.DataFrame(
        {
            "order_id": [honest[0], honest[1], fraud],
            "is_fraud": [True, True, False],
            "label_date": [
                cutoff_ts - pd.Timedelta(days=1),  # known by the cutoff
                cutoff_ts + pd.Timedelta(days=1),  # arrives after it
                cutoff_ts - pd.Timedelta(hours=1),  # the provider reversed the chargeback
            ],
            "source": ["api", "chargeback", "dispute"],
            "origin": "",
        }
    )
    fed = build_training_set(source, window, config, feed=feed).train.set_index("order_id")
    assert fed.loc[honest[0], "label"] == 1
    assert fed.loc[honest[0], "label_date"] == cutoff_ts - pd.Timedelta(days=1)
    assert fed.loc[honest[1], "label"] == 0
    assert fed.loc[fraud, "label"] == 0
    others = fed.index.difference([honest[0], honest[1], fraud])
    assert (fed.loc[others, "label"] == rows.loc[others, "label"]).all()


def test_pruning_in_an_object_store_goes_by_the_objects_times(s3_root) -> None:
    """In an S3 bucket a folder is a prefix with no time of its own: a set's age is its newest
    object's, and deleting a set deletes its objects."""
    import json
    import time

    layout = DataLayout.at(s3_root)
    folders = []
    for i in range(4):
        folder = training_set_dir(layout, date(2026, 3, 1 + i), f"run{i}")
        (folder / TRAIN / "date=2026-03-01.parquet").write_bytes(b"rows")
        if i != 1:  # run1 never finished
            (folder / MANIFEST).write_text("{}")
        folders.append(folder)
        time.sleep(1.1)  # the store's times are whole seconds
    latest_manifest_path(layout).write_text(json.dumps({"manifest": str(folders[0] / MANIFEST)}))
    deleted = prune_training_sets(layout, keep=2)
    assert deleted == [folders[1]]
    assert [(f / TRAIN / "date=2026-03-01.parquet").exists() for f in folders] == [
        True,
        False,
        True,
        True,
    ]
