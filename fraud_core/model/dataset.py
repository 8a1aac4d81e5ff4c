"""Training sets: orders with their features over a window ending at a cutoff, labelled only with
what was known at the cutoff, split out of time into older training days and the most recent
matured validation days.

Time rules, all relative to the cutoff (00:00 UTC of the cutoff day; nothing at or after it is
known):
- a label counts only if `label_date <= cutoff`; a fraud whose chargeback comes later is a
  non-fraud row here, exactly as the fraud team saw it that day;
- an order is used only when its whole day ended at least `maturity_days` before the cutoff, so
  most of its labels have had time to arrive;
- the newest `validation_days` matured days validate, `gap_days` before them are left out (fraud
  events spanning midnight would otherwise sit on both sides), older days train;
- training starts `warmup_days` after the first day of data (the feature spec's horizon,
  `FeatureSpec.warmup_days`): before that some feature windows still reach back before the data
  and come out low, which no later order sees. When the data are too short for that, the
  warm-up is cut short so that `min_train_days` training days remain (`warmup_start`), and the
  training set says so (`warmup_note`).

Features in the `entity_features` files are point-in-time already; this module only decides
which rows, which labels and which weights.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd

from fraud_core.features.pipeline import identity_columns
from fraud_core.features.spec import DEFAULT_SPEC, FeatureSpec
from fraud_core.labels import apply_feed
from fraud_core.storage import (
    DataLayout,
    as_path,
    folder_mtime_ns,
    is_remote,
    read_parquet,
    remove_tree,
)

LABEL = "label"  # 1: fraud known at the cutoff
WEIGHT = "weight"  # compensates the subsampling of non-fraud training rows
KNOWN_LABEL_DATE = "label_date"  # label_date of the known labels only (NaT otherwise)
TRAIN = "train"
VALIDATION = "validation"

FeatureSource = Callable[[date], "pd.DataFrame | None"]
"""A day's rows as the `entity_features` files hold them (ids, is_fraud, label_date, features),
or None when the day has no file."""


def day_start(day: date) -> pd.Timestamp:
    """00:00 UTC of `day` as a timestamp comparable with `order_date` / `label_date`."""
    return pd.Timestamp(datetime(day.year, day.month, day.day, tzinfo=UTC))


@dataclass(frozen=True)
class TrainingSetConfig:
    """Which days, labels and rows make a training set (see the module docstring)."""

    window_days: int = 120  # matured days read: train + gap + validation
    maturity_days: int = 30
    validation_days: int = 14
    gap_days: int = 3
    negative_rate: float = 0.25  # share of non-fraud training rows kept; weight 1 / rate
    seed: int = 0  # which non-fraud rows are kept (a hash of order_id and this)
    warmup_days: int = DEFAULT_SPEC.warmup_days  # days after the first data day not trained on
    min_train_days: int = 14  # short data: the warm-up is cut short to keep this many

    def __post_init__(self) -> None:
        if self.maturity_days < 0 or self.gap_days < 0 or self.warmup_days < 0:
            raise ValueError("maturity_days, gap_days and warmup_days must be >= 0")
        if self.min_train_days < 1:
            raise ValueError(f"min_train_days must be >= 1, got {self.min_train_days}")
        if self.validation_days < 1:
            raise ValueError(f"validation_days must be >= 1, got {self.validation_days}")
        if self.window_days < self.validation_days + self.gap_days + 1:
            raise ValueError(
                f"window_days ({self.window_days}) must exceed validation_days + gap_days "
                f"({self.validation_days} + {self.gap_days}): no day would be left to train on"
            )
        if not 0.0 < self.negative_rate <= 1.0:
            raise ValueError(f"negative_rate must be in (0, 1], got {self.negative_rate}")


@dataclass(frozen=True)
class TrainingWindow:
    """The days of one training set; first/last days are inclusive."""

    cutoff: date
    train_first: date
    train_last: date
    validation_first: date
    validation_last: date

    @property
    def cutoff_ts(self) -> pd.Timestamp:
        return day_start(self.cutoff)

    def role(self, day: date) -> str | None:
        if self.train_first <= day <= self.train_last:
            return TRAIN
        if self.validation_first <= day <= self.validation_last:
            return VALIDATION
        return None

    def days(self, role: str | None = None) -> list[date]:
        """The days of `role` (train or validation; both when None), oldest first."""
        first, last = {
            TRAIN: (self.train_first, self.train_last),
            VALIDATION: (self.validation_first, self.validation_last),
            None: (self.train_first, self.validation_last),
        }[role]
        days = [first + timedelta(days=i) for i in range((last - first).days + 1)]
        return days if role is not None else [d for d in days if self.role(d) is not None]

    def to_dict(self) -> dict[str, str]:
        return {k: v.isoformat() for k, v in asdict(self).items()}

    @classmethod
    def from_dict(cls, data: dict[str, str]) -> TrainingWindow:
        return cls(**{k: date.fromisoformat(data[k]) for k in cls.__dataclass_fields__})


def warmup_end(first_day: date, config: TrainingSetConfig) -> date:
    """The first day after the features' warm-up when the data start on `first_day`."""
    return first_day + timedelta(days=config.warmup_days)


def warmup_start(first_day: date, train_last: date, config: TrainingSetConfig) -> date:
    """The first day training may start on when the data start on `first_day`: `warmup_days`
    later, but never so late that fewer than `min_train_days` days up to `train_last` remain
    (short data keep part of the warm-up rather than lose the training set), and never before
    `first_day`."""
    complete = warmup_end(first_day, config)
    latest = train_last - timedelta(days=config.min_train_days - 1)
    return max(first_day, min(complete, latest))


def warmup_note(window: TrainingWindow, first_day: date, config: TrainingSetConfig) -> str:
    """One line on how the training days of `window` relate to the features' warm-up."""
    complete = warmup_end(first_day, config)
    if window.train_first >= complete:
        return (
            f"training starts on {window.train_first}, after the features' warm-up "
            f"({config.warmup_days} days from the first data day {first_day})"
        )
    last_inside = min(complete - timedelta(days=1), window.train_last)
    inside = (last_inside - window.train_first).days + 1
    return (
        f"the data are too short to skip the features' warm-up ({config.warmup_days} days from "
        f"the first data day {first_day}) and keep {config.min_train_days} training days: "
        f"{inside} training day(s), {window.train_first}..{last_inside}, have features whose "
        "windows still reach back before the data"
    )


def plan_window(
    cutoff: date, config: TrainingSetConfig, first_day: date | None = None
) -> TrainingWindow:
    """The window for `cutoff`. `first_day` (the first day with data) clips the training days
    and moves their start past the features' warm-up (`warmup_start`); raises ValueError when no
    training day is left."""
    last_matured = cutoff - timedelta(days=config.maturity_days + 1)
    validation_first = last_matured - timedelta(days=config.validation_days - 1)
    train_last = validation_first - timedelta(days=config.gap_days + 1)
    train_first = last_matured - timedelta(days=config.window_days - 1)
    if first_day is not None:
        train_first = max(train_first, warmup_start(first_day, train_last, config))
    if train_first > train_last:
        raise ValueError(
            f"cutoff {cutoff}: no matured training day (train would be {train_first}..{train_last}"
            f"; maturity {config.maturity_days} d, validation {config.validation_days} d, "
            f"gap {config.gap_days} d, data from {first_day})"
        )
    return TrainingWindow(cutoff, train_first, train_last, validation_first, last_matured)


def labels_known_at(frame: pd.DataFrame, cutoff_ts: pd.Timestamp) -> np.ndarray:
    """1 where the order is fraud AND its label had arrived by the cutoff, else 0."""
    if "is_fraud" not in frame or "label_date" not in frame:
        return np.zeros(len(frame), dtype=np.int8)
    fraud = frame["is_fraud"].fillna(0).to_numpy(dtype=np.int64) == 1
    label_date = frame["label_date"]
    known = (label_date.notna() & (label_date <= cutoff_ts)).to_numpy(dtype=bool)
    return (fraud & known).astype(np.int8)


def keep_share(order_ids: pd.Series, seed: int) -> np.ndarray:
    """A uniform number in [0, 1) per order id, fixed for an id and a seed: the same row is kept
    or dropped whatever window it appears in."""
    hashed = pd.util.hash_array(
        order_ids.to_numpy(dtype=object), hash_key=f"{seed:016d}"[-16:], categorize=False
    )
    return (hashed >> np.uint64(11)).astype(np.float64) / float(1 << 53)


def resample_negatives(
    frame: pd.DataFrame, rate: float, from_rate: float, seed: int
) -> pd.DataFrame:
    """Training rows as if the training set had kept non-fraud rows at `rate` (< `from_rate`,
    the rate it kept): the same hash rule keeps a subset, weights become 1 / rate."""
    if rate >= from_rate:
        return frame
    keep = (frame[LABEL] == 1) | (keep_share(frame["order_id"], seed) < rate)
    out = frame[keep.to_numpy(dtype=bool)].copy()
    out[WEIGHT] = np.where(out[LABEL] == 1, out[WEIGHT], np.float32(1.0 / rate)).astype(np.float32)
    return out


@dataclass
class DayStats:
    day: str
    role: str
    rows: int = 0  # rows of the day in the feature file
    kept: int = 0  # rows in the training set
    positives: int = 0  # fraud known at the cutoff
    withheld_labels: int = 0  # fraud whose label arrives after the cutoff: a 0 here


def prepare_day(
    frame: pd.DataFrame,
    day: date,
    window: TrainingWindow,
    config: TrainingSetConfig,
    spec: FeatureSpec = DEFAULT_SPEC,
    feed: pd.DataFrame | None = None,
) -> tuple[pd.DataFrame, DayStats, pd.Series]:
    """One day's rows of the training set: ids, `label` (known at the cutoff), `weight`,
    `label_date` of known labels only, then the features (float32, `spec`'s order).

    Also returns the day's statistics and, per customer (the spec's primary entity), the first
    label_date known by the cutoff (customers already known as fraudulent are left out of
    customer precision@k).

    `feed` holds label events of the label feed (`fraud_core.labels`): an order's label is then
    its latest event known by the cutoff, its own row's label columns being one event among them.
    """
    role = window.role(day)
    if role is None:
        raise ValueError(f"{day} is not in the window {window}")
    names = spec.feature_names
    cutoff_ts = window.cutoff_ts
    final_frame = apply_feed(frame, feed)
    frame = apply_feed(frame, feed, known_by=cutoff_ts)
    label = labels_known_at(frame, cutoff_ts)
    final = final_frame["is_fraud"].fillna(0).to_numpy(dtype=np.int64) == 1
    stats = DayStats(day.isoformat(), role, rows=len(frame))
    stats.withheld_labels = int((final & (label == 0)).sum())

    weight = np.ones(len(frame), dtype=np.float32)
    keep = np.ones(len(frame), dtype=bool)
    if role == TRAIN and config.negative_rate < 1.0:
        keep = (label == 1) | (keep_share(frame["order_id"], config.seed) < config.negative_rate)
        weight[label == 0] = np.float32(1.0 / config.negative_rate)

    known_date = frame["label_date"].where(label == 1)
    out = frame.loc[keep, list(identity_columns(spec))].reset_index(drop=True)
    out[LABEL] = label[keep]
    out[WEIGHT] = weight[keep]
    out[KNOWN_LABEL_DATE] = known_date[keep].reset_index(drop=True).astype("datetime64[us, UTC]")
    features = frame.loc[keep, names].to_numpy(dtype=np.float32)
    out = pd.concat([out, pd.DataFrame(features, columns=names)], axis=1)
    stats.kept = len(out)
    stats.positives = int(out[LABEL].sum())

    fraud_days = frame.loc[label == 1, [spec.primary, "label_date"]]
    known_since = fraud_days.groupby(spec.primary)["label_date"].min()
    return out, stats, known_since


def feed_for_cutoff(feed: pd.DataFrame, order_days_first: date) -> pd.DataFrame:
    """The feed's events a training set keeps: those of label days from its first order day on
    (a label is never dated before its order)."""
    if not len(feed):
        return feed
    first = pd.Timestamp(order_days_first, tz="UTC")
    return feed[pd.to_datetime(feed["label_date"], utc=True) >= first].reset_index(drop=True)


def merge_known_fraud(parts: list[pd.Series]) -> pd.Series:
    """Per customer, the earliest known fraud label over several days' `prepare_day` outputs."""
    parts = [p for p in parts if len(p)]
    if not parts:
        return pd.Series([], dtype="datetime64[us, UTC]", name="label_date")
    return pd.concat(parts).groupby(level=0).min()


@dataclass
class TrainingSet:
    """An in-memory training set (tests and backtests; the asset writes files instead)."""

    window: TrainingWindow
    config: TrainingSetConfig
    train: pd.DataFrame
    validation: pd.DataFrame
    known_fraud_since: pd.Series  # primary entity -> first label_date known by the cutoff
    stats: list[DayStats] = field(default_factory=list)

    def summary(self) -> dict[str, object]:
        return summarize(self.window, self.config, self.stats)


def summarize(
    window: TrainingWindow, config: TrainingSetConfig, stats: list[DayStats]
) -> dict[str, object]:
    """Counts per role: rows read, rows kept, known positives, labels withheld by the cutoff."""
    out: dict[str, object] = {"window": window.to_dict(), "config": asdict(config)}
    for role in (TRAIN, VALIDATION):
        s = [x for x in stats if x.role == role]
        out[role] = {
            "days": len(s),
            "rows_read": sum(x.rows for x in s),
            "rows": sum(x.kept for x in s),
            "positives": sum(x.positives for x in s),
            "withheld_labels": sum(x.withheld_labels for x in s),
        }
    return out


def build_training_set(
    source: FeatureSource,
    window: TrainingWindow,
    config: TrainingSetConfig,
    spec: FeatureSpec = DEFAULT_SPEC,
    feed: pd.DataFrame | None = None,
) -> TrainingSet:
    """The training set of `window` from a day-by-day feature source, in memory (labels: the
    rows' own with the label feed's `feed` merged in). Days without data are skipped."""
    parts: dict[str, list[pd.DataFrame]] = {TRAIN: [], VALIDATION: []}
    known: list[pd.Series] = []
    stats: list[DayStats] = []
    for day in window.days():
        frame = source(day)
        if frame is None:
            continue
        rows, day_stats, known_since = prepare_day(frame, day, window, config, spec, feed)
        parts[day_stats.role].append(rows)
        stats.append(day_stats)
        known.append(known_since)
    for role, frames in parts.items():
        if not frames:
            raise ValueError(f"no {role} data in {window.days(role)[0]}..{window.days(role)[-1]}")
    return TrainingSet(
        window=window,
        config=config,
        train=pd.concat(parts[TRAIN], ignore_index=True),
        validation=pd.concat(parts[VALIDATION], ignore_index=True),
        known_fraud_since=merge_known_fraud(known),
        stats=stats,
    )


# ---------------------------------------------------------------------------------------------
# Files: the `training_set` asset writes one parquet file per day and role, and a manifest.

MANIFEST = "manifest.json"
KNOWN_FRAUD_FILE = "known_fraud.parquet"
LABEL_FEED_FILE = "label_feed.parquet"  # the label feed's events the set was built with


def read_feature_day(layout: DataLayout, day: date, columns: list[str] | None = None):
    """The `entity_features` file of `day` as a DataFrame, or None when there is none."""
    path = layout.entity_features(day)
    if not path.exists():
        return None
    return read_parquet(path, columns=columns).to_pandas()


def disk_source(layout: DataLayout, days: list[date]) -> FeatureSource:
    """The `entity_features` files of `days` as a feature source (None for any other day)."""
    available = set(days)

    def source(day: date) -> pd.DataFrame | None:
        return read_feature_day(layout, day) if day in available else None

    return source


def feature_days_on_disk(layout: DataLayout) -> list[date]:
    """Days with an `entity_features` file, oldest first."""
    return layout.entity_features_days()


def training_set_dir(layout: DataLayout, cutoff: date, run_key: str) -> Path:
    """A run's own folder (`DataLayout.training_set`)."""
    return layout.training_set(cutoff, run_key)


def prune_training_sets(layout: DataLayout, keep: int = 3) -> list[Path]:
    """Delete all but the newest `keep` complete training sets (and any incomplete one older
    than them); the one `latest.json` points at is always kept. Returns the deleted folders."""
    changed = {p: folder_mtime_ns(p) for p in layout.training_set_folders()}
    folders = sorted(changed, key=changed.__getitem__, reverse=True)
    latest = latest_manifest_path(layout)
    pinned = as_path(json.loads(latest.read_text())["manifest"]).parent if latest.exists() else None
    complete = [p for p in folders if (p / MANIFEST).exists()]
    newest = complete[:keep]
    if len(newest) < keep:
        return []
    oldest_kept = min(changed[p] for p in newest)
    deleted = []
    for folder in folders:
        if folder in newest or folder == pinned or changed[folder] >= oldest_kept:
            continue  # kept, pinned, or newer than a kept set (a run may still be writing it)
        remove_tree(folder)
        deleted.append(folder)
    for cutoff_dir in layout.training_set_cutoffs():
        if not is_remote(cutoff_dir) and not any(cutoff_dir.iterdir()):
            cutoff_dir.rmdir()  # (an object store has no empty folder to remove)
    return deleted


def day_file(folder: Path, role: str, day: date) -> Path:
    return folder / role / f"date={day.isoformat()}.parquet"


def prepare_day_file(
    src: str,
    dst: str,
    day: date,
    window: TrainingWindow,
    config: TrainingSetConfig,
    spec: FeatureSpec = DEFAULT_SPEC,
    feed_path: str | None = None,
) -> tuple[DayStats, pd.Series]:
    """`prepare_day` from a feature file to a training-set file (one Dask task); `feed_path`:
    the label feed's events as the training set keeps them (`LABEL_FEED_FILE`)."""
    from fraud_core.storage import write_parquet

    frame = read_parquet(src).to_pandas()
    feed = read_parquet(feed_path).to_pandas() if feed_path else None
    rows, stats, known = prepare_day(frame, day, window, config, spec, feed)
    write_parquet(rows, as_path(dst))
    return stats, known


@dataclass
class Manifest:
    """What a written training set holds; `fraud_model` reads this, never a glob."""

    folder: str
    window: dict[str, str]
    config: dict[str, object]
    feature_names: list[str]
    files: dict[str, list[str]]  # role -> parquet files
    summary: dict[str, object]
    inputs: dict[str, str]  # feature file -> fingerprint (size:mtime_ns)
    fingerprint: str = ""
    primary: str = DEFAULT_SPEC.primary  # the primary entity's column (customer precision@k)

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2, sort_keys=True, default=str)

    @classmethod
    def read(cls, path: Path) -> Manifest:
        return cls(**json.loads(as_path(path).read_text()))

    @property
    def training_window(self) -> TrainingWindow:
        return TrainingWindow.from_dict(self.window)

    def read_role(self, role: str, columns: list[str] | None = None) -> pd.DataFrame:
        frames = [read_parquet(f, columns=columns).to_pandas() for f in self.files[role]]
        return pd.concat(frames, ignore_index=True)

    def known_fraud_since(self) -> pd.Series:
        table = read_parquet(as_path(self.folder) / KNOWN_FRAUD_FILE).to_pandas()
        return table.set_index(self.primary)["label_date"]


def file_fingerprint(path: Path) -> str:
    st = as_path(path).stat()
    return f"{st.st_size}:{st.st_mtime_ns}"


def latest_manifest_path(layout: DataLayout) -> Path:
    return layout.latest_training_set


def read_latest_manifest(layout: DataLayout) -> Manifest:
    """The training set `training_set` made the latest (what `fraud_model` trains on); raises
    FileNotFoundError when there is none yet."""
    pointer = latest_manifest_path(layout)
    if not pointer.exists():
        raise FileNotFoundError(
            f"no training set yet ({pointer} is missing): materialize training_set"
        )
    return Manifest.read(as_path(json.loads(pointer.read_text())["manifest"]))


def manifest_fingerprint(inputs: dict[str, str], summary: dict[str, object]) -> str:
    """A short hash of the input files' fingerprints and what was built from them."""
    text = json.dumps({"inputs": inputs, "summary": summary}, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def time_rule_violations(manifest: Manifest) -> dict[str, int]:
    """Rows of a written training set that break the time rules (every count must be 0): a
    fraud label dated after the cutoff or without a date, an order younger than maturity."""
    window = manifest.training_window
    cutoff_ts = window.cutoff_ts
    matured_until = day_start(window.validation_last + timedelta(days=1))
    bad = {"label_after_cutoff": 0, "label_without_date": 0, "order_after_maturity": 0}
    for role in (TRAIN, VALIDATION):
        for path in manifest.files[role]:
            table = read_parquet(path, columns=["order_date", LABEL, KNOWN_LABEL_DATE])
            frame = table.to_pandas()
            positive = frame[LABEL].to_numpy() == 1
            label_date = frame[KNOWN_LABEL_DATE]
            late = (label_date > cutoff_ts).fillna(False).to_numpy(dtype=bool)
            bad["label_after_cutoff"] += int((positive & late).sum())
            bad["label_without_date"] += int((positive & label_date.isna().to_numpy()).sum())
            bad["order_after_maturity"] += int((frame["order_date"] >= matured_until).sum())
    return bad


def class_counts(manifest: Manifest) -> dict[str, int]:
    """Fraud and non-fraud rows per role of a written training set."""
    counts: dict[str, int] = {}
    for role in (TRAIN, VALIDATION):
        labels = [
            read_parquet(p, columns=[LABEL]).column(0).to_numpy() for p in manifest.files[role]
        ]
        values = np.concatenate(labels) if labels else np.empty(0, dtype=np.int8)
        counts[f"{role}_fraud"] = int(values.sum())
        counts[f"{role}_not_fraud"] = int(len(values) - values.sum())
    return counts
