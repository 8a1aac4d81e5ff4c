"""Block, allow and watch lists: entity keys the fraud team names, with a reason, an author and
an optional expiry, that policy rules read (`listed("block", "email")`).

Stored in Redis under the store's prefix but outside the versioned namespaces (a store load
replaces those, and must not drop a list): one hash (`OnlineKeys.lists`) whose fields are
`<list>:<kind>:<key>` and values the entry's JSON, and a counter (`OnlineKeys.lists_version`)
that every change increments in the same transaction. The service keeps the lists in memory and
reads the counter with each batch's states (the same MGET), so a change applies to the next
batch of every worker without an extra round trip per order. An entity's key is the one the
store uses (`RequestShape.key_of`: the transform, then the keyed digest of a personal entity),
so a list never holds a personal value in clear.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass

from fraud_core.policy.policy import LIST_NAMES

MAX_REASON = 500


def check_list(name: str) -> str:
    if name not in LIST_NAMES:
        raise ValueError(f"list must be one of {', '.join(LIST_NAMES)}; got {name!r}")
    return name


@dataclass(frozen=True)
class ListEntry:
    list: str  # block | allow | watch
    kind: str  # an entity kind of the contract
    key: str  # the entity's key as the store keeps it
    reason: str
    author: str  # "key:<id>" or "cli:<login>"
    added_at: float  # epoch s
    expires_at: float | None = None  # epoch s; None: until removed

    def live(self, now_s: float) -> bool:
        return self.expires_at is None or self.expires_at > now_s

    @property
    def field(self) -> str:
        return entry_field(self.list, self.kind, self.key)

    def to_json(self) -> str:
        data = asdict(self)
        for name in ("list", "kind", "key"):  # in the hash field already
            data.pop(name)
        return json.dumps(data, separators=(",", ":"))

    def to_dict(self) -> dict:
        return asdict(self)


def entry_field(list_name: str, kind: str, key: str) -> str:
    return f"{list_name}:{kind}:{key}"


def decode_entry(field: bytes | str, value: bytes | str) -> ListEntry:
    text = field.decode() if isinstance(field, bytes) else field
    list_name, kind, key = text.split(":", 2)
    data = json.loads(value)
    return ListEntry(
        list=list_name,
        kind=kind,
        key=key,
        reason=str(data.get("reason", "")),
        author=str(data.get("author", "")),
        added_at=float(data.get("added_at", 0.0)),
        expires_at=None if data.get("expires_at") is None else float(data["expires_at"]),
    )


def new_entry(
    list_name: str,
    kind: str,
    key: str,
    reason: str,
    author: str,
    ttl_s: float | None = None,
    kinds: Iterable[str] = (),
) -> ListEntry:
    """A checked entry: a known list and kind, a reason, a positive time to live."""
    check_list(list_name)
    kinds = tuple(kinds)
    if kinds and kind not in kinds:
        raise ValueError(f"kind must be an entity kind of the contract ({', '.join(kinds)})")
    if not reason.strip():
        raise ValueError("reason: say why (it shows to the analysts and in the audit)")
    if len(reason) > MAX_REASON:
        raise ValueError(f"reason: at most {MAX_REASON} characters")
    if ttl_s is not None and not ttl_s > 0:
        raise ValueError("ttl_s must be > 0 (leave it out for no expiry)")
    now = time.time()
    expires = None if ttl_s is None else now + ttl_s
    return ListEntry(list_name, kind, key, reason.strip(), author, now, expires)


class ListIndex:
    """The live entries of every list in memory, for the policy: which (list, kind) pairs an
    order's entities are on."""

    def __init__(self, entries: Iterable[ListEntry] = (), version: int = 0) -> None:
        self.version = version
        self._expiry: dict[tuple[str, str], float | None] = {}
        for e in entries:
            self._expiry[(f"{e.list}:{e.kind}", e.key)] = e.expires_at
        self.empty = not self._expiry

    def __len__(self) -> int:
        return len(self._expiry)

    def hits(self, keys: Mapping[str, str], now_s: float) -> frozenset[tuple[str, str]]:
        """(list, kind) pairs on which the order's entity keys (`kind -> key`) are, now."""
        if self.empty:
            return frozenset()
        found = []
        for list_name in LIST_NAMES:
            for kind, key in keys.items():
                expires = self._expiry.get((f"{list_name}:{kind}", key), 0.0)
                if expires is None or expires > now_s:
                    found.append((list_name, kind))
        return frozenset(found)


def decode_all(fields: Mapping[bytes | str, bytes | str]) -> list[ListEntry]:
    """Every entry of the hash (HGETALL's answer), oldest first; unreadable fields skipped."""
    out = []
    for field, value in fields.items():
        try:
            out.append(decode_entry(field, value))
        except (ValueError, TypeError):
            continue
    out.sort(key=lambda e: (e.added_at, e.field))
    return out
