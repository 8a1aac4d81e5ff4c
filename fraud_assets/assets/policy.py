"""`policy_replay` and `active_policy`: a candidate decision policy is replayed next to the active
one over the last days of orders, refused by a blocking check when it breaks a guardrail, and
made active only when it holds (see `fraud_core.policy.replay`).

A candidate comes from `fraud policy submit` or `POST /v1/policy`; `policy_candidate_sensor`
launches `policy_job` when one appears. A refused candidate is recorded in the audit trail and
stays a candidate; an override (`fraud policy activate VERSION --reason …`) is the way past a
guardrail, and is audited as such.
"""

# No `from __future__ import annotations`: Dagster checks the `context` annotation at
# definition time.
import functools
import json

import pandas as pd
from dagster import (
    AssetCheckResult,
    AssetCheckSeverity,
    AssetCheckSpec,
    AssetExecutionContext,
    Config,
    Failure,
    MaterializeResult,
    MetadataValue,
    asset,
)
from pydantic import Field

from fraud_assets.lib.label_feed import known_labels, read_feed
from fraud_assets.resources import DataLayoutResource
from fraud_core.freshness import monitoring_clock
from fraud_core.model.artifact import current_version, read_card
from fraud_core.policy import PolicyError, PolicyFields, default_policy
from fraud_core.policy.registry import ACTIVE, CANDIDATE, PolicyRegistry
from fraud_core.policy.replay import (
    Guardrails,
    Replayer,
    ReplayOrders,
    concat_orders,
    log_orders,
    offline_orders,
    report_markdown,
)
from fraud_core.scoring.scorer import load_scorer
from fraud_core.storage import DataLayout, as_path, atomic_path, read_parquet, read_schema

POLICY_WITHIN_GUARDRAILS = "policy_within_guardrails"
LATEST_REPLAY = "latest.json"
_G = Guardrails()


class PolicyReplayConfig(Config):
    days: int = Field(default=14, description="Replay the last this many days with orders.")
    max_decline_rate_increase: float = Field(
        default=_G.max_decline_rate_increase,
        description="Refuse when the share of orders declined grows by more than this.",
    )
    max_good_declined_rate_increase: float = Field(
        default=_G.max_good_declined_rate_increase,
        description="Refuse when the share of good (not known fraud) orders declined grows by "
        "more than this.",
    )
    max_review_rate_increase: float = Field(
        default=_G.max_review_rate_increase,
        description="Refuse when the share of orders sent to review grows by more than this.",
    )
    max_fraud_caught_drop: float = Field(
        default=_G.max_fraud_caught_drop,
        description="Refuse when the fraud amount declined or reviewed falls by more than this "
        "share.",
    )
    min_orders: int = Field(
        default=_G.min_orders,
        description="Refuse when fewer orders could be replayed (no evidence either way).",
    )

    def guardrails(self) -> Guardrails:
        return Guardrails(
            max_decline_rate_increase=self.max_decline_rate_increase,
            max_good_declined_rate_increase=self.max_good_declined_rate_increase,
            max_review_rate_increase=self.max_review_rate_increase,
            max_fraud_caught_drop=self.max_fraud_caught_drop,
            min_orders=self.min_orders,
        )


def _raw_orders(data: DataLayout, day, wanted: list[str]) -> pd.DataFrame:
    path = as_path(data.raw_orders(day))
    names = set(read_schema(path).names)
    columns = ["order_id", "order_date", "order_amount", *[c for c in wanted if c in names]]
    return read_parquet(path, columns=list(dict.fromkeys(columns))).to_pandas()


def _day_orders(data: DataLayout, day, fields: PolicyFields, names: list[str], scorer):
    """A day's orders: the decision log's, then the offline rows of orders it does not hold."""
    parts: list[ReplayOrders] = []
    logged: set[str] = set()
    log_path = as_path(data.scored_orders(day))
    if log_path.exists():
        part = log_orders(read_parquet(log_path), fields, names)
        logged = set(part.frame["order_id"])
        parts.append(part)
    features_path = as_path(data.entity_features(day))
    if scorer is not None and features_path.exists() and as_path(data.raw_orders(day)).exists():
        features = read_parquet(features_path, columns=["order_id", *names]).to_pandas()
        features = features[~features["order_id"].isin(logged)]
        if len(features):
            wanted = [*fields.strings, *(n for n in fields.numbers if n not in names)]
            orders = _raw_orders(data, day, wanted)
            parts.append(
                offline_orders(features, orders, fields, names, scorer.predict, scorer.version)
            )
    return concat_orders(parts, len(names))


def _empty_result(reason: str, passed: bool) -> MaterializeResult:
    return MaterializeResult(
        metadata={"candidate": "", "reason": reason},
        check_results=[
            AssetCheckResult(
                check_name=POLICY_WITHIN_GUARDRAILS,
                passed=passed,
                severity=AssetCheckSeverity.ERROR,
                description=reason,
            )
        ],
    )


@asset(
    deps=["scored_orders", "entity_features", "labels"],
    group_name="policy",
    kinds={"pandas", "json"},
    check_specs=[
        AssetCheckSpec(
            POLICY_WITHIN_GUARDRAILS,
            asset="policy_replay",
            blocking=True,
            description="The candidate policy, replayed on the same orders as the active one, "
            "declines, reviews and lets fraud through within the guardrails of the config.",
        )
    ],
    description=(
        "Replays the candidate decision policy next to the active one over the last days of "
        "orders: the decision log's where it covers them (features, score, list hits as served), "
        "else the offline features scored by the deployed model; labels as known now. Reports "
        "approvals, reviews and declines with their amounts, fraud caught and missed, good "
        "orders declined, and per rule what it matched and decided. Its blocking check refuses "
        "a candidate that breaks a guardrail (active_policy then does not run)."
    ),
)
def policy_replay(
    context: AssetExecutionContext, config: PolicyReplayConfig, layout: DataLayoutResource
) -> MaterializeResult:
    data = layout.layout()
    contract = layout.contract()
    fields = PolicyFields.of(contract)
    names = list(contract.spec.feature_names)
    registry = PolicyRegistry(data)
    try:
        guardrails = config.guardrails()
        pointer = registry.pointer(CANDIDATE)
        active_pointer = registry.pointer(ACTIVE)
        active = registry.active(fields) or default_policy(fields)
        candidate = registry.read(pointer.version, fields) if pointer else None
    except (PolicyError, ValueError) as err:
        raise Failure(str(err)) from err
    if candidate is None:
        return _empty_result("no candidate policy: submit one with `fraud policy submit`", True)
    if active_pointer is not None and candidate.version == active_pointer.version:
        return _empty_result(f"the candidate {candidate.version} is already active", True)

    models = as_path(data.models)
    deployed = current_version(models)
    scorer = load_scorer(models, deployed, contract) if deployed else None

    @functools.cache
    def thresholds_of(version: str) -> dict[str, float]:
        return dict(read_card(models, version).thresholds)

    days = sorted(set(data.scored_orders_days()) | set(data.entity_features_days()))
    days = days[-config.days :]
    feed = read_feed(data)
    clock = monitoring_clock(data)
    replayer = Replayer(active, candidate, fields, names, thresholds_of)
    for day in days:
        orders = _day_orders(data, day, fields, names, scorer)
        if not len(orders):
            continue
        ids = orders.frame["order_id"].astype(str)
        known = known_labels(data, day, ids, feed, clock)
        orders.frame["is_fraud"] = known["is_fraud"].to_numpy() == 1
        replayer.add(orders)
        context.log.info(f"{day}: {len(orders):,} orders replayed")
    report = replayer.report(guardrails, [d.isoformat() for d in days])
    markdown = report_markdown(report)
    out = as_path(data.policy_replays)
    # which submission was judged: policy_candidate_sensor does not replay it again
    record = {**report.to_dict(), "candidate_since": pointer.since}
    for path in (out / f"{candidate.version}.json", out / LATEST_REPLAY):
        with atomic_path(path) as tmp:
            tmp.write_text(json.dumps(record, indent=1))
    actor = f"dagster:{context.run.run_id}"
    if not report.passed:
        registry.refuse(candidate.version, actor, "; ".join(report.breaches))
        context.log.warning(f"policy {candidate.version} refused: {'; '.join(report.breaches)}")
    c, a = report.candidate, report.active
    return MaterializeResult(
        metadata={
            "candidate": candidate.version,
            "candidate_name": candidate.name,
            "active": active.version,
            "orders": c.orders,
            "sources": MetadataValue.json(report.sources),
            "days": f"{days[0]}..{days[-1]}" if days else "none",
            "decline_rate": MetadataValue.float(c.decline_rate),
            "decline_rate_active": MetadataValue.float(a.decline_rate),
            "review_rate": MetadataValue.float(c.review_rate),
            "good_declined_rate": MetadataValue.float(c.good_declined_rate),
            "fraud_amount_caught": MetadataValue.float(c.fraud_amount_caught),
            "fraud_amount_caught_active": MetadataValue.float(a.fraud_amount_caught),
            "changed": MetadataValue.json(report.changed),
            "report": MetadataValue.md(markdown),
            "report_path": MetadataValue.path(str(out / f"{candidate.version}.json")),
        },
        check_results=[
            AssetCheckResult(
                check_name=POLICY_WITHIN_GUARDRAILS,
                passed=report.passed,
                severity=AssetCheckSeverity.ERROR,
                description=(
                    "within the guardrails"
                    if report.passed
                    else "refused: " + "; ".join(report.breaches)
                ),
                metadata={
                    "breaches": MetadataValue.json(report.breaches),
                    "guardrails": MetadataValue.json(guardrails.to_dict()),
                },
            )
        ],
    )


@asset(
    deps=[policy_replay],
    group_name="policy",
    kinds={"json"},
    description=(
        "The policy the scoring service applies (the registry's active pointer; the service "
        "hot-reloads it). Runs after policy_replay's blocking check passed: makes the replayed "
        "candidate active, audited."
    ),
)
def active_policy(context: AssetExecutionContext, layout: DataLayoutResource) -> MaterializeResult:
    data = layout.layout()
    registry = PolicyRegistry(data)
    candidate = registry.pointer(CANDIDATE)
    before = registry.pointer(ACTIVE)
    replayed = as_path(data.policy_replays) / LATEST_REPLAY
    judged = json.loads(replayed.read_text()) if replayed.exists() else {}
    if candidate is None or (before is not None and before.version == candidate.version):
        action, now = "unchanged", before.version if before else "default"
    elif judged.get("candidate", {}).get("version") != candidate.version or not judged.get(
        "passed"
    ):
        raise Failure(
            f"the candidate {candidate.version} has no passing replay: materialize "
            "policy_replay first"
        )
    else:
        registry.point(
            ACTIVE,
            candidate.version,
            f"dagster:{context.run.run_id}",
            f"replay passed: {judged['candidate']['orders']} orders",
        )
        action, now = "activated", candidate.version
        context.log.info(f"policy {now} is active (was {before.version if before else 'default'})")
    return MaterializeResult(
        metadata={
            "version": now,
            "previous_version": before.version if before else "default",
            "action": action,
        }
    )
