"""Prequential backtest: how the production training code would have done, fold by fold, on days
it had not seen, next to a hand-written rules baseline.

Fold 0 assesses the last `test_days` up to `end`; each further fold shifts back by `test_days`.
A fold's cutoff is the first day of its assessment window: its training set is built exactly as
the `training_set` asset builds one at that cutoff (labels known by then, orders at least
`delay_days` old, the newest matured days for early stopping and thresholds), the model is trained
with the same `train_model`, and the assessment days are scored with their final labels.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from datetime import date, timedelta
from typing import Any

import numpy as np
import pandas as pd

from fraud_core.features.spec import DEFAULT_SPEC, FeatureSpec
from fraud_core.labels import apply_feed
from fraud_core.model.dataset import (
    FeatureSource,
    TrainingSetConfig,
    TrainingWindow,
    build_training_set,
    labels_known_at,
    merge_known_fraud,
    plan_window,
)
from fraud_core.model.decisions import ThresholdTargets, choose_thresholds
from fraud_core.model.evaluate import DEFAULT_K, customer_precision_at_k, evaluate_scores
from fraud_core.model.train import TrainParams, predict, train_model

MODEL = "model"
RULES = "rules"
HEADLINE = ("average_precision", "roc_auc", f"customer_precision_at_{DEFAULT_K}")


@dataclass(frozen=True)
class BacktestConfig:
    end: date  # last assessed day (inclusive)
    train_days: int = 90  # matured days per training set (train + gap + validation)
    delay_days: int = 30  # maturity: skipped between the training days and the cutoff
    test_days: int = 14
    folds: int = 4
    k: int = DEFAULT_K

    def __post_init__(self) -> None:
        for name in ("train_days", "test_days", "folds", "k"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.delay_days < 0:
            raise ValueError(f"delay_days must be >= 0, got {self.delay_days}")


@dataclass(frozen=True)
class Fold:
    index: int  # 0 = the most recent
    window: TrainingWindow
    test_first: date
    test_last: date

    @property
    def test_days(self) -> list[date]:
        n = (self.test_last - self.test_first).days + 1
        return [self.test_first + timedelta(days=i) for i in range(n)]


def training_config(config: BacktestConfig, base: TrainingSetConfig) -> TrainingSetConfig:
    """The production training-set settings with the backtest's window and delay; validation
    and gap shrink when the training window is short."""
    validation = min(base.validation_days, max(1, config.train_days // 5))
    gap = min(base.gap_days, max(0, config.train_days - validation - 1))
    return replace(
        base,
        window_days=config.train_days,
        maturity_days=config.delay_days,
        validation_days=validation,
        gap_days=gap,
    )


def plan_folds(
    config: BacktestConfig, training: TrainingSetConfig, first_day: date | None = None
) -> list[Fold]:
    folds = []
    for i in range(config.folds):
        test_last = config.end - timedelta(days=i * config.test_days)
        test_first = test_last - timedelta(days=config.test_days - 1)
        window = plan_window(test_first, training, first_day)
        folds.append(Fold(i, window, test_first, test_last))
    return folds


# ---------------------------------------------------------------------------------------------
# The rules baseline: what a fraud team writes before it has a model.

_OPS: dict[str, Callable[[np.ndarray, float], np.ndarray]] = {
    ">": np.greater,
    ">=": np.greater_equal,
    "==": np.equal,
}


@dataclass(frozen=True)
class Rule:
    """One point when every clause (feature, operator, value) holds; empty features fail."""

    text: str
    clauses: tuple[tuple[str, str, float], ...]


# The built-in contract's rules, as a fraud team of an online shop writes them.
_BUILTIN_RULES = (
    Rule("amount > 300", (("order_amount", ">", 300),)),
    Rule("a customer's first order", (("customer_id__first_seen", "==", 1),)),
    Rule(
        "3+ orders of the customer in the last hour",
        (("customer_id__order_count__1h", ">=", 3),),
    ),
    Rule("3+ customers on the IP in 24 h", (("ip_addr__distinct_customer_id__24h", ">=", 3),)),
    Rule("an e-mail never seen before", (("email__first_seen", "==", 1),)),
    Rule(
        "amount > 4x the customer's recent mean",
        (("customer_id__amount_rel_mean__last10", ">", 4),),
    ),
    Rule(
        "an IP not among the customer's last 10 orders",
        (("customer_id__ip_addr_seen_in_last10", "==", 0), ("customer_id__first_seen", "==", 0)),
    ),
)


def baseline_rules(spec: FeatureSpec = DEFAULT_SPEC) -> tuple[Rule, ...]:
    """The rules baseline over `spec`'s features: the built-in contract's rules where the spec
    has their features, else the same ideas over the contract's own entities (the primary
    entity's first order, velocity and unusual amount; any other entity never seen before)."""
    names = set(spec.feature_names) | {"order_amount"}
    if all(f in names for r in _BUILTIN_RULES for f, _, _ in r.clauses):
        return _BUILTIN_RULES
    p, w, n = spec.primary, next(iter(spec.windows)), spec.history_n
    rules = [
        Rule("amount > 300", (("order_amount", ">", 300),)),
        Rule(f"a {p}'s first order", ((f"{p}__first_seen", "==", 1),)),
        Rule(f"3+ orders of the {p} in the last {w}", ((f"{p}__order_count__{w}", ">=", 3),)),
        Rule(f"amount > 4x the {p}'s recent mean", ((f"{p}__amount_rel_mean__last{n}", ">", 4),)),
    ]
    rules += [
        Rule(f"a {e.kind} never seen before", ((f"{e.kind}__first_seen", "==", 1),))
        for e in spec.entities
        if e.kind != p
    ]
    return tuple(rules)


def rules_text(spec: FeatureSpec = DEFAULT_SPEC) -> str:
    """The baseline in words, for people (the backtest report, the UI)."""
    return (
        f"1 point each: {'; '.join(r.text for r in baseline_rules(spec))}. Ties ordered by amount."
    )


RULES_TEXT = rules_text()


def rules_score(frame: pd.DataFrame, spec: FeatureSpec = DEFAULT_SPEC) -> np.ndarray:
    """A score in [0, 1) from hand-written rules on the same feature rows (`baseline_rules`)."""
    rules = baseline_rules(spec)
    amount = frame["order_amount"].to_numpy(dtype=np.float64)
    hits = np.zeros(len(frame), dtype=np.int64)
    with np.errstate(invalid="ignore"):
        for rule in rules:
            held = np.ones(len(frame), dtype=bool)
            for feature, op, value in rule.clauses:
                held &= _OPS[op](frame[feature].to_numpy(dtype=np.float64), value)
            hits += held
    return (hits + np.minimum(amount, 999.0) / 1000.0) / (len(rules) + 1)


# ---------------------------------------------------------------------------------------------


@dataclass
class FoldResult:
    index: int
    cutoff: str
    train: str
    validation: str
    test: str
    train_rows: int
    test_rows: int
    test_fraud: int
    best_iteration: int
    thresholds: dict[str, float]
    metrics: dict[str, dict[str, float]]  # MODEL / RULES -> metrics on the test days
    ceiling_cp: float = float("nan")  # customer precision@k of a perfect ranking


@dataclass
class BacktestReport:
    config: dict[str, Any]
    training: dict[str, Any]
    params: dict[str, Any]
    folds: list[FoldResult] = field(default_factory=list)

    def summary(self) -> dict[str, dict[str, tuple[float, float]]]:
        """system -> metric -> (mean, std) over folds."""
        out: dict[str, dict[str, tuple[float, float]]] = {}
        for system in (MODEL, RULES):
            out[system] = {}
            for metric in HEADLINE:
                values = np.array([f.metrics[system][metric] for f in self.folds], dtype=float)
                values = values[~np.isnan(values)]
                mean = float(values.mean()) if len(values) else float("nan")
                std = float(values.std(ddof=1)) if len(values) > 1 else 0.0
                out[system][metric] = (mean, std)
        return out

    def result_line(self) -> str:
        s = self.summary()[MODEL]
        return (
            f"RESULT ap={s['average_precision'][0]:.4f} auc={s['roc_auc'][0]:.4f} "
            f"cp{DEFAULT_K}={s[f'customer_precision_at_{DEFAULT_K}'][0]:.4f}"
        )

    def to_markdown(self) -> str:
        k = DEFAULT_K
        lines = [
            f"| fold | cutoff | train days | test days | test orders (fraud) | "
            f"model AP | rules AP | model AUC | rules AUC | model cp@{k} | rules cp@{k} |",
            "|---|---|---|---|---|---|---|---|---|---|---|",
        ]
        for f in self.folds:
            m, r = f.metrics[MODEL], f.metrics[RULES]
            lines.append(
                f"| {f.index} | {f.cutoff} | {f.train} | {f.test} | {f.test_rows:,} "
                f"({f.test_fraud:,}) | {m['average_precision']:.3f} | "
                f"{r['average_precision']:.3f} | {m['roc_auc']:.3f} | {r['roc_auc']:.3f} | "
                f"{m[f'customer_precision_at_{k}']:.3f} | {r[f'customer_precision_at_{k}']:.3f} |"
            )
        s = self.summary()
        lines += ["", f"| system | AP | ROC AUC | customer precision@{k} |", "|---|---|---|---|"]
        for system in (MODEL, RULES):
            cells = [f"{s[system][m][0]:.3f} ± {s[system][m][1]:.3f}" for m in HEADLINE]
            lines.append(f"| {system} | " + " | ".join(cells) + " |")
        ceiling = float(np.nanmean([f.ceiling_cp for f in self.folds]))
        lines.append(
            f"\nA perfect ranking would reach customer precision@{k} = {ceiling:.3f}: fewer "
            f"than {k} customers a day commit fraud that is not already known."
        )
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        return {
            "config": self.config,
            "training": self.training,
            "params": self.params,
            "folds": [asdict(f) for f in self.folds],
            "summary": {
                system: {m: {"mean": v[0], "std": v[1]} for m, v in metrics.items()}
                for system, metrics in self.summary().items()
            },
            "ceiling_customer_precision": float(np.nanmean([f.ceiling_cp for f in self.folds])),
        }


def _clean(metrics: dict[str, float]) -> dict[str, float]:
    return {k: float(v) for k, v in metrics.items()}


def run_backtest(
    client: Any,
    source: FeatureSource,
    config: BacktestConfig,
    training: TrainingSetConfig | None = None,
    params: TrainParams | None = None,
    targets: ThresholdTargets | None = None,
    first_day: date | None = None,
    log: Callable[[str], None] | None = None,
    spec: FeatureSpec = DEFAULT_SPEC,
    feed: pd.DataFrame | None = None,
) -> BacktestReport:
    """Every fold: build the training set at the fold's cutoff, train, choose thresholds on its
    validation days, score the assessment days with the model and the rules. `feed`: the label
    feed's events (`fraud_core.labels`), merged with the rows' own labels everywhere.

    `source(day)` gives a day's feature rows (None: no data); `client` is a
    `distributed.Client`. `first_day` (the first day with data) clips training windows; `spec`
    (the contract's) names the features, the primary entity and the rules baseline."""
    training = training_config(config, training or TrainingSetConfig())
    params = params or TrainParams()
    names = spec.feature_names
    report = BacktestReport(
        config={k: str(v) if isinstance(v, date) else v for k, v in asdict(config).items()},
        training=asdict(training),
        params=params.to_dict(),
    )
    for fold in plan_folds(config, training, first_day):
        w = fold.window
        ts = build_training_set(source, w, training, spec, feed)
        result = train_model(client, ts.train, ts.validation, names, params)
        valid_scores = predict(result.booster, ts.validation, names)
        thresholds = choose_thresholds(ts.validation["label"].to_numpy(), valid_scores, targets)

        test_frames = [f for d in fold.test_days if (f := source(d)) is not None]
        if not test_frames:
            raise ValueError(f"fold {fold.index}: no data in {fold.test_first}..{fold.test_last}")
        # assessed with final labels: the truth as known today, not at the cutoff
        test = apply_feed(pd.concat(test_frames, ignore_index=True), feed)
        test["label"] = test["is_fraud"].fillna(0).to_numpy(dtype=np.int8)
        known = _known_fraud_before(source, w, fold, spec.primary, feed)
        scores = {MODEL: predict(result.booster, test, names), RULES: rules_score(test, spec)}
        rules_thresholds = choose_thresholds(
            ts.validation["label"].to_numpy(), rules_score(ts.validation, spec), targets
        )
        k, p = config.k, spec.primary
        metrics = {
            MODEL: _clean(evaluate_scores(test, scores[MODEL], thresholds, k, known, entity=p)),
            RULES: _clean(
                evaluate_scores(test, scores[RULES], rules_thresholds, k, known, entity=p)
            ),
        }
        report.folds.append(
            FoldResult(
                index=fold.index,
                cutoff=w.cutoff.isoformat(),
                train=f"{w.train_first}..{w.train_last}",
                validation=f"{w.validation_first}..{w.validation_last}",
                test=f"{fold.test_first}..{fold.test_last}",
                train_rows=len(ts.train),
                test_rows=len(test),
                test_fraud=int(test["label"].sum()),
                best_iteration=result.best_iteration,
                thresholds=thresholds,
                metrics=metrics,
                ceiling_cp=customer_precision_at_k(
                    test, test["label"].to_numpy(dtype=float), k, known, entity=p
                )[0],
            )
        )
        if log is not None:
            m, r = metrics[MODEL], metrics[RULES]
            log(
                f"fold {fold.index}: cutoff {w.cutoff}, test {fold.test_first}..{fold.test_last}: "
                f"model AP {m['average_precision']:.3f} cp@{config.k} "
                f"{m[f'customer_precision_at_{config.k}']:.3f} | rules AP "
                f"{r['average_precision']:.3f} cp@{config.k} "
                f"{r[f'customer_precision_at_{config.k}']:.3f} "
                f"({len(ts.train):,} training rows, {result.train_seconds:.1f} s)"
            )
    return report


def _known_fraud_before(
    source: FeatureSource,
    window: TrainingWindow,
    fold: Fold,
    primary: str,
    feed: pd.DataFrame | None = None,
) -> pd.Series:
    """Per customer (the `primary` entity), the first fraud label that had arrived by the end of the assessment window
    (customer precision@k leaves a customer out from the day after that)."""
    last = fold.test_last + timedelta(days=1)
    parts = []
    day = window.train_first
    while day <= fold.test_last:
        frame = source(day)
        if frame is not None and len(frame):
            known_by = pd.Timestamp(last.isoformat(), tz="UTC")
            frame = apply_feed(frame, feed, known_by)
            label = labels_known_at(frame, known_by)
            rows = frame.loc[label == 1, [primary, "label_date"]]
            parts.append(rows.groupby(primary)["label_date"].min())
        day += timedelta(days=1)
    return merge_known_fraud(parts)
