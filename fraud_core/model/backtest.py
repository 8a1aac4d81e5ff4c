"""Prequential backtest: how the production training code would have done, fold by fold, on days
it had not seen, next to a hand-written rules baseline.

The folds are `fraud_core.model.folds`': each fold's training set is built exactly as the
`training_set` asset builds one at the fold's cutoff, the model is trained with the same
`train_model` and calibrated like `fraud_model`'s, and the assessment days are scored with their
final labels.

Default versus selected hyperparameters: with `compare` (given parameters) or `nested` (a model
selection run inside every fold, on days before its cutoff with the labels known at the cutoff,
so a fold's assessment days are never seen by its selection), each fold also trains the selected
model, and the report gives both systems' metrics in the same folds and the paired AP
differences with their 95 % interval.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from datetime import date
from typing import Any

import numpy as np
import pandas as pd

from fraud_core.features.spec import DEFAULT_SPEC, FeatureSpec
from fraud_core.model.candidate import decide
from fraud_core.model.dataset import (
    FeatureSource,
    TrainingSetConfig,
    build_training_set,
    resample_negatives,
)
from fraud_core.model.decisions import ThresholdTargets, choose_thresholds
from fraud_core.model.evaluate import DEFAULT_K, customer_precision_at_k, evaluate_scores
from fraud_core.model.folds import (
    FoldConfig,
    assessment_frame,
    known_fraud_before,
    plan_folds,
    training_config,
)
from fraud_core.model.selection import (
    SEARCH_SPACE,
    SelectionConfig,
    Setting,
    nested_end,
    paired_difference,
    run_selection,
)
from fraud_core.model.train import TrainParams, margins, train_model

MODEL = "model"
RULES = "rules"
SELECTED = "selected"  # the compared hyperparameters, given or selected inside each fold
HEADLINE = ("average_precision", "roc_auc", f"customer_precision_at_{DEFAULT_K}")


BacktestConfig = FoldConfig  # end, train_days, delay_days, test_days, folds, k


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
    metrics: dict[str, dict[str, float]]  # MODEL / RULES (/ SELECTED) -> metrics on the test days
    ceiling_cp: float = float("nan")  # customer precision@k of a perfect ranking
    selected: dict[str, Any] = field(default_factory=dict)  # the compared params, where from


@dataclass
class BacktestReport:
    config: dict[str, Any]
    training: dict[str, Any]
    params: dict[str, Any]
    folds: list[FoldResult] = field(default_factory=list)
    compared: str = ""  # "", "given" or "nested": how the SELECTED system's params were chosen

    @property
    def systems(self) -> tuple[str, ...]:
        return (MODEL, SELECTED, RULES) if self.compared else (MODEL, RULES)

    def summary(self) -> dict[str, dict[str, tuple[float, float]]]:
        """system -> metric -> (mean, std) over folds."""
        out: dict[str, dict[str, tuple[float, float]]] = {}
        for system in self.systems:
            out[system] = {}
            for metric in HEADLINE:
                values = np.array([f.metrics[system][metric] for f in self.folds], dtype=float)
                values = values[~np.isnan(values)]
                mean = float(values.mean()) if len(values) else float("nan")
                std = float(values.std(ddof=1)) if len(values) > 1 else 0.0
                out[system][metric] = (mean, std)
        return out

    def paired_ap(self) -> dict[str, float] | None:
        """SELECTED minus MODEL (the defaults) AP over the folds: mean, standard error and
        95 % interval; None without a compared system."""
        if not self.compared:
            return None
        ap = "average_precision"
        return paired_difference(
            np.array([f.metrics[SELECTED][ap] for f in self.folds], dtype=float),
            np.array([f.metrics[MODEL][ap] for f in self.folds], dtype=float),
        )

    def result_line(self) -> str:
        s = self.summary()[MODEL]
        return (
            f"RESULT ap={s['average_precision'][0]:.4f} auc={s['roc_auc'][0]:.4f} "
            f"cp{DEFAULT_K}={s[f'customer_precision_at_{DEFAULT_K}'][0]:.4f}"
        )

    def to_markdown(self) -> str:
        k = DEFAULT_K
        selected = self.compared != ""
        lines = [
            f"| fold | cutoff | train days | test days | test orders (fraud) | "
            f"model AP | {'selected AP | ' if selected else ''}rules AP | model AUC | rules AUC "
            f"| model cp@{k} | rules cp@{k} |",
            "|---|---|---|---|---|---|---|---|---|---|---|" + ("---|" if selected else ""),
        ]
        for f in self.folds:
            m, r = f.metrics[MODEL], f.metrics[RULES]
            sel = f"{f.metrics[SELECTED]['average_precision']:.3f} | " if selected else ""
            lines.append(
                f"| {f.index} | {f.cutoff} | {f.train} | {f.test} | {f.test_rows:,} "
                f"({f.test_fraud:,}) | {m['average_precision']:.3f} | {sel}"
                f"{r['average_precision']:.3f} | {m['roc_auc']:.3f} | {r['roc_auc']:.3f} | "
                f"{m[f'customer_precision_at_{k}']:.3f} | {r[f'customer_precision_at_{k}']:.3f} |"
            )
        s = self.summary()
        lines += ["", f"| system | AP | ROC AUC | customer precision@{k} |", "|---|---|---|---|"]
        for system in self.systems:
            cells = [f"{s[system][m][0]:.3f} ± {s[system][m][1]:.3f}" for m in HEADLINE]
            lines.append(f"| {system} | " + " | ".join(cells) + " |")
        gain = self.paired_ap()
        if gain is not None and gain["n"]:
            lines.append(
                f"\nSelected ({self.compared}) minus default AP over {gain['n']} folds: "
                f"{gain['mean']:+.4f}, 95 % interval {gain['low']:+.4f}..{gain['high']:+.4f}."
            )
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
            "compared": self.compared,
            "folds": [asdict(f) for f in self.folds],
            "summary": {
                system: {m: {"mean": v[0], "std": v[1]} for m, v in metrics.items()}
                for system, metrics in self.summary().items()
            },
            "selected_minus_default_ap": self.paired_ap(),
            "ceiling_customer_precision": float(np.nanmean([f.ceiling_cp for f in self.folds])),
        }


def _fit(
    client: Any,
    fold_data: tuple[pd.DataFrame, pd.DataFrame, pd.Series, int, str],
    train: pd.DataFrame,
    params: TrainParams,
    names: list[str],
    targets: ThresholdTargets | None,
    switched_off: tuple[str, ...] = (),
) -> tuple[Any, dict[str, float], dict[str, float]]:
    """Train on `train`, calibrate and choose thresholds on the validation rows as `fraud_model`
    does, and evaluate on the assessment rows: (result, thresholds, metrics)."""
    validation, test, known, k, primary = fold_data
    result = train_model(client, train, validation, names, params, switched_off)
    _, calibration, _, choice = decide(result.booster, validation, names, targets)
    thresholds = choice.thresholds
    scores = calibration.apply(margins(result.booster, test, names))
    return result, thresholds, evaluate_scores(test, scores, thresholds, k, known, entity=primary)


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
    *,
    compare: dict[str, Any] | None = None,
    nested: SelectionConfig | None = None,
    space: tuple[Setting, ...] = SEARCH_SPACE,
) -> BacktestReport:
    """Every fold: build the training set at the fold's cutoff, train, calibrate and choose
    thresholds on its validation days, score the assessment days with the model and the rules.
    `feed`: the label feed's events (`fraud_core.labels`), merged with the rows' own labels
    everywhere.

    `compare` ({"params": TrainParams fields, "negative_rate": rate or None}, e.g. a selection's
    selected setting) or `nested` (a selection config whose `end` is replaced per fold) adds the
    SELECTED system, trained in the same folds (`space`: the nested selection's settings).

    `source(day)` gives a day's feature rows (None: no data); `client` is a
    `distributed.Client`. `first_day` (the first day with data) clips training windows; `spec`
    (the contract's) names the features, the primary entity and the rules baseline (and the
    switched-off features no model may use)."""
    if compare is not None and nested is not None:
        raise ValueError("give either compare (fixed parameters) or nested (a selection), not both")
    base = TrainingSetConfig() if training is None else training
    training = training_config(config, base)
    params = params or TrainParams()
    names = spec.feature_names
    report = BacktestReport(
        config={k: str(v) if isinstance(v, date) else v for k, v in asdict(config).items()},
        training=asdict(training),
        params=params.to_dict(),
        compared="nested" if nested is not None else "given" if compare is not None else "",
    )
    for fold in plan_folds(config, training, first_day):
        w = fold.window
        ts = build_training_set(source, w, training, spec, feed)
        test = assessment_frame(source, fold, feed)  # final labels: the truth as known today
        known = known_fraud_before(source, w, fold, spec.primary, feed)
        k, p = config.k, spec.primary
        valid_labels = ts.validation["label"].to_numpy()

        fold_data = (ts.validation, test, known, k, p)
        result, thresholds, model_metrics = _fit(
            client, fold_data, ts.train, params, names, targets, spec.switched_off
        )
        rules_thresholds = choose_thresholds(
            valid_labels, rules_score(ts.validation, spec), targets
        )
        metrics = {
            MODEL: _clean(model_metrics),
            RULES: _clean(
                evaluate_scores(test, rules_score(test, spec), rules_thresholds, k, known, entity=p)
            ),
        }
        chosen: dict[str, Any] = {}
        if nested is not None:
            inner = run_selection(
                client,
                source,
                replace(nested, end=nested_end(w.cutoff, nested.delay_days)),
                base,
                params,
                space,
                first_day=first_day,
                spec=spec,
                feed=feed,
                known_by=w.cutoff_ts,
            )
            setting = inner.selected_setting()
            chosen = {
                "setting": inner.selected,
                "params": setting["params"],
                "negative_rate": setting["negative_rate"],
                "reason": inner.reason,
                "days_read": [inner.days_read[0], inner.days_read[-1]],
                "wall_seconds": inner.wall_seconds,
            }
        elif compare is not None:
            chosen = {"setting": "given", **compare}
        if chosen:
            rate = chosen.get("negative_rate")
            train = ts.train
            if rate is not None:
                train = resample_negatives(train, rate, training.negative_rate, training.seed)
            selected_params = TrainParams(**chosen["params"])
            _, _, selected_metrics = _fit(
                client, fold_data, train, selected_params, names, targets, spec.switched_off
            )
            metrics[SELECTED] = _clean(selected_metrics)
        report.folds.append(
            FoldResult(
                index=fold.index,
                cutoff=w.cutoff.isoformat(),
                train=f"{w.train_first}..{w.train_last}",
                validation=f"{w.validation_first}..{w.validation_last}",
                test=fold.test,
                train_rows=len(ts.train),
                test_rows=len(test),
                test_fraud=int(test["label"].sum()),
                best_iteration=result.best_iteration,
                thresholds=thresholds,
                metrics=metrics,
                ceiling_cp=customer_precision_at_k(
                    test, test["label"].to_numpy(dtype=float), k, known, entity=p
                )[0],
                selected=chosen,
            )
        )
        if log is not None:
            m, r = metrics[MODEL], metrics[RULES]
            extra = (
                f" | selected ({chosen['setting']}) AP {metrics[SELECTED]['average_precision']:.3f}"
                if chosen
                else ""
            )
            log(
                f"fold {fold.index}: cutoff {w.cutoff}, test {fold.test}: "
                f"model AP {m['average_precision']:.3f} cp@{config.k} "
                f"{m[f'customer_precision_at_{config.k}']:.3f} | rules AP "
                f"{r['average_precision']:.3f} cp@{config.k} "
                f"{r[f'customer_precision_at_{config.k}']:.3f}{extra} "
                f"({len(ts.train):,} training rows, {result.train_seconds:.1f} s)"
            )
    return report
