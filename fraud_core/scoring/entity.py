"""An entity's own features at a moment, for looking at one customer, e-mail or IP.

The spec defines features for an order; some depend on that order (its amount relative to the
history, whether its counterparts repeat the previous order's). For an entity on its own, those
are left out and the rest is computed for a probe order at `as_of_s`.
"""

from __future__ import annotations

from fraud_core.features.online import OrderEvent, kind_features
from fraud_core.features.spec import DEFAULT_SPEC, FeatureSpec
from fraud_core.features.state import EntityState

_PROBE = "\x00probe"  # a counterpart value no order has


def depends_on_order(name: str, spec: FeatureSpec = DEFAULT_SPEC) -> bool:
    """Whether the spec declares feature `name` as depending on the order itself."""
    return spec.feature(name).depends_on_order


def entity_features_at(
    state: EntityState, kind: str, as_of_s: int, spec: FeatureSpec = DEFAULT_SPEC
) -> dict[str, float]:
    """The entity's features (those that do not depend on the order) for an order at `as_of_s`
    (moved to its latest event when earlier)."""
    if len(state):
        as_of_s = max(as_of_s, state.t_s[-1])
    probe = OrderEvent(
        "",
        as_of_s,
        0,
        {c: _PROBE for c in spec.entity(kind).counterparts},
        numbers={v.name: 0 for v in spec.numeric},
    )
    values = kind_features(state, probe, kind, spec)
    return {f.name: values[f.name] for f in spec.entity_features(kind) if not f.depends_on_order}
