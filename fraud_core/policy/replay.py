"""What a candidate policy would have done: replayed next to the active one over past orders,
judged with the labels known now, and held against guardrails before it may go live.

Orders come in one shape (`ReplayOrders`) from two sources. The decision log (`scored_orders`)
holds what the service saw: each order's features, score, model version, list hits and new
entities, exactly as served. Days the log does not cover (before the service ran, or orders that
never went through it) come from the offline features (`entity_features`) joined to the day's
validated orders (`raw_orders`) for their entity keys and attributes, scored by the deployed
model; they have no list hits (lists are live state), and an entity is new when its `first_seen`
feature says so.

Both policies decide every order through `Policy.decide`, with the card thresholds of the model
that scored it; the figures per policy (`PolicyFigures`) count decisions, amounts, the fraud
caught (declined or reviewed), the good orders declined, and per rule how many orders it
matched and decided and how many of those were fraud. "Fraud" and "good" are the labels known at
the replay: the newest days' chargebacks have not all arrived, so their good orders include some
fraud (the report says how old the youngest replayed day is).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field

import numpy as np
import pandas as pd
import pyarrow as pa

from fraud_core.policy.fields import OrderFacts, PolicyFields
from fraud_core.policy.policy import Policy

SOURCE_LOG, SOURCE_OFFLINE = "decision_log", "offline"
DECISIONS = ("approve", "review", "decline")


@dataclass(frozen=True)
class Guardrails:
    """How much worse than the active policy a candidate may be on the replayed orders."""

    max_decline_rate_increase: float = 0.005  # orders declined, share of all (+0.5 points)
    max_good_declined_rate_increase: float = 0.002  # good orders declined, share of good ones
    max_review_rate_increase: float = 0.01  # orders sent to review, share of all
    max_fraud_caught_drop: float = 0.05  # fraud amount declined or reviewed, relative drop
    min_orders: int = 500  # fewer replayed orders are no evidence: refused (override instead)

    def __post_init__(self) -> None:
        for name, value in asdict(self).items():
            if not (isinstance(value, int | float) and value >= 0 and math.isfinite(value)):
                raise ValueError(f"guardrail {name} must be a number >= 0, got {value!r}")

    def to_dict(self) -> dict[str, float]:
        return asdict(self)


@dataclass
class ReplayOrders:
    """Past orders as a policy reads them, one row each."""

    frame: pd.DataFrame  # order_id, t_s, amount, score, model_version, source, the string and
    # number names of `PolicyFields` that are not features, list_hits, new_kinds, is_fraud
    features: np.ndarray  # (rows, features) in the spec's order

    def __len__(self) -> int:
        return len(self.frame)


def log_orders(table: pa.Table, fields: PolicyFields, feature_names: list[str]) -> ReplayOrders:
    """Decision-log rows (`log_table`, as `scored_orders` stores them) as replay orders."""
    n = table.num_rows
    names = set(table.column_names)
    frame = pd.DataFrame(
        {
            "order_id": table.column("order_id").to_numpy(zero_copy_only=False),
            "t_s": table.column("t_s").to_numpy(),
            "amount": table.column("cents").to_numpy() / 100.0,
            "score": table.column("score").to_numpy(),
            "model_version": table.column("model_version").to_numpy(zero_copy_only=False),
            "source": SOURCE_LOG,
        }
    )
    for name in _strings(fields):
        frame[name] = (
            table.column(name).fill_null("").to_numpy(zero_copy_only=False) if name in names else ""
        )
    for name in _numbers(fields, feature_names):
        column = f"num:{name}"
        frame[name] = (
            table.column(column).to_numpy(zero_copy_only=False).astype(float)
            if column in names
            else np.nan
        )
    empty = [[] for _ in range(n)]
    frame["list_hits"] = table.column("list_hits").to_pylist() if "list_hits" in names else empty
    frame["new_kinds"] = table.column("new_kinds").to_pylist() if "new_kinds" in names else empty
    return ReplayOrders(frame, _feature_matrix(table.column("features"), len(feature_names)))


def _feature_matrix(column: pa.ChunkedArray, width: int) -> np.ndarray:
    """The list<double> feature column as a matrix; a row of another length (a model of other
    features) is all NaN rather than misaligned."""
    out = np.full((len(column), width), np.nan)
    row = 0
    for chunk in column.chunks:
        lengths = chunk.value_lengths().fill_null(0).to_numpy(zero_copy_only=False)
        values = chunk.flatten().to_numpy(zero_copy_only=False)
        if (lengths == width).all():
            out[row : row + len(chunk)] = values.reshape(len(chunk), width)
        else:
            starts = np.concatenate(([0], np.cumsum(lengths)[:-1]))
            for i, (start, length) in enumerate(zip(starts, lengths, strict=True)):
                if length == width:
                    out[row + i] = values[start : start + width]
        row += len(chunk)
    return out


def offline_orders(
    features: pd.DataFrame,
    orders: pd.DataFrame,
    fields: PolicyFields,
    feature_names: list[str],
    score: Callable[[np.ndarray], np.ndarray],
    model_version: str,
) -> ReplayOrders:
    """A day's offline feature rows joined to its validated orders (entity keys, attributes,
    time) and scored by `score` (the deployed model)."""
    # the order's own columns win over features of the same name (`order_amount` is both)
    clash = {c: f"{c}__order" for c in orders.columns if c != "order_id" and c in feature_names}
    joined = features[["order_id", *feature_names]].merge(
        orders.rename(columns=clash), on="order_id", how="inner"
    )

    def column(name: str) -> pd.Series:
        return joined[clash.get(name, name)]

    matrix = joined[feature_names].to_numpy(dtype=np.float64)
    times = pd.to_datetime(column("order_date"), utc=True)
    frame = pd.DataFrame(
        {
            "order_id": joined["order_id"].astype(str).to_numpy(),
            "t_s": (times - pd.Timestamp(0, tz="UTC")).dt.total_seconds().to_numpy(np.int64),
            "amount": column("order_amount").to_numpy(dtype=float),
            "score": score(matrix) if len(joined) else np.empty(0),
            "model_version": model_version,
            "source": SOURCE_OFFLINE,
        }
    )
    for name in _strings(fields):
        present = clash.get(name, name) in joined
        frame[name] = column(name).fillna("").astype(str).to_numpy() if present else ""
    for name in _numbers(fields, feature_names):
        present = clash.get(name, name) in joined
        frame[name] = column(name).to_numpy(dtype=float) if present else np.nan
    frame["list_hits"] = [[] for _ in range(len(frame))]
    first_seen = {
        kind: joined[f"{kind}__first_seen"].to_numpy() == 1.0
        for kind in fields.kinds
        if f"{kind}__first_seen" in joined
    }
    frame["new_kinds"] = [
        [kind for kind, new in first_seen.items() if new[i]] for i in range(len(frame))
    ]
    return ReplayOrders(frame, matrix)


def concat_orders(parts: list[ReplayOrders], width: int) -> ReplayOrders:
    parts = [p for p in parts if len(p)]
    if not parts:
        return ReplayOrders(pd.DataFrame(), np.empty((0, width)))
    return ReplayOrders(
        pd.concat([p.frame for p in parts], ignore_index=True),
        np.vstack([p.features for p in parts]),
    )


def _strings(fields: PolicyFields) -> list[str]:
    return list(fields.strings)


def _numbers(fields: PolicyFields, feature_names: list[str]) -> list[str]:
    """The number names that are neither features nor the order's own (amount, score, hour)."""
    skip = {"amount", "score", "hour", *feature_names}
    return [n for n in fields.numbers if n not in skip]


def order_facts(orders: ReplayOrders, fields: PolicyFields, feature_names: list[str]):
    """Each order's `OrderFacts`, as the service builds them when it scores."""
    frame = orders.frame
    strings = _strings(fields)
    numbers = _numbers(fields, feature_names)
    string_cols = [frame[n].to_numpy() for n in strings]
    number_cols = [frame[n].to_numpy(dtype=float) for n in numbers]
    amount = frame["amount"].to_numpy(dtype=float)
    score = frame["score"].to_numpy(dtype=float)
    hour = (frame["t_s"].to_numpy() % 86_400 // 3_600).astype(float)
    hits, new = frame["list_hits"].tolist(), frame["new_kinds"].tolist()
    rows = orders.features.tolist()
    for i in range(len(frame)):
        values: dict[str, float | str] = dict(zip(feature_names, rows[i], strict=True))
        for name, col in zip(strings, string_cols, strict=True):
            values[name] = col[i]
        for name, col in zip(numbers, number_cols, strict=True):
            values[name] = col[i]
        values["amount"], values["score"], values["hour"] = amount[i], score[i], hour[i]
        listed = frozenset(tuple(h.split(":", 1)) for h in hits[i])
        yield OrderFacts(values, listed, frozenset(new[i]))  # type: ignore[arg-type]


@dataclass
class RuleFigures:
    matched: int = 0
    decided: int = 0  # the orders this rule's action decided (first matching with an action)
    fraud: int = 0  # known fraud among the matched
    amount: float = 0.0  # amount of the matched orders


@dataclass
class PolicyFigures:
    version: str
    name: str
    orders: int
    decisions: dict[str, int]
    amounts: dict[str, float]  # per decision
    fraud: int  # known fraud among the orders
    good: int
    fraud_declined: int
    fraud_reviewed: int
    fraud_amount_caught: float  # declined or reviewed
    fraud_amount_missed: float  # approved
    good_declined: int
    decline_rate: float
    review_rate: float
    good_declined_rate: float  # of the good orders
    by_segment: dict[str, int] = field(default_factory=dict)
    rules: dict[str, RuleFigures] = field(default_factory=dict)

    def to_dict(self) -> dict:
        return asdict(self)


class _Tally:
    """One policy's decisions as they come, order by order: counts and sums only, so a replay
    of many days holds one day's orders at a time."""

    def __init__(self, policy: Policy) -> None:
        self.policy = policy
        self.rules = {r.name: RuleFigures() for r in policy.rules}
        self.decisions = dict.fromkeys(DECISIONS, 0)
        self.amounts = dict.fromkeys(DECISIONS, 0.0)
        self.by_segment: dict[str, int] = {}
        self.fraud_by = dict.fromkeys(DECISIONS, 0)
        self.fraud_amount_by = dict.fromkeys(DECISIONS, 0.0)
        self.orders = self.fraud = 0

    def add(self, facts: OrderFacts, thresholds: Mapping[str, float], fraud: bool, amount: float):
        outcome = self.policy.decide(facts, thresholds)
        d = outcome.decision
        self.orders += 1
        self.fraud += fraud
        self.decisions[d] += 1
        self.amounts[d] += amount
        if fraud:
            self.fraud_by[d] += 1
            self.fraud_amount_by[d] += amount
        self.by_segment[outcome.segment] = self.by_segment.get(outcome.segment, 0) + 1
        for name in outcome.rules:
            r = self.rules[name]
            r.matched += 1
            r.fraud += fraud
            r.amount += amount
        if outcome.decided_by in self.rules:
            self.rules[outcome.decided_by].decided += 1
        return d

    def figures(self) -> PolicyFigures:
        n, good = self.orders, self.orders - self.fraud
        good_declined = self.decisions["decline"] - self.fraud_by["decline"]
        for r in self.rules.values():
            r.amount = round(r.amount, 2)
        return PolicyFigures(
            version=self.policy.version,
            name=self.policy.name,
            orders=n,
            decisions=dict(self.decisions),
            amounts={k: round(v, 2) for k, v in self.amounts.items()},
            fraud=self.fraud,
            good=good,
            fraud_declined=self.fraud_by["decline"],
            fraud_reviewed=self.fraud_by["review"],
            fraud_amount_caught=round(
                self.fraud_amount_by["decline"] + self.fraud_amount_by["review"], 2
            ),
            fraud_amount_missed=round(self.fraud_amount_by["approve"], 2),
            good_declined=good_declined,
            decline_rate=self.decisions["decline"] / n if n else 0.0,
            review_rate=self.decisions["review"] / n if n else 0.0,
            good_declined_rate=good_declined / good if good else 0.0,
            by_segment=dict(sorted(self.by_segment.items())),
            rules=self.rules,
        )


@dataclass
class ReplayReport:
    active: PolicyFigures
    candidate: PolicyFigures
    guardrails: Guardrails
    breaches: list[str]  # each guardrail the candidate breaks, in words
    changed: dict[str, int]  # "approve->decline": orders whose decision changes
    sources: dict[str, int]  # orders per source
    days: list[str]

    @property
    def passed(self) -> bool:
        return not self.breaches

    def to_dict(self) -> dict:
        return {
            "passed": self.passed,
            "breaches": self.breaches,
            "changed": self.changed,
            "sources": self.sources,
            "days": self.days,
            "guardrails": self.guardrails.to_dict(),
            "active": self.active.to_dict(),
            "candidate": self.candidate.to_dict(),
        }


def judge(active: PolicyFigures, candidate: PolicyFigures, guardrails: Guardrails) -> list[str]:
    """The guardrails the candidate breaks relative to the active policy, in words."""
    g = guardrails
    out = []
    if candidate.orders < g.min_orders:
        out.append(
            f"only {candidate.orders} orders to replay (at least {g.min_orders}): no evidence; "
            "activate with an override and a reason if it must go live"
        )
        return out
    checks = (
        ("decline rate", candidate.decline_rate - active.decline_rate, g.max_decline_rate_increase),
        (
            "good orders declined",
            candidate.good_declined_rate - active.good_declined_rate,
            g.max_good_declined_rate_increase,
        ),
        ("review rate", candidate.review_rate - active.review_rate, g.max_review_rate_increase),
    )
    for what, increase, limit in checks:
        if increase > limit + 1e-12:
            out.append(f"{what} +{increase:.2%} (at most +{limit:.2%})")
    if active.fraud_amount_caught > 0:
        drop = 1 - candidate.fraud_amount_caught / active.fraud_amount_caught
        if drop > g.max_fraud_caught_drop + 1e-12:
            out.append(
                f"fraud amount caught -{drop:.1%} ({candidate.fraud_amount_caught:,.2f} vs "
                f"{active.fraud_amount_caught:,.2f}; at most -{g.max_fraud_caught_drop:.1%})"
            )
    return out


class Replayer:
    """Both policies over orders fed a day at a time (`add`), then `report`."""

    def __init__(
        self,
        active: Policy,
        candidate: Policy,
        fields: PolicyFields,
        feature_names: list[str],
        thresholds_of: Callable[[str], Mapping[str, float]],
    ) -> None:
        self.tallies = (_Tally(active), _Tally(candidate))
        self.fields = fields
        self.feature_names = feature_names
        self.thresholds_of = thresholds_of
        self.changed: dict[str, int] = {}
        self.sources: dict[str, int] = {}

    def add(self, orders: ReplayOrders) -> None:
        if not len(orders):
            return
        frame = orders.frame
        fraud = frame["is_fraud"].to_numpy(dtype=bool).tolist()
        amount = frame["amount"].to_numpy(dtype=float).tolist()
        versions = frame["model_version"].tolist()
        active, candidate = self.tallies
        facts = order_facts(orders, self.fields, self.feature_names)
        for i, f in enumerate(facts):
            thresholds = self.thresholds_of(versions[i])
            before = active.add(f, thresholds, fraud[i], amount[i])
            after = candidate.add(f, thresholds, fraud[i], amount[i])
            if before != after:
                key = f"{before}->{after}"
                self.changed[key] = self.changed.get(key, 0) + 1
        for source, n in frame["source"].value_counts().items():
            self.sources[str(source)] = self.sources.get(str(source), 0) + int(n)

    def report(self, guardrails: Guardrails, days: list[str] | None = None) -> ReplayReport:
        a, c = (t.figures() for t in self.tallies)
        return ReplayReport(
            active=a,
            candidate=c,
            guardrails=guardrails,
            breaches=judge(a, c, guardrails),
            changed=dict(sorted(self.changed.items())),
            sources=self.sources,
            days=days or [],
        )


def report_markdown(report: ReplayReport) -> str:
    """The replay as the lead analyst reads it in the Dagster UI."""
    a, c = report.active, report.candidate
    verdict = (
        "passes its guardrails" if report.passed else "is REFUSED: " + "; ".join(report.breaches)
    )
    lines = [
        f"Candidate **{c.name}** `{c.version}` vs active **{a.name}** `{a.version}` on "
        f"{c.orders:,} orders ({', '.join(f'{k} {v:,}' for k, v in report.sources.items())}): "
        f"{verdict}.",
        "",
        "| | active | candidate |",
        "|---|---:|---:|",
    ]
    rows = (
        ("approve", a.decisions["approve"], c.decisions["approve"]),
        ("review", a.decisions["review"], c.decisions["review"]),
        ("decline", a.decisions["decline"], c.decisions["decline"]),
        ("decline rate", f"{a.decline_rate:.2%}", f"{c.decline_rate:.2%}"),
        ("review rate", f"{a.review_rate:.2%}", f"{c.review_rate:.2%}"),
        ("reviewed amount", f"{a.amounts['review']:,.2f}", f"{c.amounts['review']:,.2f}"),
        ("declined amount", f"{a.amounts['decline']:,.2f}", f"{c.amounts['decline']:,.2f}"),
        ("fraud caught (declined / reviewed)", f"{a.fraud_declined} / {a.fraud_reviewed}",
         f"{c.fraud_declined} / {c.fraud_reviewed}"),
        ("fraud amount caught", f"{a.fraud_amount_caught:,.2f}", f"{c.fraud_amount_caught:,.2f}"),
        ("fraud amount missed", f"{a.fraud_amount_missed:,.2f}", f"{c.fraud_amount_missed:,.2f}"),
        ("good orders declined", f"{a.good_declined} ({a.good_declined_rate:.2%})",
         f"{c.good_declined} ({c.good_declined_rate:.2%})"),
    )  # fmt: skip
    lines += [f"| {name} | {x} | {y} |" for name, x, y in rows]
    lines += ["", "Per rule of the candidate:", "", "| rule | matched | decided | fraud | amount |"]
    lines += ["|---|---:|---:|---:|---:|"]
    for name, r in c.rules.items():
        lines.append(f"| {name} | {r.matched:,} | {r.decided:,} | {r.fraud:,} | {r.amount:,.2f} |")
    if report.changed:
        lines += ["", "Decisions that change: " + ", ".join(
            f"{k} {v:,}" for k, v in report.changed.items()
        )]  # fmt: skip
    return "\n".join(lines)
