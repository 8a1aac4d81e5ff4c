"""The one feature specification: every behavioural feature the model sees is declared here.

Both execution paths read this spec: the compiled kernel (`fraud_core.features.kernel`,
run over whole partitions of orders) and the online path (`fraud_core.features.online`, run by the
scoring service on one entity's stored state plus the new order). Every feature is "as of just
before the order is accepted": it looks only at the entity's earlier orders and only at labels
whose `label_date` is strictly before the order's time.

Times are whole seconds since the epoch (the order's UTC timestamp, floored) and amounts are whole
cents, so window sums are exact integers and both paths agree to the bit.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass, field

HOUR_S = 3_600
DAY_S = 86_400
MAX_UNITS = 2**47
"""The largest numeric attribute value in whole units: 65,536 of them still sum exactly in int64."""
CENTS_PER_UNIT = 100
"""Amounts are counted in whole cents (minor units per major unit) on both paths."""
NO_VALUE = ""
"""The value of an optional categorical attribute an order does not have (both paths)."""


@dataclass(frozen=True)
class EntitySpec:
    """One entity kind and the other identifiers whose variety we measure for it: other
    entities' kinds, and the contract's categorical attributes (`Contract.spec`)."""

    kind: str
    counterparts: tuple[str, ...]


@dataclass(frozen=True)
class NumericSpec:
    """A numeric attribute every entity aggregates as it aggregates amounts. Both paths count it
    in whole units of 10**-decimals (as amounts in cents), so window sums are exact."""

    name: str
    decimals: int = 2

    @property
    def scale(self) -> int:
        """Units per 1."""
        return 10**self.decimals


@dataclass(frozen=True)
class Feature:
    name: str
    kind: str  # entity kind, or "order" for the order's own values
    description: str
    nullable: bool = False  # NaN allowed (no history to compute it from)
    bounds: tuple[float | None, float | None] = (None, None)  # inclusive range when not NaN
    # True when the value depends on the order itself (its amount, its counterparts), not only
    # on the entity's earlier orders: an entity looked at on its own has no such value.
    depends_on_order: bool = False


@dataclass(frozen=True)
class FeatureSpec:
    entities: tuple[EntitySpec, ...] = (
        EntitySpec("customer_id", ("email", "ip_addr")),
        EntitySpec("email", ("customer_id", "ip_addr")),
        EntitySpec("ip_addr", ("customer_id", "email")),
    )
    history_n: int = 10  # "last N orders" block
    windows: dict[str, int] = field(
        default_factory=lambda: {"1h": HOUR_S, "24h": DAY_S, "7d": 7 * DAY_S, "30d": 30 * DAY_S}
    )
    distinct_windows: tuple[str, ...] = ("24h", "30d")
    risk_windows: dict[str, int] = field(
        default_factory=lambda: {"1d": DAY_S, "7d": 7 * DAY_S, "30d": 30 * DAY_S}
    )
    risk_delay_s: int = 7 * DAY_S  # risk windows end this long before the order
    # the entity whose labels and precision@k the model reports (the contract's primary entity)
    primary: str = "customer_id"
    # counterparts that are categorical attributes (payment method, country): they also get
    # "share of the last orders with this value" and "first use in a window"
    categorical: tuple[str, ...] = ()
    numeric: tuple[NumericSpec, ...] = ()  # aggregated per entity like amounts
    # features still computed and served but never used by a model (the contract's
    # `features.switched_off`): training blanks them, so no tree splits on them
    switched_off: tuple[str, ...] = ()

    def entity(self, kind: str) -> EntitySpec:
        for e in self.entities:
            if e.kind == kind:
                return e
        raise KeyError(f"unknown entity kind {kind!r}")

    @property
    def horizon_s(self) -> int:
        """How far back any time-based feature looks: state older than this (beyond the last
        `history_n` orders) can never change a future order's features."""
        return max(max(self.windows.values()), self.risk_delay_s + max(self.risk_windows.values()))

    @property
    def warmup_days(self) -> int:
        """Days after the first day of data during which some feature still looks back to before
        the data (the horizon, in whole days): its window is still filling, so counts and sums
        come out low (the 30-day risk window ending 7 days before the order fills last). Orders
        from `first day + warmup_days` on have every window inside the data. Training sets and
        the drift reference skip these days."""
        return math.ceil(self.horizon_s / DAY_S)

    def entity_features(self, kind: str) -> list[Feature]:
        """The features of one entity kind, in their fixed order."""
        if kind not in self._entity_features:
            self.entity(kind)  # raises KeyError naming the unknown kind
        return list(self._entity_features[kind])

    @functools.cached_property
    def _entity_features(self) -> dict[str, tuple[Feature, ...]]:
        """Built once per spec: the online path asks for them on every order."""
        return {e.kind: tuple(self._build_entity_features(e.kind)) for e in self.entities}

    def _build_entity_features(self, kind: str) -> list[Feature]:
        e = self.entity(kind)
        n = self.history_n
        delay_d = self.risk_delay_s / DAY_S
        out = [
            Feature(
                f"{kind}__first_seen", kind, f"1 if this {kind} has no earlier order", bounds=(0, 1)
            ),
            Feature(
                f"{kind}__seconds_since_prev",
                kind,
                f"seconds since this {kind}'s previous order",
                nullable=True,
                bounds=(0, None),
            ),
        ]
        for w in self.windows:
            out += [
                Feature(
                    f"{kind}__order_count__{w}",
                    kind,
                    f"orders of this {kind} in the last {w}",
                    bounds=(0, None),
                ),
                Feature(
                    f"{kind}__amount_sum__{w}",
                    kind,
                    f"amount of this {kind}'s orders in the last {w}",
                    bounds=(0, None),
                ),
                Feature(
                    f"{kind}__amount_mean__{w}",
                    kind,
                    f"mean amount of this {kind}'s orders in the last {w}",
                    nullable=True,
                    bounds=(0, None),
                ),
            ]
        for c in e.counterparts:
            for w in self.distinct_windows:
                out.append(
                    Feature(
                        f"{kind}__distinct_{c}__{w}",
                        kind,
                        f"distinct {c} values on this {kind}'s orders in the last {w}",
                        bounds=(0, None),
                    )
                )
        out += [
            Feature(
                f"{kind}__amount_sum__last{n}",
                kind,
                f"amount of this {kind}'s last {n} orders",
                bounds=(0, None),
            ),
            Feature(
                f"{kind}__amount_mean__last{n}",
                kind,
                f"mean amount of the last {n} orders",
                nullable=True,
                bounds=(0, None),
            ),
            Feature(
                f"{kind}__amount_std__last{n}",
                kind,
                f"std (population) of the last {n} amounts",
                nullable=True,
                bounds=(0, None),
            ),
            Feature(
                f"{kind}__amount_min__last{n}",
                kind,
                f"smallest of the last {n} amounts",
                nullable=True,
                bounds=(0, None),
            ),
            Feature(
                f"{kind}__amount_max__last{n}",
                kind,
                f"largest of the last {n} amounts",
                nullable=True,
                bounds=(0, None),
            ),
            Feature(
                f"{kind}__amount_rel_mean__last{n}",
                kind,
                f"this order's amount divided by the mean of the last {n} (empty when that mean is 0)",
                nullable=True,
                bounds=(0, None),
                depends_on_order=True,
            ),
        ]
        for c in e.counterparts:
            out += [
                Feature(
                    f"{kind}__distinct_{c}__last{n}",
                    kind,
                    f"distinct {c} values on the last {n} orders",
                    bounds=(0, n),
                ),
                Feature(
                    f"{kind}__same_{c}_as_last",
                    kind,
                    f"1 if {c} equals the one on the previous order",
                    bounds=(0, 1),
                    depends_on_order=True,
                ),
                Feature(
                    f"{kind}__{c}_seen_in_last{n}",
                    kind,
                    f"1 if this {c} appears on one of the last {n} orders",
                    bounds=(0, 1),
                    depends_on_order=True,
                ),
            ]
        for w in self.risk_windows:
            out += [
                Feature(
                    f"{kind}__risk_order_count__{w}",
                    kind,
                    f"orders of this {kind} in the {w} ending {delay_d:g} days before this order",
                    bounds=(0, None),
                ),
                Feature(
                    f"{kind}__risk_fraud_share__{w}",
                    kind,
                    "share of those orders labelled fraud by a label known before this order (0 when none)",
                    bounds=(0, 1),
                ),
            ]
        for c in self.categorical_of(kind):
            out.append(
                Feature(
                    f"{kind}__{c}_share__last{n}",
                    kind,
                    f"share of this {kind}'s last {n} orders with this order's {c}",
                    nullable=True,
                    bounds=(0, 1),
                    depends_on_order=True,
                )
            )
            out += [
                Feature(
                    f"{kind}__{c}_new__{w}",
                    kind,
                    f"1 if no order of this {kind} in the last {w} had this order's {c}",
                    bounds=(0, 1),
                    depends_on_order=True,
                )
                for w in self.distinct_windows
            ]
        for v in self.numeric:
            x = v.name
            for w in self.windows:
                out += [
                    Feature(
                        f"{kind}__{x}_sum__{w}",
                        kind,
                        f"{x} summed over this {kind}'s orders in the last {w}",
                    ),
                    Feature(
                        f"{kind}__{x}_mean__{w}",
                        kind,
                        f"mean {x} of this {kind}'s orders in the last {w}",
                        nullable=True,
                    ),
                ]
            out += [
                Feature(f"{kind}__{x}_sum__last{n}", kind, f"{x} summed over the last {n} orders"),
                Feature(
                    f"{kind}__{x}_mean__last{n}",
                    kind,
                    f"mean {x} of the last {n} orders",
                    nullable=True,
                ),
                Feature(
                    f"{kind}__{x}_std__last{n}",
                    kind,
                    f"std (population) of the last {n} orders' {x}",
                    nullable=True,
                    bounds=(0, None),
                ),
                Feature(
                    f"{kind}__{x}_min__last{n}",
                    kind,
                    f"smallest {x} of the last {n}",
                    nullable=True,
                ),
                Feature(
                    f"{kind}__{x}_max__last{n}", kind, f"largest {x} of the last {n}", nullable=True
                ),
                Feature(
                    f"{kind}__{x}_rel_mean__last{n}",
                    kind,
                    f"this order's {x} divided by the mean of the last {n} (empty when that mean "
                    "is not above 0)",
                    nullable=True,
                    depends_on_order=True,
                ),
            ]
        return out

    def categorical_of(self, kind: str) -> tuple[str, ...]:
        """The categorical attributes among `kind`'s counterparts, in counterpart order."""
        return tuple(c for c in self.entity(kind).counterparts if c in self.categorical)

    @property
    def order_features(self) -> list[Feature]:
        return [
            Feature(
                "order_amount",
                "order",
                "the order's amount",
                bounds=(0, None),
                depends_on_order=True,
            ),
            Feature(
                "order_hour_utc",
                "order",
                "hour of day of the order (UTC)",
                bounds=(0, 23),
                depends_on_order=True,
            ),
            *(
                Feature(f"order_{v.name}", "order", f"the order's {v.name}", depends_on_order=True)
                for v in self.numeric
            ),
        ]

    @property
    def features(self) -> list[Feature]:
        """Every feature, in the model's column order."""
        out = list(self.order_features)
        for e in self.entities:
            out += self.entity_features(e.kind)
        return out

    def feature(self, name: str) -> Feature:
        """The feature called `name` (KeyError when the spec has none)."""
        return self._by_name[name]

    @functools.cached_property
    def _by_name(self) -> dict[str, Feature]:
        return {f.name: f for f in self.features}

    @functools.cached_property
    def feature_names(self) -> list[str]:
        """Every feature name in model column order (computed once: the online path asks on
        every request). Do not modify the list."""
        return [f.name for f in self.features]


DEFAULT_SPEC = FeatureSpec()


def features_markdown(spec: FeatureSpec = DEFAULT_SPEC) -> str:
    """The feature list as a Markdown table (the README's copy is generated from this)."""
    rows = ["| feature | definition | may be empty |", "|---|---|---|"]
    for f in spec.features:
        rows.append(f"| `{f.name}` | {f.description} | {'yes' if f.nullable else 'no'} |")
    return "\n".join(rows)
