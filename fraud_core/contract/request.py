"""How a scoring request carries a contract's orders: which fields it has and how each entity's
key (the value the online store and the features use) is derived from them.

A request has one field per entity column, named after the first entity that reads the column
(an e-mail and its domain read one column: the request sends the e-mail once), and one per
attribute. It sends clear values; the service derives the keys as validation does for landing
files: through the entity's transform, then the keyed digest of a personal entity. So an order
scored online and the same order landed in a file have the same entity keys.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import dataclass

import pandas as pd

from fraud_core.contract.loader import ContractError, check_privacy_key
from fraud_core.contract.model import Attribute, Contract, Entity
from fraud_core.contract.source import SourceFormat
from fraud_core.contract.transforms import entity_keys


class RequestValueError(ValueError):
    """A request value an entity cannot be keyed by (a transform finds nothing in it)."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason


def request_fields(contract: Contract) -> dict[str, str]:
    """Entity name -> the request field it reads: the first entity reading a column names it."""
    by_column: dict[str, str] = {}
    for e in contract.entities:
        by_column.setdefault(e.column, e.name)
    return {e.name: by_column[e.column] for e in contract.entities}


@dataclass(frozen=True)
class RequestShape:
    entities: tuple[Entity, ...]
    field_of: dict[str, str]  # entity name -> the request field it reads
    attributes: tuple[Attribute, ...]
    key: bytes | None  # the HMAC key of personal entities

    @functools.cached_property
    def categorical(self) -> tuple[str, ...]:
        """The categorical attributes: every entity follows them (`Contract.spec`)."""
        return tuple(a.name for a in self.attributes if a.type == "categorical")

    @classmethod
    def of(cls, contract: Contract, env: Mapping[str, str] | None = None) -> RequestShape:
        """The shape of `contract`, its privacy key read from `env` (default the process's)."""
        check_privacy_key(contract, env)
        return cls.keyed(contract, SourceFormat.of(contract).personal_key(env))

    @classmethod
    def keyed(cls, contract: Contract, key: bytes | None) -> RequestShape:
        """The shape of `contract` with the privacy key given (None: no entity is personal)."""
        if key is None and any(e.personal for e in contract.entities):
            raise ContractError(
                f"contract {contract.name!r} has a personal entity: a key is needed"
            )
        return cls(contract.entities, request_fields(contract), contract.attributes, key)

    @functools.cached_property
    def kinds(self) -> tuple[str, ...]:
        return tuple(e.name for e in self.entities)

    @functools.cached_property
    def entity_fields(self) -> tuple[str, ...]:
        """The request's entity fields, in the contract's order, each once."""
        return tuple(dict.fromkeys(self.field_of.values()))

    @functools.cached_property
    def identity(self) -> bool:
        """True when every key is the request's value itself (no transform, nothing personal)."""
        return all(
            e.transform is None and not e.personal and self.field_of[e.name] == e.name
            for e in self.entities
        )

    def keys(self, values: list[Mapping[str, str]]) -> list[dict[str, str]]:
        """Each request's entity keys (kind -> key), from its entity fields' values; a
        RequestValueError naming the field when a transform finds nothing in a value."""
        if self.identity:
            return [{k: v[k] for k in self.kinds} for v in values]
        out: list[dict[str, str]] = [{} for _ in values]
        for e in self.entities:
            field = self.field_of[e.name]
            for i, key in enumerate(self._keyed(e, [v[field] for v in values], field)):
                out[i][e.name] = key
        return out

    def _keyed(self, entity: Entity, values: list[str], field: str) -> list[str]:
        """`values` of one entity's field as its keys; RequestValueError naming `field`."""
        if entity.transform is None and not entity.personal:
            return values
        keyed = entity_keys(entity, pd.Series(values, dtype="string"), self.key).tolist()
        if any(key is None or key is pd.NA for key in keyed):
            raise RequestValueError(field, f"{entity.transform} finds nothing in it")
        return keyed

    def key_of(self, kind: str, value: str) -> str:
        """The key of one entity of `kind` whose request field holds `value` (an entity route's
        id): KeyError for a kind the contract does not have."""
        entity = next((e for e in self.entities if e.name == kind), None)
        if entity is None:
            raise KeyError(kind)
        return str(self._keyed(entity, [value], "id")[0])
