"""Reading a data contract: YAML through the safe loader, then every key checked, with an error
that names the file, the line, the key and the reason. Nothing falls back to a default when a key
is misspelt: an unknown key is an error, and so is a duplicate one.
"""

from __future__ import annotations

import difflib
import functools
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml

from fraud_core.contract.model import (
    AMOUNT_UNITS,
    ATTRIBUTE_TYPES,
    ZONE_OFFSET,
    ZONE_UTC,
    Amount,
    Attribute,
    Contract,
    Entity,
    Features,
    Labels,
    OrderTime,
    Source,
    Transform,
    Window,
)

CONTRACT_ENV = "FRAUD_CONTRACT"
PERSONAL_KEY_MIN_CHARS = 16  # of the HMAC key that digests personal entities
SHIPPED = Path(__file__).with_name("shipped")
DEFAULT_CONTRACT_PATH = SHIPPED / "ecommerce.yaml"

# Entity and attribute names go into feature names and Redis keys: keep them plain.
_NAME = re.compile(r"^[a-z][a-z0-9_]{0,39}$")
_DURATION = re.compile(r"^([1-9][0-9]*)([smhd])$")
_UNIT_S = {"s": 1, "m": 60, "h": 3_600, "d": 86_400}
_TRANSFORM = re.compile(r"^([a-z_]+)(?:/([0-9]+))?(?:/([0-9]+))?$")
# name -> (what its size means, smallest, largest); None: takes no size
TRANSFORMS: dict[str, tuple[str, int, int] | None] = {
    "lower_strip": None,
    "email_domain": None,
    "ip_prefix": ("IPv4 prefix bits", 1, 32),  # then optionally IPv6's: ip_prefix/24/48
    "prefix": ("characters", 1, 256),
}
# The platform's own order columns and the quarantine's: no entity or attribute may take them.
_RESERVED_NAMES = frozenset(
    {"order", "order_id", "order_date", "order_amount", "is_fraud", "label_date"}
    | {"source_file", "reason"}
)
ENTITY_KEYS = ("name", "column", "counterparts", "transform", "primary", "personal", "description")
ATTRIBUTE_KEYS = (
    *("name", "type", "range", "column", "required", "aggregate", "decimals", "description"),
)
MAX_DECIMALS = 6
_ENV_NAME = re.compile(r"^[A-Z_][A-Z0-9_]*$")


class ContractError(ValueError):
    """A contract that cannot be used: the message names the file, line, key and reason."""


@dataclass
class _Doc:
    """The parsed YAML as plain values, with the line (1-based) of every key path."""

    origin: str
    lines: dict[str, int] = field(default_factory=dict)

    def error(self, path: str, reason: str) -> ContractError:
        line = self.lines.get(path)
        where = f"{self.origin}:{line}" if line else self.origin
        return ContractError(f"{where}: {path or 'contract'}: {reason}")


_STANDARD_TAGS = ("tag:yaml.org,2002:map", "tag:yaml.org,2002:seq")


def _plain(loader: yaml.SafeLoader, node: yaml.Node, path: str, doc: _Doc) -> Any:
    doc.lines.setdefault(path, node.start_mark.line + 1)
    if isinstance(node, yaml.CollectionNode) and node.tag not in _STANDARD_TAGS:
        raise doc.error(path, f"the tag {node.tag!r} is not allowed in a contract")
    if isinstance(node, yaml.MappingNode):
        out: dict[str, Any] = {}
        for key_node, value_node in node.value:
            key = loader.construct_object(key_node)
            if not isinstance(key, str):
                raise ContractError(
                    f"{doc.origin}:{key_node.start_mark.line + 1}: {path or 'contract'}: "
                    f"key {key!r} is not text"
                )
            sub = f"{path}.{key}" if path else key
            if key in out:
                doc.lines[sub] = key_node.start_mark.line + 1
                raise doc.error(sub, "given twice")
            doc.lines[sub] = key_node.start_mark.line + 1
            out[key] = _plain(loader, value_node, sub, doc)
        return out
    if isinstance(node, yaml.SequenceNode):
        return [_plain(loader, item, f"{path}[{i}]", doc) for i, item in enumerate(node.value)]
    return loader.construct_object(node)


def _parse(text: str, origin: str) -> tuple[Any, _Doc]:
    doc = _Doc(origin)
    loader = yaml.SafeLoader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            raise ContractError(f"{origin}: the file is empty")
        return _plain(loader, node, "", doc), doc
    except yaml.MarkedYAMLError as err:
        mark = err.problem_mark or err.context_mark
        line = f":{mark.line + 1}" if mark else ""
        context = ""
        if err.context_mark and mark and err.context_mark.line != mark.line:
            context = f" (in what starts at line {err.context_mark.line + 1})"
        raise ContractError(
            f"{origin}{line}: not valid YAML: {err.problem or err}{context}"
        ) from None
    finally:
        loader.dispose()


class _Reader:
    """Takes keys out of one mapping whose keys must all be among `known` (else the first
    unknown one is refused, with the closest known key it may be a misspelling of)."""

    def __init__(self, doc: _Doc, value: Any, path: str, known: tuple[str, ...]) -> None:
        if not isinstance(value, Mapping):
            raise doc.error(path, f"must be a mapping of keys, not {_kind(value)}")
        self.doc, self.path, self.rest, self.known = doc, path, dict(value), known
        unknown = [k for k in self.rest if k not in known]
        if unknown:
            key = unknown[0]
            close = difflib.get_close_matches(key, [k for k in known if k not in self.rest], n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            raise doc.error(self.sub(key), f"unknown key (known here: {', '.join(known)}){hint}")

    def sub(self, key: str) -> str:
        return f"{self.path}.{key}" if self.path else key

    def take(self, key: str, default: Any = ..., *, types: tuple[type, ...] = ()) -> Any:
        assert key in self.known, key  # every key a reader takes is declared up front
        if key not in self.rest:
            if default is ...:
                raise self.doc.error(self.path, f"missing key {key!r}")
            return default
        value = self.rest.pop(key)
        if types and (not isinstance(value, types) or isinstance(value, bool) != (bool in types)):
            names = " or ".join(t.__name__ for t in types)
            raise self.doc.error(self.sub(key), f"must be {names}, not {_kind(value)}")
        return value

    def text(self, key: str, default: Any = ...) -> Any:
        value = self.take(key, default, types=(str,))
        if isinstance(value, str) and not value.strip():
            raise self.doc.error(self.sub(key), "must not be empty")
        return value


def _kind(value: Any) -> str:
    return "nothing" if value is None else type(value).__name__


def _name(doc: _Doc, path: str, value: str) -> str:
    if not _NAME.match(value):
        raise doc.error(
            path,
            f"{value!r} is not a usable name (lower-case letters, digits and _, starting with a "
            "letter, at most 40 characters)",
        )
    if value in _RESERVED_NAMES:
        raise doc.error(path, f"{value!r} is reserved")
    return value


def duration_s(text: str) -> int:
    """`90s`, `15m`, `1h`, `7d` in seconds (ValueError otherwise)."""
    match = _DURATION.match(text)
    if not match:
        raise ValueError(f"{text!r} is not a duration such as 90s, 15m, 1h or 7d")
    return int(match.group(1)) * _UNIT_S[match.group(2)]


def _duration(doc: _Doc, path: str, value: Any) -> int:
    if not isinstance(value, str):
        raise doc.error(path, f"must be a duration such as 1h or 7d, not {_kind(value)}")
    try:
        return duration_s(value)
    except ValueError as err:
        raise doc.error(path, str(err)) from None


def _windows(doc: _Doc, path: str, value: Any) -> tuple[Window, ...]:
    if not isinstance(value, list) or not value:
        raise doc.error(path, "must be a non-empty list of durations such as [1h, 7d]")
    out: list[Window] = []
    for i, item in enumerate(value):
        seconds = _duration(doc, f"{path}[{i}]", item)
        if any(w.name == item for w in out):
            raise doc.error(f"{path}[{i}]", f"{item!r} is listed twice")
        out.append(Window(item, seconds))
    return tuple(out)


def _source(doc: _Doc, value: Any) -> Source:
    r = _Reader(doc, value, "source", ("order_id", "order_time", "amount", "labels"))
    order_id = r.text("order_id")
    t = _Reader(doc, r.take("order_time"), "source.order_time", ("column", "zone"))
    zone = t.text("zone", ZONE_UTC)
    if zone not in (ZONE_UTC, ZONE_OFFSET):
        try:
            ZoneInfo(zone)
        except (ZoneInfoNotFoundError, ValueError):
            raise doc.error(
                "source.order_time.zone",
                f"{zone!r} is neither UTC, offset nor a time zone name such as Europe/Berlin",
            ) from None
    order_time = OrderTime(t.text("column"), zone)
    a = _Reader(doc, r.take("amount"), "source.amount", ("column", "unit", "minor_digits"))
    column, unit = a.text("column"), a.text("unit", "major")
    if unit not in AMOUNT_UNITS:
        raise doc.error("source.amount.unit", f"{unit!r} is not one of {', '.join(AMOUNT_UNITS)}")
    digits = a.take("minor_digits", 2, types=(int,))
    if not 0 <= digits <= 4:
        raise doc.error("source.amount.minor_digits", f"{digits} is outside 0..4")
    labels = None
    given = r.take("labels", None)
    if given is not None:
        lab = _Reader(doc, given, "source.labels", ("is_fraud", "label_time"))
        labels = Labels(lab.text("is_fraud"), lab.text("label_time"))
    return Source(order_id, order_time, Amount(column, unit, digits), labels)


def _transform(doc: _Doc, path: str, value: Any) -> Transform:
    if not isinstance(value, str):
        raise doc.error(
            path, f"must be text such as lower_strip or ip_prefix/24, not {_kind(value)}"
        )
    match = _TRANSFORM.match(value)
    if not match or match.group(1) not in TRANSFORMS:
        raise doc.error(path, f"unknown transform {value!r} (one of: {', '.join(TRANSFORMS)})")
    name, size, size_v6 = match.group(1), match.group(2), match.group(3)
    takes = TRANSFORMS[name]
    if takes is None:
        if size is not None:
            raise doc.error(path, f"{name} takes no size")
        return Transform(name)
    what, low, high = takes
    if size is None:
        raise doc.error(path, f"{name} needs its {what}: {name}/N")
    if not low <= int(size) <= high:
        raise doc.error(path, f"{name}: {size} {what} is outside {low}..{high}")
    if size_v6 is not None:
        if name != "ip_prefix":
            raise doc.error(path, f"{name} takes one size")
        if not 1 <= int(size_v6) <= 128:
            raise doc.error(path, f"{name}: {size_v6} IPv6 prefix bits is outside 1..128")
    return Transform(name, int(size), None if size_v6 is None else int(size_v6))


def _entities(doc: _Doc, value: Any) -> tuple[Entity, ...]:
    if not isinstance(value, list) or not value:
        raise doc.error("entities", "must be a non-empty list (at least one entity)")
    out: list[Entity] = []
    for i, item in enumerate(value):
        path = f"entities[{i}]"
        r = _Reader(doc, item, path, ENTITY_KEYS)
        name = _name(doc, f"{path}.name", r.text("name"))
        if any(e.name == name for e in out):
            raise doc.error(f"{path}.name", f"entity {name!r} is declared twice")
        column = r.text("column")
        counterparts = r.take("counterparts", [], types=(list,))
        transform = r.take("transform", None)
        entity = Entity(
            name=name,
            column=column,
            counterparts=tuple(counterparts),
            transform=None
            if transform is None
            else _transform(doc, f"{path}.transform", transform),
            primary=r.take("primary", False, types=(bool,)),
            personal=r.take("personal", False, types=(bool,)),
            description=r.take("description", "", types=(str,)),
        )
        out.append(entity)
    names = [e.name for e in out]
    for i, e in enumerate(out):
        seen: set[str] = set()
        for j, c in enumerate(e.counterparts):
            path = f"entities[{i}].counterparts[{j}]"
            if c not in names:
                raise doc.error(
                    path, f"{c!r} is not an entity of this contract ({', '.join(names)})"
                )
            if c == e.name:
                raise doc.error(path, f"an entity cannot be its own counterpart ({c!r})")
            if c in seen:
                raise doc.error(path, f"{c!r} is listed twice")
            seen.add(c)
    primaries = [i for i, e in enumerate(out) if e.primary]
    if not primaries:
        raise doc.error("entities", "no entity is marked `primary: true` (exactly one must be)")
    if len(primaries) > 1:
        raise doc.error(
            f"entities[{primaries[1]}].primary",
            f"only one entity may be primary ({out[primaries[0]].name!r} is already)",
        )
    return tuple(out)


def _attributes(doc: _Doc, value: Any) -> tuple[Attribute, ...]:
    if value is None:
        return ()
    if not isinstance(value, list):
        raise doc.error("attributes", f"must be a list, not {_kind(value)}")
    out: list[Attribute] = []
    for i, item in enumerate(value):
        path = f"attributes[{i}]"
        r = _Reader(doc, item, path, ATTRIBUTE_KEYS)
        name = _name(doc, f"{path}.name", r.text("name"))
        kind = r.text("type")
        if kind not in ATTRIBUTE_TYPES:
            raise doc.error(f"{path}.type", f"{kind!r} is not one of {', '.join(ATTRIBUTE_TYPES)}")
        bounds = r.take("range", None, types=(list,))
        if bounds is not None:
            if kind != "numeric":
                raise doc.error(f"{path}.range", "only a numeric attribute has a range")
            if (
                len(bounds) != 2
                or not all(isinstance(b, int | float) and not isinstance(b, bool) for b in bounds)
                or not bounds[0] <= bounds[1]
            ):
                raise doc.error(f"{path}.range", "must be [low, high] numbers with low <= high")
            bounds = (float(bounds[0]), float(bounds[1]))
        required = r.take("required", True, types=(bool,))
        aggregate = r.take("aggregate", False, types=(bool,))
        decimals = r.take("decimals", None, types=(int,))
        if (aggregate or decimals is not None) and kind != "numeric":
            key = "aggregate" if aggregate else "decimals"
            raise doc.error(f"{path}.{key}", "only a numeric attribute is aggregated")
        if aggregate and not required:
            raise doc.error(
                f"{path}.aggregate",
                "an aggregated attribute must be required: a missing value has no sum",
            )
        if decimals is not None and not 0 <= decimals <= MAX_DECIMALS:
            raise doc.error(f"{path}.decimals", f"must be 0 to {MAX_DECIMALS}")
        if decimals is not None and not aggregate:
            raise doc.error(f"{path}.decimals", "only counts with `aggregate: true`")
        out.append(
            Attribute(
                name=name,
                column=r.text("column", name),
                type=kind,
                required=required,
                range=bounds,
                aggregate=aggregate,
                decimals=2 if decimals is None else decimals,
                description=r.take("description", "", types=(str,)),
            )
        )
    return tuple(out)


def _features(doc: _Doc, value: Any) -> Features:
    r = _Reader(
        doc,
        value,
        "features",
        ("history_n", "windows", "distinct_windows", "risk_windows", "risk_delay", "switched_off"),
    )
    history_n = r.take("history_n", types=(int,))
    if not 1 <= history_n <= 100:
        raise doc.error("features.history_n", f"{history_n} is outside 1..100")
    windows = _windows(doc, "features.windows", r.take("windows"))
    distinct = r.take("distinct_windows", [], types=(list,))
    for i, name in enumerate(distinct):
        if name not in {w.name for w in windows}:
            raise doc.error(
                f"features.distinct_windows[{i}]",
                f"{name!r} is not one of features.windows ({', '.join(w.name for w in windows)})",
            )
    if len(set(distinct)) != len(distinct):
        raise doc.error("features.distinct_windows", "a window is listed twice")
    risk = _windows(doc, "features.risk_windows", r.take("risk_windows"))
    delay = _duration(doc, "features.risk_delay", r.take("risk_delay"))
    off = r.take("switched_off", [], types=(list,))
    for i, name in enumerate(off):
        if not isinstance(name, str):
            raise doc.error(f"features.switched_off[{i}]", f"{name!r} is not a feature name")
    if len(set(off)) != len(off):
        raise doc.error("features.switched_off", "a feature is listed twice")
    return Features(history_n, windows, tuple(distinct), risk, delay, tuple(off))


def _check_switched_off(doc: _Doc, contract: Contract) -> None:
    """Every switched-off feature must be one the contract computes."""
    names = contract.spec.feature_names
    for i, name in enumerate(contract.features.switched_off):
        if name not in names:
            close = difflib.get_close_matches(name, names, n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            raise doc.error(
                f"features.switched_off[{i}]",
                f"{name!r} is not one of this contract's {len(names)} features{hint}",
            )


def _check_columns(doc: _Doc, contract: Contract) -> None:
    """One role per source column, except that several entities may read one column (an e-mail
    and its domain)."""
    s = contract.source
    roles = {
        "source.order_id": s.order_id,
        "source.order_time.column": s.order_time.column,
        "source.amount.column": s.amount.column,
    }
    if s.labels:
        roles |= {"source.labels.is_fraud": s.labels.is_fraud}
        roles |= {"source.labels.label_time": s.labels.label_time}
    for i, a in enumerate(contract.attributes):
        roles[f"attributes[{i}]"] = a.column
    owner: dict[str, str] = {}
    for path, column in roles.items():
        if column in owner:
            raise doc.error(path, f"column {column!r} already has a role at {owner[column]}")
        owner[column] = path
    for i, e in enumerate(contract.entities):
        if e.column in owner:
            raise doc.error(
                f"entities[{i}].column",
                f"column {e.column!r} already has a role at {owner[e.column]}",
            )
    names = {e.name for e in contract.entities}
    for i, a in enumerate(contract.attributes):
        if a.name in names:
            raise doc.error(f"attributes[{i}].name", f"{a.name!r} is also an entity's name")
    seen: set[str] = set()
    for feature in contract.spec.feature_names:
        if feature in seen:  # an attribute named like a feature family ("amount", ...)
            i = next(
                (i for i, a in enumerate(contract.attributes) if a.name in feature),
                0,
            )
            raise doc.error(
                f"attributes[{i}].name",
                f"the feature {feature!r} would come out twice: rename the attribute",
            )
        seen.add(feature)


def contract_from_text(
    text: str,
    origin: str = "<contract>",
    env: Mapping[str, str] | None = None,
    *,
    check_key: bool = True,
) -> Contract:
    """The contract in `text`, checked; ContractError naming `origin`, line and key otherwise.
    `env` (default the process environment) must hold the privacy key variable when an entity
    is personal (`check_key`: checked here; else by `check_privacy_key` where the key is used)."""
    data, doc = _parse(text, origin)
    r = _Reader(
        doc,
        data,
        "",
        ("version", "name", "source", "entities", "attributes", "features", "privacy"),
    )
    version = r.take("version", types=(int,))
    if version != 1:
        raise doc.error("version", f"version {version} is not known (this platform reads 1)")
    name = _name(doc, "name", r.text("name"))
    source = _source(doc, r.take("source"))
    entities = _entities(doc, r.take("entities"))
    attributes = _attributes(doc, r.take("attributes", None))
    features = _features(doc, r.take("features"))
    key_env = None
    privacy = r.take("privacy", None)
    if privacy is not None:
        p = _Reader(doc, privacy, "privacy", ("key_env",))
        key_env = p.text("key_env")
        if not _ENV_NAME.match(key_env):
            raise doc.error("privacy.key_env", f"{key_env!r} is not an environment variable name")
    contract = Contract(name, source, entities, attributes, features, key_env, version)
    _check_columns(doc, contract)
    _check_switched_off(doc, contract)
    personal = [i for i, e in enumerate(entities) if e.personal]
    if personal and key_env is None:
        raise doc.error(
            f"entities[{personal[0]}].personal",
            "a personal entity needs privacy.key_env: the variable that holds the HMAC key",
        )
    problem = _privacy_key_problem(contract, env) if check_key else None
    if problem:
        raise doc.error("privacy.key_env", problem)
    return contract


def check_privacy_key(
    contract: Contract, env: Mapping[str, str] | None = None, origin: str = "<contract>"
) -> None:
    """ContractError unless the privacy key variable holds a key long enough, when the contract
    has a personal entity: personal values are keyed with it."""
    problem = _privacy_key_problem(contract, env)
    if problem:
        raise ContractError(f"{origin}: privacy.key_env: {problem}")


def _privacy_key_problem(contract: Contract, env: Mapping[str, str] | None) -> str | None:
    if not any(e.personal for e in contract.entities):
        return None
    key_env = contract.privacy_key_env or ""
    if len((os.environ if env is None else env).get(key_env, "")) >= PERSONAL_KEY_MIN_CHARS:
        return None
    return (
        f"${key_env} is unset or shorter than {PERSONAL_KEY_MIN_CHARS} characters: personal "
        "entities are keyed with it (set it in the environment, never in the file)"
    )


def load_contract(
    path: Path | str, env: Mapping[str, str] | None = None, *, check_key: bool = True
) -> Contract:
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as err:
        raise ContractError(f"{path}: cannot read the contract: {err}") from None
    return contract_from_text(text, str(path), env, check_key=check_key)


@functools.lru_cache(maxsize=1)
def builtin_contract() -> Contract:
    """The built-in e-commerce contract, read once per process (a Contract is immutable)."""
    return load_contract(DEFAULT_CONTRACT_PATH, env={})


def contract_path(env: Mapping[str, str] | None = None) -> Path:
    """`$FRAUD_CONTRACT` when set, else the built-in e-commerce contract."""
    value = (os.environ if env is None else env).get(CONTRACT_ENV, "").strip()
    return Path(value) if value else DEFAULT_CONTRACT_PATH


def active_contract(env: Mapping[str, str] | None = None) -> Contract:
    """The contract every command, asset and the service use: `$FRAUD_CONTRACT` or the default."""
    return load_contract(contract_path(env), env)


def applied_contract(env: Mapping[str, str] | None = None) -> Contract:
    """The active contract, as every asset, sensor and command applies it: entities, their
    transforms and counterparts, attributes (validated and kept with the orders) and the
    feature knobs. Steps ask on every use of the data folder: a file is parsed once per version
    of it, its privacy key checked on every call (the environment may change)."""
    path = contract_path(env)
    try:
        stat = path.stat()
    except OSError as err:
        raise ContractError(f"{path}: cannot read the contract: {err}") from None
    contract = _parsed(str(path), stat.st_mtime_ns, stat.st_size)
    check_privacy_key(contract, env, origin=str(path))
    return contract


def serving_contract(env: Mapping[str, str] | None = None) -> Contract:
    """The active contract when the scoring service can serve it (`unserved_terms`), else
    ContractError naming what stops it."""
    contract = applied_contract(env)
    problems = unserved_terms(contract)
    if problems:
        raise ContractError(
            f"{contract_path(env)}: the scoring service cannot serve contract "
            f"{contract.name!r}: {'; '.join(problems)}"
        )
    return contract


def unserved_terms(contract: Contract) -> list[str]:
    """Why the scoring service cannot serve `contract`, each naming the key (empty: it can): a
    label finds an order's entities through its primary entity's state, so the primary
    entity's counterparts must name every other entity."""
    primary = contract.primary
    i = contract.entities.index(primary)
    missing = [
        e.name for e in contract.entities if e is not primary and e.name not in primary.counterparts
    ]
    if not missing:
        return []
    return [
        f"entities[{i}].counterparts of the primary entity {primary.name!r} leave out "
        f"{', '.join(missing)} (a label finds an order's entities through them)"
    ]


@functools.lru_cache(maxsize=8)
def _parsed(path: str, mtime_ns: int, size: int) -> Contract:
    return load_contract(path, env={}, check_key=False)
