"""API keys and the roles they carry: who may score, who may work lists and labels, who may
change what the service decides.

A key entry is `role:id:key` (`FRAUD_API_KEYS`, comma separated) or `role:id:sha256:<hex>` (the
SHA-256 of the key instead of the key, for a key file that must not hold secrets:
`FRAUD_API_KEYS_FILE`, one entry per line, `#` comments). The id is public: it is what logs, the
decision log and the audit trail show; the key never is. Roles are ordered, each allowing what
the ones before it allow:

- `scoring`: score orders, read the served model and policy;
- `analyst`: also post labels, read entities, manage block/allow/watch lists, read the audit;
- `admin`: also activate policies and change what the service serves.

An entry without a role (a bare key, as before roles existed) is an admin key with the id
`key_id(key)`, so an existing deployment keeps working; `fraud serve` says so once.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

ROLES = ("scoring", "analyst", "admin")
SCORING, ANALYST, ADMIN = ROLES
KEYS_ENV = "FRAUD_API_KEYS"
KEYS_FILE_ENV = "FRAUD_API_KEYS_FILE"
_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
_DIGEST = re.compile(r"^[0-9a-f]{64}$")


class KeyConfigError(ValueError):
    """A key entry that cannot be read (the message never contains the key)."""


def key_id(api_key: str) -> str:
    """A short public id of a bare API key: the first 12 hex digits of its SHA-256 (a key is long
    and random, so this tells nothing about it)."""
    return hashlib.sha256(api_key.encode()).hexdigest()[:12]


def key_digest(api_key: str) -> str:
    """What a key file holds instead of the key."""
    return hashlib.sha256(api_key.encode()).hexdigest()


def allows(role: str, needed: str) -> bool:
    """Whether `role` may do what `needed` may."""
    return ROLES.index(role) >= ROLES.index(needed)


@dataclass(frozen=True)
class ApiKey:
    """One accepted key: its role, its public id and the SHA-256 of the key."""

    role: str
    id: str
    digest: bytes = field(repr=False)
    legacy: bool = False  # a bare key from before roles


def parse_entry(entry: str, where: str = KEYS_ENV) -> ApiKey:
    """One `role:id:key`, `role:id:sha256:<hex>` or bare key entry."""
    entry = entry.strip()
    role, sep, rest = entry.partition(":")
    if not sep or role not in ROLES:
        if not entry:
            raise KeyConfigError(f"{where}: an empty key")
        return ApiKey(ADMIN, key_id(entry), hashlib.sha256(entry.encode()).digest(), legacy=True)
    ident, sep, secret = rest.partition(":")
    if not sep or not _ID.fullmatch(ident):
        raise KeyConfigError(
            f"{where}: a {role} entry must be {role}:<id>:<key> with an id of letters, digits, "
            "'.', '_' or '-' (at most 64)"
        )
    if secret.startswith("sha256:"):
        digest = secret.removeprefix("sha256:").lower()
        if not _DIGEST.fullmatch(digest):
            raise KeyConfigError(f"{where}: key {ident!r}: sha256: needs 64 hex digits")
        return ApiKey(role, ident, bytes.fromhex(digest))
    if len(secret) < 8:
        raise KeyConfigError(f"{where}: key {ident!r} is shorter than 8 characters")
    return ApiKey(role, ident, hashlib.sha256(secret.encode()).digest())


@dataclass(frozen=True)
class KeyRing:
    """Every accepted key. `match` compares the given key's digest with each in constant time,
    so the time taken tells nothing about which key came close."""

    keys: tuple[ApiKey, ...]

    def __post_init__(self) -> None:
        ids = [k.id for k in self.keys]
        twice = sorted({i for i in ids if ids.count(i) > 1})
        if twice:
            raise KeyConfigError(f"key ids must be unique: {twice} appear more than once")

    @classmethod
    def of(cls, entries: Iterable[str], key_file: str | Path | None = None) -> KeyRing:
        keys = [parse_entry(e) for e in entries if e.strip()]
        if key_file:
            path = Path(key_file)
            try:
                lines = path.read_text().splitlines()
            except OSError as exc:
                raise KeyConfigError(f"{KEYS_FILE_ENV}: cannot read {path}: {exc}") from None
            for n, line in enumerate(lines, 1):
                line = line.split("#", 1)[0].strip()
                if line:
                    keys.append(parse_entry(line, f"{path}:{n}"))
        return cls(tuple(keys))

    @property
    def has_legacy(self) -> bool:
        return any(k.legacy for k in self.keys)

    def match(self, given: bytes) -> ApiKey | None:
        if not given:
            return None
        digest = hashlib.sha256(given).digest()
        found = None
        for key in self.keys:
            if hmac.compare_digest(digest, key.digest):
                found = key
        return found
