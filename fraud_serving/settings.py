"""Settings of the scoring service, read once from the environment at start-up.

Every value has a default that works on a laptop; `Settings.from_env()` is the only place that
reads the environment, and `create_app(settings)` takes the result (tests build it directly).
"""

from __future__ import annotations

import functools
import hashlib
import os
import secrets
from dataclasses import dataclass, field

from upath import UPath

from fraud_core.access import ADMIN, KEYS_ENV, KEYS_FILE_ENV, KeyRing
from fraud_core.clock import DEFAULT_MAX_FUTURE_S, max_future_s
from fraud_core.contract import Contract, builtin_contract, serving_contract
from fraud_core.contract.request import RequestShape
from fraud_core.contract.source import SourceFormat
from fraud_core.model.decisions import HOLDOUT_ENV, check_holdout_share
from fraud_core.online_keys import (
    DAY_S,
    DEFAULT_ORDER_INDEX_DAYS,
    DEFAULT_PREFIX,
    resolve_cluster,
    resolve_key_prefix,
)
from fraud_core.redis_server import DEFAULT_REDIS_URL
from fraud_core.review import DEFAULT_WINDOW_DAYS
from fraud_core.storage import DataLayout, location_path

CONSOLE_SECRET_ENV = "FRAUD_CONSOLE_SECRET"


def _float(env: dict[str, str], name: str, default: float) -> float:
    text = env.get(name, "").strip()
    try:
        return float(text) if text else default
    except ValueError as exc:
        raise ValueError(f"{name}={text!r} is not a number") from exc


def _log_level(env: dict[str, str]) -> str:
    level = (env.get("FRAUD_LOG_LEVEL") or "INFO").strip().upper()
    if level not in ("CRITICAL", "ERROR", "WARNING", "INFO", "DEBUG"):
        raise ValueError(f"FRAUD_LOG_LEVEL: {level!r} is not a log level (e.g. INFO, WARNING)")
    return level


def _int(env: dict[str, str], name: str, default: int) -> int:
    return int(_float(env, name, default))


def _review_days(env: dict[str, str]) -> int:
    days = _int(env, "FRAUD_REVIEW_DAYS", DEFAULT_WINDOW_DAYS)
    if days < 1:
        raise ValueError(f"FRAUD_REVIEW_DAYS={days}: at least 1")
    return days


def _console_secret(env: dict[str, str]) -> bytes:
    text = env.get(CONSOLE_SECRET_ENV, "").strip()
    if not text:
        return secrets.token_bytes(32)
    if len(text) < 32:
        raise ValueError(
            f"{CONSOLE_SECRET_ENV}: at least 32 characters (e.g. openssl rand -hex 32)"
        )
    return hashlib.sha256(text.encode()).digest()  # the 32 bytes the cookie's cipher takes


@dataclass(frozen=True)
class Settings:
    """What the service needs to know. Environment variable in brackets."""

    # FRAUD_API_KEYS (comma separated `role:id:key` entries, `fraud_core.access`); kept out of
    # repr so logging the settings leaks no key
    api_keys: frozenset[str] = field(default_factory=frozenset, repr=False)
    keys_file: str | None = None  # FRAUD_API_KEYS_FILE: more entries, keys or their SHA-256
    contract: Contract = field(default_factory=builtin_contract)  # FRAUD_CONTRACT
    # the value of the contract's privacy.key_env, when an entity is personal (never in repr)
    privacy_key: bytes | None = field(default=None, repr=False)
    redis_url: str = DEFAULT_REDIS_URL  # REDIS_URL
    key_prefix: str = DEFAULT_PREFIX  # FRAUD_REDIS_PREFIX (the loader's too: `online_keys`)
    redis_cluster: bool = False  # FRAUD_REDIS_CLUSTER=1: REDIS_URL names a node of a cluster
    # FRAUD_DATA_DIR (a folder or an object-store URL); models are read from <data_dir>/models.
    # A UPath (a local one is a Path too): one type, as Litestar's signature model needs.
    data_dir: UPath = field(default_factory=lambda: location_path("data"))
    host: str = "127.0.0.1"  # FRAUD_HOST
    port: int = 8000  # FRAUD_PORT
    redis_timeout_ms: int = 80  # FRAUD_REDIS_TIMEOUT_MS: connect and read, so a 503 comes fast
    # FRAUD_REDIS_DEADLINE_MS: how long a read or commit keeps trying after Redis timeouts (a busy
    # host); a refused connection is a 503 at once. 0: one try.
    redis_deadline_ms: int = 500
    redis_max_connections: int = 32
    model_poll_s: float = 2.0  # FRAUD_MODEL_POLL_S: how often current.json is looked at
    batch_max_orders: int = 64  # FRAUD_BATCH_MAX_ORDERS: micro-batch size for concurrent requests
    batch_wait_ms: float = (
        0.0  # FRAUD_BATCH_WAIT_MS: extra wait to fill a batch (0: take what is queued)
    )
    max_body_bytes: int = 1_048_576  # FRAUD_MAX_BODY_BYTES
    scored_ttl_s: int = 7 * 86_400  # FRAUD_SCORED_TTL_S: how long a scored order is remembered
    # FRAUD_ORDER_INDEX_DAYS: how long a label can name an order whose answer expired (fractions
    # allowed); by default the features' horizon, beyond which a label changes no feature
    order_index_days: float = DEFAULT_ORDER_INDEX_DAYS
    # FRAUD_MAX_FUTURE_S (read by fraud_core.clock): orders dated further ahead are refused
    max_future_s: int = DEFAULT_MAX_FUTURE_S
    # FRAUD_DECLINE_HOLDOUT_SHARE: share of would-be declines approved and watched (0: none)
    decline_holdout_share: float = 0.0
    generated_api_key: bool = False  # True when no key was configured and one was made up
    # FRAUD_REVIEW_DAYS: how many order days back the review console's queue reaches
    review_days: int = DEFAULT_WINDOW_DAYS
    # FRAUD_CONSOLE_SECRET: signs and encrypts the console's session cookie and its CSRF token;
    # every worker must share it (`fraud serve` makes one for its workers when it is not set).
    # Never in repr. Made up per process when not given.
    console_secret: bytes = field(default_factory=lambda: secrets.token_bytes(32), repr=False)
    # FRAUD_CONSOLE_SECURE_COOKIE=1: the session cookie only travels over HTTPS (set it behind a
    # TLS proxy; the default serves plain HTTP on 127.0.0.1)
    console_secure_cookie: bool = False
    console_session_s: int = 8 * 3600  # FRAUD_CONSOLE_SESSION_S: a sign-in lasts a working day
    console_secret_generated: bool = False  # True when FRAUD_CONSOLE_SECRET was not given
    log_level: str = (
        "INFO"  # FRAUD_LOG_LEVEL: the service's own log lines (`fraud serve --log-level`)
    )

    def __post_init__(self) -> None:  # a str or a plain Path from a caller becomes a UPath
        object.__setattr__(self, "data_dir", location_path(self.data_dir))

    @functools.cached_property
    def request_shape(self) -> RequestShape:
        """How requests carry the contract's entities and attributes."""
        return RequestShape.keyed(self.contract, self.privacy_key)

    @functools.cached_property
    def key_ring(self) -> KeyRing:
        """The accepted keys with their roles (KeyConfigError names a bad entry, never a key)."""
        return KeyRing.of(self.api_keys, self.keys_file)

    @property
    def order_index_s(self) -> int:
        return max(1, round(self.order_index_days * DAY_S))

    @property
    def models_dir(self) -> UPath:
        return DataLayout(self.data_dir).models

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> Settings:
        env = dict(os.environ if env is None else env)
        contract = serving_contract(env)  # one the service cannot serve is refused at start
        keys = frozenset(k.strip() for k in env.get(KEYS_ENV, "").split(",") if k.strip())
        keys_file = env.get(KEYS_FILE_ENV, "").strip() or None
        generated = not keys and not keys_file
        if generated:
            keys = frozenset({f"{ADMIN}:generated:{secrets.token_urlsafe(24)}"})
        settings = cls(
            api_keys=keys,
            keys_file=keys_file,
            contract=contract,
            privacy_key=SourceFormat.of(contract).personal_key(env),
            redis_url=env.get("REDIS_URL") or DEFAULT_REDIS_URL,
            key_prefix=resolve_key_prefix(env=env),
            redis_cluster=resolve_cluster(env),
            data_dir=DataLayout.at(env.get("FRAUD_DATA_DIR") or "data").root,
            host=env.get("FRAUD_HOST") or "127.0.0.1",
            port=_int(env, "FRAUD_PORT", 8000),
            redis_timeout_ms=_int(env, "FRAUD_REDIS_TIMEOUT_MS", 80),
            redis_deadline_ms=_int(env, "FRAUD_REDIS_DEADLINE_MS", 500),
            model_poll_s=_float(env, "FRAUD_MODEL_POLL_S", 2.0),
            batch_max_orders=_int(env, "FRAUD_BATCH_MAX_ORDERS", 64),
            batch_wait_ms=_float(env, "FRAUD_BATCH_WAIT_MS", 0.0),
            max_body_bytes=_int(env, "FRAUD_MAX_BODY_BYTES", 1_048_576),
            scored_ttl_s=_int(env, "FRAUD_SCORED_TTL_S", 7 * 86_400),
            order_index_days=_float(env, "FRAUD_ORDER_INDEX_DAYS", DEFAULT_ORDER_INDEX_DAYS),
            max_future_s=max_future_s(env),
            decline_holdout_share=check_holdout_share(_float(env, HOLDOUT_ENV, 0.0)),
            generated_api_key=generated,
            log_level=_log_level(env),
            review_days=_review_days(env),
            console_secret=_console_secret(env),
            console_secret_generated=not env.get(CONSOLE_SECRET_ENV, "").strip(),
            console_secure_cookie=env.get("FRAUD_CONSOLE_SECURE_COOKIE", "").strip()
            in ("1", "true"),
            console_session_s=_int(env, "FRAUD_CONSOLE_SESSION_S", 8 * 3600),
        )
        settings.key_ring  # noqa: B018 -- a bad key entry is refused at start, not per request
        return settings
