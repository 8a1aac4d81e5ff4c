"""Prequential model selection: which hyperparameters hold on days the model has not seen.

Each setting of a small search space (`SEARCH_SPACE`: depth, learning rate with more rounds,
min child weight, column sampling, and class imbalance by subsampling negatives versus class
weights) is trained on the time-ordered folds of `fraud_core.model.folds` (train on earlier
days, skip the label delay, assess later days) and judged by average precision, ROC AUC and
customer precision@k on the assessment days. Every fold's model stops early on its own
validation days, so "rounds" is searched as a ceiling with a learning rate.

The rule is conservative, as a fraud data scientist would be on a few folds: the setting with
the best mean AP is selected only when its paired AP gain over the defaults (same folds) exceeds
`min_gain_se` standard errors; otherwise the defaults stay. The budget (`budget_seconds`, wall
time) bounds the search: settings are tried in order, the defaults first (they always finish),
and a setting whose folds did not all finish in time is reported as not evaluated.

Candidates run as Dask tasks, one single-threaded XGBoost training each, so two cores evaluate
two candidates at once; each fold's rows are sent to the workers once. The model that serves
is still trained by `fraud_core.model.train` with `xgboost.dask` and the selected parameters.

Feature evidence is gathered on the defaults' fold models: mean |SHAP contribution| (XGBoost's
`pred_contribs`) and the AP lost when a feature's values are permuted, per fold, on the
assessment days; and every feature's own ROC AUC there. A feature that never helps in any fold is
reported; one that alone separates fraud almost perfectly on days after the label delay is
flagged as a likely leak (`leak_auc`).

`days_read` records every day the source was asked for, so a nested selection (the backtest)
can prove it never read its assessment window.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from datetime import date, timedelta
from typing import Any

import numpy as np
import pandas as pd

from fraud_core.features.spec import DEFAULT_SPEC, FeatureSpec
from fraud_core.model.candidate import spec_hash
from fraud_core.model.dataset import (
    LABEL,
    WEIGHT,
    FeatureSource,
    TrainingSetConfig,
    build_training_set,
    resample_negatives,
)
from fraud_core.model.evaluate import (
    DEFAULT_K,
    average_precision,
    customer_precision_at_k,
    roc_auc,
)
from fraud_core.model.folds import (
    Fold,
    FoldConfig,
    assessment_frame,
    known_fraud_before,
    plan_folds,
    training_config,
)
from fraud_core.model.train import TrainParams, blank

DEFAULTS = "defaults"
AP = "average_precision"
METRICS = (AP, "roc_auc", f"customer_precision_at_{DEFAULT_K}")


@dataclass(frozen=True)
class Setting:
    """A candidate: `TrainParams` fields to change, and optionally a lower share of non-fraud
    training rows than the training set keeps (weights compensate, as in the training set)."""

    name: str
    overrides: tuple[tuple[str, Any], ...] = ()
    negative_rate: float | None = None

    def params(self, base: TrainParams) -> TrainParams:
        return replace(base, **dict(self.overrides))

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "overrides": dict(self.overrides),
            "negative_rate": self.negative_rate,
        }


SEARCH_SPACE: tuple[Setting, ...] = (
    Setting(DEFAULTS),
    Setting("shallow", (("max_depth", 4),)),
    Setting("deep", (("max_depth", 8), ("min_child_weight", 5.0))),
    Setting(
        "slow_and_long",
        (("learning_rate", 0.05), ("num_boost_round", 1000), ("early_stopping_rounds", 80)),
    ),
    Setting("fewer_columns", (("colsample_bytree", 0.5),)),
    Setting("class_weight", (("scale_pos_weight", 4.0),)),
    Setting("fewer_negatives", negative_rate=0.1),
)
"""The default search, in the order it is tried (the defaults first)."""


def search_space(names: list[str] | tuple[str, ...]) -> tuple[Setting, ...]:
    """The settings of `SEARCH_SPACE` called `names`, in that order, the defaults first
    whether named or not; ValueError naming the unknown ones."""
    known = {s.name: s for s in SEARCH_SPACE}
    unknown = [n for n in names if n not in known]
    if unknown:
        raise ValueError(f"unknown settings {unknown}; known: {sorted(known)}")
    return (known[DEFAULTS], *(known[n] for n in names if n != DEFAULTS))


def describe_setting(setting: Setting) -> str:
    """What a setting changes, in one line."""
    changes = [f"{k}={v}" for k, v in setting.overrides]
    if setting.negative_rate is not None:
        changes.append(f"negative_rate={setting.negative_rate}")
    return ", ".join(changes) or "TrainParams as configured"


@dataclass(frozen=True)
class SelectionConfig(FoldConfig):
    folds: int = 3
    budget_seconds: float = 900.0  # wall time of the search; settings not finished are dropped
    min_gain_se: float = 2.0  # the best must beat the defaults by this many standard errors
    leak_auc: float = 0.98  # a feature alone at or above this ROC AUC is flagged as a leak
    evidence: bool = True  # gather feature evidence on the defaults' fold models
    evidence_rows: int = 20_000  # non-fraud rows sampled for SHAP and permutation (all fraud)

    @classmethod
    def nested_in(cls, folds: FoldConfig, selection_folds: int, budget_s: float) -> SelectionConfig:
        """The selection a backtest with `folds` runs inside each of its folds: the same
        training, delay and test lengths, `selection_folds` folds ending before the fold's
        cutoff (`end` is set per fold, `nested_end`), no feature evidence."""
        return cls(
            end=folds.end,
            train_days=folds.train_days,
            delay_days=folds.delay_days,
            test_days=folds.test_days,
            folds=selection_folds,
            budget_seconds=budget_s,
            evidence=False,
        )

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.budget_seconds <= 0:
            raise ValueError(f"budget_seconds must be > 0, got {self.budget_seconds}")
        if not 0.5 < self.leak_auc <= 1.0:
            raise ValueError(f"leak_auc must be in (0.5, 1], got {self.leak_auc}")


@dataclass
class FoldData:
    """What a candidate task needs of one fold (sent to the workers once)."""

    index: int
    train: pd.DataFrame
    validation: pd.DataFrame
    test: pd.DataFrame
    known: pd.Series
    names: list[str]
    primary: str
    k: int
    training_rate: float
    seed: int
    switched_off: tuple[str, ...] = ()


def _matrix(frame: pd.DataFrame, names: list[str]) -> np.ndarray:
    return frame[names].to_numpy(dtype=np.float32)


def evaluate_setting(
    data: FoldData, setting: Setting, base: TrainParams, evidence: bool, evidence_rows: int
) -> dict[str, Any]:
    """Train `setting` on one fold (single-threaded XGBoost, early stopping on the fold's
    validation days) and judge it on the assessment days. A Dask task."""
    import xgboost as xgb

    started = time.perf_counter()
    params = setting.params(base)
    train = blank(data.train, data.switched_off)
    validation = blank(data.validation, data.switched_off)
    if setting.negative_rate is not None:
        train = resample_negatives(train, setting.negative_rate, data.training_rate, data.seed)
    names = data.names
    dtrain = xgb.QuantileDMatrix(
        _matrix(train, names),
        label=train[LABEL].to_numpy(),
        weight=train[WEIGHT].to_numpy(),
        max_bin=params.max_bin,
        nthread=1,
    )
    dvalid = xgb.QuantileDMatrix(
        _matrix(validation, names),
        label=validation[LABEL].to_numpy(),
        weight=validation[WEIGHT].to_numpy(),
        ref=dtrain,
        max_bin=params.max_bin,
        nthread=1,
    )
    booster = xgb.train(
        {**params.xgb_params(), "nthread": 1},
        dtrain,
        num_boost_round=params.num_boost_round,
        evals=[(dvalid, "validation")],
        early_stopping_rounds=params.early_stopping_rounds,
        verbose_eval=False,
    )
    best = int(getattr(booster, "best_iteration", booster.num_boosted_rounds() - 1))
    booster = booster[: best + 1]
    test = data.test
    x_test = _matrix(test, names)
    labels = test[LABEL].to_numpy(dtype=np.int64)
    margin = np.asarray(booster.inplace_predict(x_test, predict_type="margin"), dtype=np.float64)
    cp, _ = customer_precision_at_k(test, margin, data.k, data.known, entity=data.primary)
    out: dict[str, Any] = {
        "setting": setting.name,
        "fold": data.index,
        "metrics": {
            AP: average_precision(labels, margin),
            "roc_auc": roc_auc(labels, margin),
            f"customer_precision_at_{DEFAULT_K}": cp,
        },
        "best_iteration": best,
        "train_rows": len(train),
    }
    if evidence:
        out["evidence"] = feature_evidence(booster, x_test, labels, names, evidence_rows)
    out["seconds"] = round(time.perf_counter() - started, 2)
    return out


def feature_evidence(
    booster: Any, x: np.ndarray, labels: np.ndarray, names: list[str], rows: int, seed: int = 0
) -> dict[str, dict[str, float]]:
    """Per feature on assessment rows: mean |SHAP contribution|, the AP lost when its values
    are permuted, and its own ROC AUC (folded: max(auc, 1 - auc); empty values lowest)."""
    import xgboost as xgb

    rng = np.random.default_rng(seed)
    fraud = np.flatnonzero(labels == 1)
    good = np.flatnonzero(labels == 0)
    sampled = rng.choice(good, size=min(rows, len(good)), replace=False)
    idx = np.concatenate([fraud, sampled])
    weights = np.where(labels[idx] == 1, 1.0, len(good) / max(len(sampled), 1))
    xs, ys = x[idx], labels[idx]
    contribs = booster.predict(xgb.DMatrix(xs, nthread=1), pred_contribs=True)[:, : len(names)]
    base_ap = average_precision(ys, booster.inplace_predict(xs), weights)
    out: dict[str, dict[str, float]] = {}
    for j, name in enumerate(names):
        shuffled = xs.copy()
        shuffled[:, j] = rng.permutation(shuffled[:, j])
        drop = base_ap - average_precision(ys, booster.inplace_predict(shuffled), weights)
        out[name] = {
            "mean_abs_contribution": float(np.mean(np.abs(contribs[:, j]))),
            "permutation_ap_drop": float(drop),
            "alone_auc": alone_auc(x[:, j], labels),
        }
    return out


def alone_auc(values: np.ndarray, labels: np.ndarray) -> float:
    """One feature's ROC AUC on its own, folded (max(auc, 1 - auc): a feature that ranks fraud
    low is as telling as one that ranks it high), empty values ranked lowest; NaN with one
    class. What the leak check compares with `leak_auc`."""
    column = np.asarray(values, dtype=np.float64)
    finite = np.isfinite(column)
    lowest = np.min(column[finite]) - 1.0 if finite.any() else 0.0
    auc = roc_auc(labels, np.where(finite, column, lowest))
    return float(max(auc, 1.0 - auc)) if not math.isnan(auc) else float("nan")


# ---------------------------------------------------------------------------------------------


@dataclass
class SelectionReport:
    config: dict[str, Any]
    training: dict[str, Any]
    base_params: dict[str, Any]
    settings: list[dict[str, Any]]
    folds: list[dict[str, str]]
    results: list[dict[str, Any]] = field(default_factory=list)
    not_evaluated: list[str] = field(default_factory=list)
    selected: str = DEFAULTS
    reason: str = ""
    wall_seconds: float = 0.0
    days_read: list[str] = field(default_factory=list)
    evidence: dict[str, dict[str, Any]] = field(default_factory=dict)
    never_helped: list[str] = field(default_factory=list)
    leaks: list[dict[str, Any]] = field(default_factory=list)
    feature_spec: str = ""  # `spec_hash` of the feature names the folds were trained on

    def evaluated(self) -> list[str]:
        names = [s["name"] for s in self.settings]
        return [n for n in names if n not in self.not_evaluated]

    def per_fold(self, setting: str, metric: str = AP) -> np.ndarray:
        rows = sorted((r for r in self.results if r["setting"] == setting), key=lambda r: r["fold"])
        return np.array([r["metrics"][metric] for r in rows], dtype=float)

    def summary(self) -> dict[str, dict[str, Any]]:
        """setting -> metric -> (mean, std) over folds, and its paired AP gain over the
        defaults (mean, standard error, 95 % interval)."""
        out: dict[str, dict[str, Any]] = {}
        defaults = self.per_fold(DEFAULTS)
        for name in self.evaluated():
            entry: dict[str, Any] = {}
            for metric in METRICS:
                values = self.per_fold(name, metric)
                values = values[~np.isnan(values)]
                entry[metric] = (
                    float(values.mean()) if len(values) else float("nan"),
                    float(values.std(ddof=1)) if len(values) > 1 else 0.0,
                )
            entry["ap_gain"] = paired_difference(self.per_fold(name), defaults)
            out[name] = entry
        return out

    def selected_setting(self) -> dict[str, Any]:
        return next(s for s in self.settings if s["name"] == self.selected)

    def selected_params(self) -> dict[str, Any]:
        return self.selected_setting()["params"]

    def to_dict(self) -> dict[str, Any]:
        return {
            **asdict(self),
            "summary": {
                name: {
                    **{m: {"mean": v[0], "std": v[1]} for m, v in entry.items() if m in METRICS},
                    "ap_gain": entry["ap_gain"],
                }
                for name, entry in self.summary().items()
            },
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SelectionReport:
        known = set(cls.__dataclass_fields__)
        return cls(**{k: v for k, v in data.items() if k in known})

    def to_markdown(self) -> str:
        k = DEFAULT_K
        lines = [
            f"| setting | changes | AP | ROC AUC | cp@{k} | AP gain vs defaults (95 % CI) |",
            "|---|---|---|---|---|---|",
        ]
        settings = {s["name"]: s for s in self.settings}
        for name, entry in self.summary().items():
            s = settings[name]
            changes = describe_setting(
                Setting(name, tuple(s["overrides"].items()), s["negative_rate"])
            )
            cells = [f"{entry[m][0]:.3f} ± {entry[m][1]:.3f}" for m in METRICS]
            gain = entry["ap_gain"]
            mark = " **selected**" if name == self.selected else ""
            lines.append(
                f"| {name}{mark} | {changes} | " + " | ".join(cells) + f" | {_gain_text(gain)} |"
            )
        lines.append(f"\n{self.reason}")
        if self.not_evaluated:
            lines.append(f"Not evaluated within the budget: {', '.join(self.not_evaluated)}.")
        if self.leaks:
            lines.append(
                "Likely leaks: "
                + ", ".join(f"{x['feature']} (alone AUC {x['alone_auc']:.3f})" for x in self.leaks)
            )
        if self.never_helped:
            lines.append(f"Never helped in any fold: {', '.join(self.never_helped)}.")
        return "\n".join(lines)

    def plot_png(self) -> bytes:
        """Mean AP ± std per setting, the defaults' mean as a line."""
        from matplotlib.figure import Figure

        from fraud_core.model.evaluate import png_bytes

        summary = self.summary()
        names = list(summary)
        means = [summary[n][AP][0] for n in names]
        stds = [summary[n][AP][1] for n in names]
        figure = Figure(figsize=(6.5, 3.8))
        ax = figure.add_subplot()
        colors = ["tab:orange" if n == self.selected else "tab:blue" for n in names]
        ax.bar(names, means, yerr=stds, color=colors, capsize=4)
        if DEFAULTS in summary:
            ax.axhline(summary[DEFAULTS][AP][0], color="grey", linewidth=0.8, linestyle="--")
        ax.set_ylabel("average precision (mean ± std over folds)")
        ax.set_title("Model selection on time-ordered folds")
        ax.tick_params(axis="x", labelrotation=30, labelsize=8)
        low = min((m - s for m, s in zip(means, stds, strict=True)), default=0.0)
        ax.set_ylim(max(0.0, low - 0.05), 1.0)
        return png_bytes(figure)


def _gain_text(gain: dict[str, float]) -> str:
    if gain["n"] == 0 or math.isnan(gain["mean"]):
        return "-"
    return f"{gain['mean']:+.4f} ({gain['low']:+.4f}, {gain['high']:+.4f})"


def paired_difference(a: np.ndarray, b: np.ndarray) -> dict[str, float]:
    """Mean of a - b over paired folds, its standard error and 95 % t interval."""
    from scipy import stats

    n = min(len(a), len(b))
    d = np.asarray(a[:n], dtype=float) - np.asarray(b[:n], dtype=float)
    d = d[~np.isnan(d)]
    n = len(d)
    if n == 0:
        return {
            "n": 0,
            "mean": float("nan"),
            "se": float("nan"),
            "low": float("nan"),
            "high": float("nan"),
        }
    mean = float(d.mean())
    se = float(d.std(ddof=1) / math.sqrt(n)) if n > 1 else float("nan")
    half = float(stats.t.ppf(0.975, n - 1) * se) if n > 1 else float("nan")
    return {"n": n, "mean": mean, "se": se, "low": mean - half, "high": mean + half}


def choose(report: SelectionReport, min_gain_se: float) -> tuple[str, str]:
    """(selected setting, why): the best mean AP when it beats the defaults by more than
    `min_gain_se` standard errors of the paired gain (any gain with one fold)."""
    summary = report.summary()
    if DEFAULTS not in summary:
        return DEFAULTS, "the defaults were not evaluated within the budget: defaults kept"
    best = max(summary, key=lambda n: (summary[n][AP][0], n == DEFAULTS))
    if best == DEFAULTS:
        return DEFAULTS, "no setting beat the defaults' mean AP: defaults kept"
    gain = summary[best]["ap_gain"]
    se = gain["se"] if not math.isnan(gain["se"]) else 0.0
    if gain["mean"] > min_gain_se * se:
        return best, (
            f"{best}: mean AP gain {gain['mean']:+.4f} over the defaults in {gain['n']} folds "
            f"(standard error {se:.4f}; 95 % interval {gain['low']:+.4f}..{gain['high']:+.4f})"
        )
    return DEFAULTS, (
        f"the best, {best}, gains {gain['mean']:+.4f} AP, within {min_gain_se:g} standard "
        f"error(s) ({se:.4f}) of the defaults: defaults kept"
    )


def _aggregate_evidence(
    results: list[dict[str, Any]], leak_auc: float
) -> tuple[dict[str, dict[str, Any]], list[str], list[dict[str, Any]]]:
    per_feature: dict[str, list[dict[str, float]]] = {}
    for r in results:
        for name, values in (r.get("evidence") or {}).items():
            per_feature.setdefault(name, []).append(values)
    evidence, never, leaks = {}, [], []
    for name, rows in per_feature.items():
        drops = [v["permutation_ap_drop"] for v in rows]
        aucs = [v["alone_auc"] for v in rows if not math.isnan(v["alone_auc"])]
        contrib = float(np.mean([v["mean_abs_contribution"] for v in rows]))
        evidence[name] = {
            "mean_abs_contribution": contrib,
            "permutation_ap_drop": float(np.mean(drops)),
            "folds_helped": int(sum(d > 0 for d in drops)),
            "alone_auc": float(max(aucs)) if aucs else float("nan"),
        }
        if all(d <= 0 for d in drops):
            never.append(name)
        if aucs and min(aucs) >= leak_auc:
            leaks.append({"feature": name, "alone_auc": float(min(aucs))})
    evidence = dict(sorted(evidence.items(), key=lambda kv: -kv[1]["permutation_ap_drop"]))
    return evidence, sorted(never), sorted(leaks, key=lambda x: -x["alone_auc"])


class _Recording:
    """A feature source that remembers the days asked for."""

    def __init__(self, source: FeatureSource) -> None:
        self.source = source
        self.days: set[date] = set()

    def __call__(self, day: date) -> pd.DataFrame | None:
        self.days.add(day)
        return self.source(day)


def run_selection(
    client: Any,
    source: FeatureSource,
    config: SelectionConfig,
    training: TrainingSetConfig | None = None,
    base: TrainParams | None = None,
    space: tuple[Setting, ...] = SEARCH_SPACE,
    *,
    first_day: date | None = None,
    spec: FeatureSpec = DEFAULT_SPEC,
    feed: pd.DataFrame | None = None,
    known_by: pd.Timestamp | None = None,
    log: Callable[[str], None] | None = None,
) -> SelectionReport:
    """Evaluate `space` (the first setting is the defaults, `base`) on `config`'s folds and
    select. `known_by`: judge the assessment days with the labels known then (a nested
    selection inside a backtest fold passes its cutoff); None: every label known now.
    `client` is a `distributed.Client`."""
    if not space or space[0].name != DEFAULTS or space[0].overrides:
        raise ValueError(f"the search space must start with the {DEFAULTS!r} setting")
    started = time.perf_counter()
    base = base or TrainParams()
    training = training_config(config, training or TrainingSetConfig())
    recording = _Recording(source)
    folds = plan_folds(config, training, first_day)
    report = SelectionReport(
        config={k: str(v) if isinstance(v, date) else v for k, v in asdict(config).items()},
        training=asdict(training),
        base_params=base.to_dict(),
        settings=[{**s.to_dict(), "params": s.params(base).to_dict()} for s in space],
        folds=[_fold_entry(f) for f in folds],
        feature_spec=spec_hash(spec.feature_names),
    )
    fold_data = [
        _fold_data(recording, fold, training, config, spec, feed, known_by) for fold in folds
    ]
    futures = client.scatter(fold_data)
    # Everything is submitted at once, earlier settings at higher priority (the workers take
    # them in that order, two cores two at a time); once the budget is spent, the rest is
    # cancelled and those settings are reported as not evaluated.
    tasks = [(setting, data) for setting in space for data in futures]
    submitted = [
        client.submit(
            evaluate_setting,
            data,
            setting,
            base,
            config.evidence and setting.name == DEFAULTS,
            config.evidence_rows,
            priority=len(tasks) - i,
            pure=False,
        )
        for i, (setting, data) in enumerate(tasks)
    ]
    for i, future in enumerate(submitted):
        result = future.result()
        report.results.append(result)
        if log is not None:
            m = result["metrics"]
            log(
                f"{result['setting']} fold {result['fold']}: AP {m[AP]:.4f} "
                f"({result['best_iteration'] + 1} trees, {result['seconds']:.1f} s)"
            )
        over = time.perf_counter() - started > config.budget_seconds
        if over and len(folds) <= i + 1 < len(submitted):  # the defaults always finish
            client.cancel(submitted[i + 1 :])
            if log is not None:
                log(f"budget of {config.budget_seconds:g} s spent: the remaining tasks cancelled")
            break
    complete = {
        s.name for s in space if sum(r["setting"] == s.name for r in report.results) == len(folds)
    }
    report.not_evaluated = [s.name for s in space if s.name not in complete]
    report.results = [r for r in report.results if r["setting"] in complete]
    report.selected, report.reason = choose(report, config.min_gain_se)
    report.evidence, report.never_helped, report.leaks = _aggregate_evidence(
        [r for r in report.results if r["setting"] == DEFAULTS], config.leak_auc
    )
    report.days_read = sorted(d.isoformat() for d in recording.days)
    report.wall_seconds = round(time.perf_counter() - started, 2)
    return report


def _fold_entry(fold: Fold) -> dict[str, str]:
    w = fold.window
    return {
        "index": str(fold.index),
        "cutoff": w.cutoff.isoformat(),
        "train": f"{w.train_first}..{w.train_last}",
        "validation": f"{w.validation_first}..{w.validation_last}",
        "test": fold.test,
    }


def _fold_data(
    source: FeatureSource,
    fold: Fold,
    training: TrainingSetConfig,
    config: SelectionConfig,
    spec: FeatureSpec,
    feed: pd.DataFrame | None,
    known_by: pd.Timestamp | None,
) -> FoldData:
    names = spec.feature_names
    ts = build_training_set(source, fold.window, training, spec, feed)
    test = assessment_frame(source, fold, feed, known_by)
    known = known_fraud_before(source, fold.window, fold, spec.primary, feed, known_by)
    keep = ["order_id", LABEL, WEIGHT, *names]
    return FoldData(
        index=fold.index,
        train=ts.train[keep],
        validation=ts.validation[keep],
        test=test[["order_date", spec.primary, LABEL, *names]],
        known=known,
        names=list(names),
        primary=spec.primary,
        k=config.k,
        training_rate=training.negative_rate,
        seed=training.seed,
        switched_off=spec.switched_off,
    )


def nested_end(cutoff: date, delay_days: int) -> date:
    """The last day a selection nested in a fold with `cutoff` may assess: labels there have
    matured by the cutoff, and nothing at or after it is read."""
    return cutoff - timedelta(days=delay_days + 1)


def read_selection(path: Any) -> SelectionReport | None:
    """The selection report at `path` (`DataLayout.model_selection()`), None when there is
    none yet."""
    import json

    try:
        text = path.read_text()
    except FileNotFoundError:
        return None
    return SelectionReport.from_dict(json.loads(text))
