"""`deployed_model`: the model the scoring service serves (the registry's `current` pointer), the
blocking promotion gate in front of it, and rollback.

The gate is a blocking check on `fraud_model`: when the newest model is below the AP floor or worse
than the champion on the same validation orders, `deployed_model` does not run and the champion
keeps serving. Materializing `deployed_model` alone with a `version` re-points `current` to that
version: a rollback (the CLI's `fraud model rollback VERSION` does the same).
"""

# No `from __future__ import annotations`: Dagster checks the `context` annotation at
# definition time.

from dagster import (
    AssetCheckExecutionContext,
    AssetCheckResult,
    AssetCheckSeverity,
    AssetExecutionContext,
    Config,
    ConfigurableResource,
    Failure,
    MaterializeResult,
    MetadataValue,
    asset,
    asset_check,
)
from pydantic import Field

from fraud_assets.assets.fraud_model import fraud_model, quality_metadata
from fraud_assets.assets.model_performance import MATURE_DAYS
from fraud_assets.lib.label_feed import known_labels, read_feed
from fraud_assets.resources import DataLayoutResource
from fraud_core import audit
from fraud_core.freshness import monitoring_clock
from fraud_core.model.artifact import (
    CHALLENGER_FILE,
    ModelIntegrityError,
    check_version,
    current_version,
    load_version,
    read_card,
    set_challenger,
    set_current,
)
from fraud_core.model.dataset import VALIDATION, Manifest, read_latest_manifest
from fraud_core.model.evaluate import DEFAULT_K
from fraud_core.model.promotion import (
    CANDIDATE_FILE,
    GateDecision,
    GatePolicy,
    candidate_version,
    gate_candidate,
    promote,
    read_decision,
    record_decision,
)
from fraud_core.model.shadow import ShadowVerdict, shadow_verdict
from fraud_core.model.summary import deployment_markdown, rounded
from fraud_core.performance import maturity
from fraud_core.storage import DataLayout, as_path, read_parquet, read_schema

CANDIDATE_NOT_WORSE = "fraud_model_not_worse_than_champion"
DEPLOYED_MODEL_VERIFIES = "deployed_model_verifies"

_GATE = GatePolicy()


class PromotionGate(ConfigurableResource):
    """The promotion policy, one object for the gate check and for `deployed_model`."""

    min_average_precision: float = Field(
        default=_GATE.min_average_precision,
        description="A model below this validation AP is never deployed.",
    )
    tolerance: float = Field(
        default=_GATE.tolerance,
        description="How much lower than the champion's AP (same validation orders) is accepted.",
    )
    confidence: float = Field(
        default=_GATE.confidence,
        description="Refuse only when the candidate is worse beyond the tolerance with this "
        "confidence (paired bootstrap over the validation orders).",
    )
    bootstrap_rounds: int = Field(
        default=_GATE.bootstrap_rounds,
        description="Bootstrap resamples; 0 compares the two AP point estimates instead.",
    )

    shadow_days: int = Field(
        default=0,
        description="When > 0, a new model is promoted only after it was scored in shadow "
        "(the challenger) on at least this many matured served days, with a watched-order AP at "
        "least the champion's minus the tolerance. 0: the validation gate alone.",
    )
    shadow_refused: bool = Field(
        default=True,
        description="A candidate the gate refuses (or that still needs shadow evidence) becomes "
        "the challenger: the service scores it in shadow beside the champion.",
    )

    def policy(self) -> GatePolicy:
        return GatePolicy(
            self.min_average_precision, self.tolerance, self.confidence, self.bootstrap_rounds
        )


def _candidate(data: DataLayout) -> str:
    version = candidate_version(data.models)
    if version is None:
        raise Failure(f"no trained model in {data.models}: materialize fraud_model first")
    try:
        return check_version(version)
    except ModelIntegrityError as err:
        raise Failure(f"{data.models / CANDIDATE_FILE}: {err}") from err


def _validation(data: DataLayout, version: str) -> tuple[Manifest, object]:
    """The validation rows the candidate was evaluated on (the latest training set)."""
    manifest = read_latest_manifest(data)
    card = read_card(data.models, version)
    if card.data_versions.get("training_set", {}).get("fingerprint") != manifest.fingerprint:
        raise Failure(
            f"model {version} was not trained on the latest training set "
            f"({manifest.fingerprint}): materialize fraud_model again"
        )
    return manifest, manifest.read_role(VALIDATION)


def _decide(data: DataLayout, gate: PromotionGate) -> GateDecision:
    version = _candidate(data)
    manifest, validation = _validation(data, version)
    decision = gate_candidate(
        data.models,
        version,
        validation,
        gate.policy(),
        known_fraud_since=manifest.known_fraud_since(),
        k=DEFAULT_K,
        entity=manifest.primary,
    )
    record_decision(data.models, decision)
    return decision


def _shadow_verdict(data: DataLayout, version: str, gate: PromotionGate) -> ShadowVerdict:
    """The challenger's record on matured served days (`fraud_core.model.shadow`)."""
    clock = monitoring_clock(data)
    feed = read_feed(data)
    days = []
    columns = ["order_id", "score", "decision", "shadow_version", "shadow_score"]
    for day in data.scored_orders_days():
        path = as_path(data.scored_orders(day))
        if maturity(day, clock) < MATURE_DAYS or "shadow_version" not in read_schema(path).names:
            continue
        frame = read_parquet(path, columns=columns).to_pandas()
        ids = frame["order_id"].astype(str)
        frame["is_fraud"] = known_labels(data, day, ids, feed, clock)["is_fraud"].to_numpy() == 1
        days.append(frame)
    return shadow_verdict(version, days, gate.shadow_days, gate.tolerance)


def _update_challenger(
    context: AssetExecutionContext, data: DataLayout, gate: PromotionGate, decision: GateDecision
) -> None:
    """A refused candidate goes into shadow (`shadow_refused`); a promoted one leaves it."""
    registry = data.models
    shadow = current_version(registry, CHALLENGER_FILE)
    served = current_version(registry)
    candidate = decision.candidate_version
    if candidate == served and shadow == candidate:
        after, why = None, "promoted: no longer a challenger"
    elif candidate != served and gate.shadow_refused and shadow != candidate:
        after, why = candidate, f"not promoted ({decision.summary}): scored in shadow"
    else:
        return
    set_challenger(registry, after, why)
    audit.append(
        data.audit,
        audit.AuditRecord(
            "model.challenger", f"dagster:{context.run.run_id}", "model:challenger", why,
            shadow, after,
        ),
    )  # fmt: skip
    context.log.info(f"challenger: {after or 'none'} (was {shadow or 'none'})")


def _decision_metadata(decision: GateDecision) -> dict:
    return {
        "candidate": decision.candidate_version,
        "candidate_ap": MetadataValue.float(rounded(decision.candidate_ap)),
        "champion": decision.champion_version or "none",
        "champion_ap": MetadataValue.float(rounded(decision.champion_ap)),
        "reasons": MetadataValue.md("\n".join(f"- {r}" for r in decision.reasons)),
    }


@asset_check(
    asset=fraud_model,
    name=CANDIDATE_NOT_WORSE,
    blocking=True,
    description="The promotion gate: the newest model's validation AP is at least the floor and "
    "not worse than the deployed champion's on the same validation orders (within the "
    "tolerance). When it fails, deployed_model does not run and the champion keeps serving.",
)
def fraud_model_not_worse_than_champion(
    context: AssetCheckExecutionContext, layout: DataLayoutResource, gate: PromotionGate
) -> AssetCheckResult:
    decision = _decide(layout.layout(), gate)
    if not decision.passed:
        context.log.warning(f"model {decision.candidate_version} refused: {decision.summary}")
    return AssetCheckResult(
        passed=decision.passed,
        severity=AssetCheckSeverity.ERROR,
        metadata=_decision_metadata(decision),
        description=decision.summary,
    )


class DeployModelConfig(Config):
    version: str | None = Field(
        default=None,
        description="Serve this registry version (a rollback, or pinning a known model): the "
        "gate is skipped. Empty: promote the newest trained model if it passes the gate.",
    )
    reason: str = Field(default="", description="Why, for the registry's record.")


@asset(
    deps=[fraud_model],
    group_name="model",
    kinds={"xgboost"},
    description=(
        "The model the scoring service serves: the registry's `current` pointer, which the "
        "service watches and hot-reloads. Only a model that passed the promotion gate gets here; "
        "a refused one leaves the champion in place. Its summary puts the candidate beside the "
        "model that was serving, figure by figure on the same validation orders, with the "
        "gate's verdict. To roll back, materialize this asset alone with `version` set to an "
        "earlier version from the registry."
    ),
)
def deployed_model(
    context: AssetExecutionContext,
    config: DeployModelConfig,
    layout: DataLayoutResource,
    gate: PromotionGate,
) -> MaterializeResult:
    data = layout.layout()
    registry = data.models
    try:
        before = current_version(registry)
    except ModelIntegrityError as err:
        if not config.version:
            raise Failure(
                f"{err}: the champion is unknown; roll back to a known version (materialize "
                "deployed_model with `version`) before promoting"
            ) from err
        context.log.warning(f"replacing a current pointer that names no version: {err}")
        before = None
    metadata: dict = {}
    decision: GateDecision | None = None
    if config.version:
        try:
            load_version(registry, config.version)  # refuse a version that does not verify
        except (FileNotFoundError, ModelIntegrityError) as err:
            raise Failure(f"cannot serve {config.version}: {err}") from err
        set_current(registry, config.version, reason=f"rollback: {config.reason or 'Dagster'}")
        context.log.info(f"serving {config.version} (was {before})")
        action = "rollback" if config.version != before else "unchanged"
    else:
        version = _candidate(data)
        decision = read_decision(registry, version)
        if decision is None or decision.champion_version != before:
            decision = _decide(data, gate)  # the check did not run for this champion
        if decision.passed and gate.shadow_days > 0 and before is not None and version != before:
            verdict = _shadow_verdict(data, version, gate)
            metadata["shadow"] = MetadataValue.json(verdict.to_dict())
            decision.reasons.append(verdict.reason)
            decision.passed = verdict.passed
        promote(registry, decision)
        _update_challenger(context, data, gate, decision)
        metadata.update(_decision_metadata(decision))
        if decision.passed:
            action = "promoted" if version != before else "unchanged"
        else:
            action = "refused"
            context.log.warning(f"kept {before}: {version} refused ({decision.summary})")
    now = current_version(registry)
    if now is None:
        raise Failure("no model is deployed: the first model did not pass the gate")
    if now != before:
        audit.append(
            data.audit,
            audit.AuditRecord(
                action="model.promote",
                actor=f"dagster:{context.run.run_id}",
                target="model",
                reason=f"{action}: {config.reason or (decision.summary if decision else '')}",
                before=before,
                after=now,
            ),
        )
    card = read_card(registry, now)
    summary = deployment_markdown(card, action, before, decision, DEFAULT_K, config.reason)
    return MaterializeResult(
        metadata={
            "summary": MetadataValue.md(summary),
            **metadata,
            "version": now,
            "previous_version": before or "none",
            "action": action,
            **quality_metadata(
                card.metrics.get("validation", {}), card.thresholds, card.training_window
            ),
            "registry": MetadataValue.path(str(registry)),
        }
    )


@asset_check(
    asset=deployed_model,
    name=DEPLOYED_MODEL_VERIFIES,
    description="The served version loads: `current` names a registry version, its card was not "
    "edited after training, its file matches the card's checksum and its features are the "
    "current feature spec's, in order.",
)
def deployed_model_verifies(
    context: AssetCheckExecutionContext, layout: DataLayoutResource
) -> AssetCheckResult:
    registry = layout.layout().models
    try:
        version = current_version(registry)
    except ModelIntegrityError as err:
        return AssetCheckResult(passed=False, description=str(err))
    if version is None:
        return AssetCheckResult(passed=False, description="no current version")
    try:
        _, card = load_version(registry, version)
    except (FileNotFoundError, ModelIntegrityError) as err:
        return AssetCheckResult(passed=False, description=str(err), metadata={"version": version})
    same = card.feature_names == layout.contract().spec.feature_names
    return AssetCheckResult(
        passed=same,
        metadata={"version": version, "features": len(card.feature_names)},
        description=None if same else "the model's features differ from the feature spec",
    )


DEPLOYED_MODEL_CHECKS = [fraud_model_not_worse_than_champion, deployed_model_verifies]
