"""What a data contract says, as typed values: the source columns and their roles, the entities
(each a source column, maybe through a fixed transform), the attributes and the feature knobs.

A `Contract` is only ever built by `fraud_core.contract.loader`, which refuses anything it
cannot vouch for; the rest of the platform reads these values and never the YAML.
"""

from __future__ import annotations

import functools
import hashlib
import json
from dataclasses import asdict, dataclass

from fraud_core.features.spec import EntitySpec, FeatureSpec, NumericSpec

# How an order time without an offset is read: as UTC, or refused ("offset": every value must
# carry its own). Any other value is an IANA zone name: naive values are local time there.
ZONE_UTC = "UTC"
ZONE_OFFSET = "offset"
AMOUNT_UNITS = ("major", "minor")
ATTRIBUTE_TYPES = ("categorical", "numeric")


@dataclass(frozen=True)
class OrderTime:
    column: str
    zone: str = ZONE_UTC


@dataclass(frozen=True)
class Amount:
    column: str
    unit: str = "major"  # "minor": whole cents (or the currency's smallest unit)
    minor_digits: int = 2  # minor units per major unit = 10 ** minor_digits


@dataclass(frozen=True)
class Labels:
    is_fraud: str
    label_time: str


@dataclass(frozen=True)
class Source:
    order_id: str
    order_time: OrderTime
    amount: Amount
    labels: Labels | None = None


@dataclass(frozen=True)
class Transform:
    """One of a fixed set, applied to the column's text before keying: `lower_strip`,
    `email_domain`, `ip_prefix` (`size` = IPv4 prefix bits, `size_v6` = IPv6's, default 64) or
    `prefix` (`size` = characters)."""

    name: str
    size: int | None = None
    size_v6: int | None = None

    def __str__(self) -> str:
        sizes = [str(s) for s in (self.size, self.size_v6) if s is not None]
        return "/".join([self.name, *sizes])


@dataclass(frozen=True)
class Entity:
    name: str  # the entity kind: feature names and online-store keys use it
    column: str
    counterparts: tuple[str, ...] = ()
    transform: Transform | None = None
    primary: bool = False
    personal: bool = False  # stored only as an HMAC-SHA256 digest keyed from the environment
    description: str = ""  # for people: the README's column table, the UI


@dataclass(frozen=True)
class Attribute:
    name: str
    column: str
    type: str  # "categorical" | "numeric"
    required: bool = True
    range: tuple[float, float] | None = None  # numeric: inclusive bounds
    # numeric: every entity aggregates it as it aggregates amounts, counted in whole units of
    # 10**-decimals (the order's own value becomes a feature too)
    aggregate: bool = False
    decimals: int = 2
    description: str = ""


@dataclass(frozen=True)
class Window:
    name: str  # as written in the contract, used in feature names ("24h")
    seconds: int


@dataclass(frozen=True)
class Features:
    history_n: int
    windows: tuple[Window, ...]
    distinct_windows: tuple[str, ...]
    risk_windows: tuple[Window, ...]
    risk_delay_s: int
    switched_off: tuple[str, ...] = ()  # feature names no model may use


@dataclass(frozen=True)
class Contract:
    name: str
    source: Source
    entities: tuple[Entity, ...]
    attributes: tuple[Attribute, ...]
    features: Features
    privacy_key_env: str | None = None
    version: int = 1

    @property
    def primary(self) -> Entity:
        return next(e for e in self.entities if e.primary)

    def entity(self, name: str) -> Entity:
        for e in self.entities:
            if e.name == name:
                return e
        raise KeyError(f"the contract {self.name!r} has no entity {name!r}")

    def column_roles(self) -> list[tuple[str, str, str, bool]]:
        """Every column the contract reads: (its key in the contract, the platform column it
        fills, the source column, required)."""
        s = self.source
        roles = [
            ("source.order_id", "order_id", s.order_id, True),
            ("source.order_time.column", "order_date", s.order_time.column, True),
            ("source.amount.column", "order_amount", s.amount.column, True),
        ]
        if s.labels is not None:
            roles += [
                ("source.labels.is_fraud", "is_fraud", s.labels.is_fraud, False),
                ("source.labels.label_time", "label_date", s.labels.label_time, False),
            ]
        roles += [
            (f"entities[{i}].column", e.name, e.column, True) for i, e in enumerate(self.entities)
        ]
        roles += [
            (f"attributes[{i}].column", a.name, a.column, a.required)
            for i, a in enumerate(self.attributes)
        ]
        return roles

    @property
    def entity_kinds(self) -> tuple[str, ...]:
        return tuple(e.name for e in self.entities)

    @functools.cached_property
    def spec(self) -> FeatureSpec:
        """The feature spec this contract declares (the kernel and the online path read it),
        built once per contract."""
        f = self.features
        # A categorical attribute is followed by every entity as a counterpart is: distinct
        # values over windows and the last orders, the same value as last, a value not among
        # the last orders (a card's first cash-out category, a new entry mode); and the share of
        # the entity's last orders with the value, and its first use in each distinct window.
        categorical = tuple(a.name for a in self.attributes if a.type == "categorical")
        return FeatureSpec(
            entities=tuple(EntitySpec(e.name, e.counterparts + categorical) for e in self.entities),
            history_n=f.history_n,
            windows={w.name: w.seconds for w in f.windows},
            distinct_windows=f.distinct_windows,
            risk_windows={w.name: w.seconds for w in f.risk_windows},
            risk_delay_s=f.risk_delay_s,
            primary=self.primary.name,
            categorical=categorical,
            numeric=tuple(NumericSpec(a.name, a.decimals) for a in self.attributes if a.aggregate),
            switched_off=f.switched_off,
        )

    def model_terms(self) -> dict:
        """What a model trained under this contract depends on, as plain JSON values: the
        entities (kinds, counterparts, transforms, primary, personal), the attributes (names
        and types) and the feature knobs; not how landing files name or format them (a
        contract that only renames columns serves the same models)."""
        f = self.features
        return {
            "entities": [
                {
                    "name": e.name,
                    "counterparts": list(e.counterparts),
                    "transform": None if e.transform is None else str(e.transform),
                    "primary": e.primary,
                    "personal": e.personal,
                }
                for e in self.entities
            ],
            "attributes": [
                {"name": a.name, "type": a.type}
                | ({"aggregate": True, "decimals": a.decimals} if a.aggregate else {})
                for a in self.attributes
            ],
            "features": {
                "history_n": f.history_n,
                "windows": {w.name: w.seconds for w in f.windows},
                "distinct_windows": list(f.distinct_windows),
                "risk_windows": {w.name: w.seconds for w in f.risk_windows},
                "risk_delay_s": f.risk_delay_s,
            }
            # only when set: the contracts (and models) from before it keep their digest
            | ({"switched_off": list(f.switched_off)} if f.switched_off else {}),
        }

    def record(self) -> dict:
        """What a model card keeps of the contract it was trained under."""
        return {"name": self.name, "digest": self.digest, "terms": self.model_terms()}

    @property
    def digest(self) -> str:
        """SHA-256 of what the contract means (not of its text: comments, key order and
        descriptions do not count), for model cards and namespaces: a model trained under one contract is known to
        another by this."""
        canonical = json.dumps(
            _without_descriptions(asdict(self)), sort_keys=True, separators=(",", ":")
        )
        return hashlib.sha256(canonical.encode()).hexdigest()


def differing_terms(a: object, b: object, path: str = "") -> list[str]:
    """Paths where two plain values differ (mappings by key in `a`'s order then `b`'s, lists
    and tuples of one length by position): `features.history_n`, `entities[1].transform`, ...
    Two contracts compare as `differing_terms(asdict(a), asdict(b))`."""
    if isinstance(a, dict) and isinstance(b, dict):
        out: list[str] = []
        for key in [*a, *(k for k in b if k not in a)]:
            sub = f"{path}.{key}" if path else str(key)
            out += differing_terms(a[key], b[key], sub) if key in a and key in b else [sub]
        return out
    if isinstance(a, list | tuple) and isinstance(b, list | tuple) and len(a) == len(b):
        return [
            d
            for i, (x, y) in enumerate(zip(a, b, strict=True))
            for d in differing_terms(x, y, f"{path}[{i}]")
        ]
    return [] if a == b else [path or "contract"]


def _without_descriptions(value: object) -> object:
    """`value` with every `description` key left out: words for people change no behaviour."""
    if isinstance(value, dict):
        return {k: _without_descriptions(v) for k, v in value.items() if k != "description"}
    if isinstance(value, list | tuple):
        return [_without_descriptions(v) for v in value]
    return value
