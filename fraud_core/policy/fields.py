"""What a policy's conditions may read: the names a contract offers (`PolicyFields`) and one
order's values for them (`OrderFacts`), and the error every policy problem raises."""

from __future__ import annotations

import functools
import math
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from fraud_core.contract.model import Contract

LIST_NAMES = ("block", "allow", "watch")
"""The entity lists a condition can ask about with `listed(...)`."""
NUMBER = "number"
STRING = "string"
KEYWORDS = frozenset({"and", "or", "not", "in", "true", "false"})
# The order's own values, read by every policy whatever the contract says.
ORDER_NUMBERS = ("amount", "score", "hour")
_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


class PolicyError(ValueError):
    """A policy or a condition that cannot be used: the message says where (the rule or segment,
    the column) and why."""


@dataclass(frozen=True, slots=True)
class OrderFacts:
    """One order as a policy sees it. `values` holds every name the `PolicyFields` declares:
    numbers as float (NaN when missing), strings as text ("" when missing)."""

    values: dict[str, float | str]
    # (list name, entity kind) pairs: the order's entity of that kind is on that list
    listed: frozenset[tuple[str, str]] = frozenset()
    # entity kinds whose entity is seen for the first time with this order
    new: frozenset[str] = frozenset()


@dataclass(frozen=True)
class PolicyFields:
    """What a condition may read."""

    # "amount" (major units), "score" (calibrated fraud probability), "hour" (UTC hour of the
    # order, 0-23), the contract's numeric attributes, every feature name of its spec
    numbers: tuple[str, ...]
    # the entity kinds (the key as the store keeps it) and the categorical attributes
    strings: tuple[str, ...]
    kinds: tuple[str, ...]  # the entity kinds (for listed / is_new)

    def __post_init__(self) -> None:
        seen: set[str] = set()
        for name in (*self.numbers, *self.strings):
            if name in seen:
                # one name, one type: a condition could not say which value it means
                raise PolicyError(f"the name {name!r} is declared twice (numbers and strings)")
            if _IDENTIFIER.fullmatch(name) is None or name in KEYWORDS:
                raise PolicyError(f"{name!r} cannot be read by a condition (not a plain name)")
            seen.add(name)
        for kind in self.kinds:
            if kind not in self.strings:
                raise PolicyError(f"the entity kind {kind!r} is not among the string names")

    @classmethod
    def of(cls, contract: Contract) -> PolicyFields:
        """The names a policy may read under `contract`. PolicyError when two would collide
        (an attribute called `amount`, say)."""
        numeric = tuple(a.name for a in contract.attributes if a.type == "numeric")
        categorical = tuple(a.name for a in contract.attributes if a.type == "categorical")
        return cls(
            numbers=(*ORDER_NUMBERS, *numeric, *contract.spec.feature_names),
            strings=(*contract.entity_kinds, *categorical),
            kinds=contract.entity_kinds,
        )

    @functools.cached_property
    def types(self) -> dict[str, str]:
        """Every name -> "number" or "string"."""
        return {n: NUMBER for n in self.numbers} | {n: STRING for n in self.strings}

    def blank_values(self) -> dict[str, float | str]:
        """Every name with its missing value (NaN, ""): a fresh dict to fill in for one order."""
        return {n: (math.nan if t == NUMBER else "") for n, t in self.types.items()}
