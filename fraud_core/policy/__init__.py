"""A fraud team's decision policy: rules, segments and thresholds in one YAML file, their
conditions written in a small typed expression language (`expr`) over the names a contract
offers (`fields`), loaded, checked and applied to one order at a time (`policy`)."""

from fraud_core.policy.expr import MAX_CHARS, MAX_DEPTH, Condition, compile_condition
from fraud_core.policy.fields import LIST_NAMES, OrderFacts, PolicyError, PolicyFields
from fraud_core.policy.policy import (
    ACTIONS,
    DECIDED_BY_SCORE,
    DEFAULT_POLICY_PATH,
    MAX_RULES,
    Outcome,
    Policy,
    Rule,
    Segment,
    decision_for,
    default_policy,
    load_policy,
)

__all__ = [
    "ACTIONS",
    "DECIDED_BY_SCORE",
    "DEFAULT_POLICY_PATH",
    "LIST_NAMES",
    "MAX_CHARS",
    "MAX_DEPTH",
    "MAX_RULES",
    "Condition",
    "OrderFacts",
    "Outcome",
    "Policy",
    "PolicyError",
    "PolicyFields",
    "Rule",
    "Segment",
    "compile_condition",
    "decision_for",
    "default_policy",
    "load_policy",
]
