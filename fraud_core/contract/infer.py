"""A first contract for a team's own orders, proposed from a sample file (`fraud contract infer
DATA`): which column is the order id, the order time (and whether its values carry offsets), the
amount (and whether it is in cents), the labels, the entities and the attributes. Every guess is
written as a comment beside the key, for the team to read and edit; the proposal is checked by
the loader before it is shown.
"""

from __future__ import annotations

import ipaddress
import json
import re
from dataclasses import dataclass

import numpy as np
import pandas as pd

from fraud_core.contract.loader import DEFAULT_CONTRACT_PATH, contract_from_text
from fraud_core.contract.source import HAS_OFFSET, clean_text

_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
# Integer columns with these in their name are codes (merchant category, country), not numbers.
_CODE_WORDS = ("code", "mcc", "category", "type", "country", "zip", "postal")
_SHARE = 0.95  # of a column's non-empty values that must fit a kind for the column to be it


@dataclass(frozen=True)
class Column:
    name: str
    present: float  # share of non-empty values
    unique: float  # distinct / non-empty
    kind: str  # "time", "number", "integer", "flag", "email", "ip", "text"
    offsets: bool = False  # time: every text value carries its offset
    naive: bool = False  # time: values without a zone


def _text(values: pd.Series) -> pd.Series:
    return clean_text(values).dropna()


def _share(mask: pd.Series | np.ndarray) -> float:
    return float(np.mean(mask)) if len(mask) else 0.0


def profile(name: str, values: pd.Series) -> Column:
    """What one column looks like."""
    n = len(values)
    if isinstance(values.dtype, pd.DatetimeTZDtype) or pd.api.types.is_datetime64_dtype(values):
        present = values.notna()
        naive = not isinstance(values.dtype, pd.DatetimeTZDtype)
        return Column(name, _share(present), 1.0, "time", naive=naive)
    text = _text(values)
    present = len(text) / n if n else 0.0
    unique = text.nunique() / len(text) if len(text) else 0.0
    if not len(text):
        return Column(name, 0.0, 0.0, "text")
    numbers = pd.to_numeric(text, errors="coerce")
    if _share(numbers.notna()) >= _SHARE:
        whole = numbers.dropna()
        if set(whole.unique()) <= {0, 1}:
            return Column(name, present, unique, "flag")
        kind = "integer" if _share(whole == np.round(whole)) >= _SHARE else "number"
        return Column(name, present, unique, kind)
    times = pd.to_datetime(text, errors="coerce", utc=True, format="ISO8601")
    if _share(times.notna()) >= _SHARE:
        offsets = _share(text.str.contains(HAS_OFFSET)) >= _SHARE
        return Column(name, present, unique, "time", offsets=offsets, naive=not offsets)
    if _share(text.str.match(_EMAIL)) >= _SHARE:
        return Column(name, present, unique, "email")

    def is_ip(value: str) -> bool:
        try:
            ipaddress.ip_address(value)
        except ValueError:
            return False
        return True

    if _share(text.head(1000).map(is_ip)) >= _SHARE:
        return Column(name, present, unique, "ip")
    return Column(name, present, unique, "text")


_PLAIN_SCALAR = re.compile(r"^[A-Za-z_][A-Za-z0-9_.-]*$")


def _q(text: str) -> str:
    """A column name as a YAML scalar: as it is when plain, else double-quoted (JSON's quoting
    is YAML's), so no name from a file can add a key or break the proposal."""
    return (
        text if _PLAIN_SCALAR.match(text) and text.lower() not in _YAML_WORDS else json.dumps(text)
    )


_YAML_WORDS = frozenset({"true", "false", "yes", "no", "on", "off", "null", "y", "n", "~"})


def _plain_name(text: str) -> str:
    """A column's name as a contract name: lower-case letters, digits and _, a letter first."""
    name = re.sub(r"[^a-z0-9_]+", "_", text.lower()).strip("_")[:40]
    return name if re.match(r"^[a-z]", name) else f"c_{name}"[:40]


def _named(columns: list[Column], words: tuple[str, ...], kinds: tuple[str, ...]) -> Column | None:
    """The first column of one of `kinds` whose name holds one of `words` (in their order)."""
    for word in words:
        for c in columns:
            if c.kind in kinds and word in c.name.lower():
                return c
    return None


def infer_contract(frame: pd.DataFrame, name: str = "my_orders") -> str:
    """A contract for `frame`'s shape, as YAML text with a comment on each guess. ValueError
    when no order id, order time or amount can be told apart."""
    columns = [profile(str(c), frame[c]) for c in frame.columns]
    used: set[str] = set()

    def take(column: Column | None) -> Column | None:
        if column is not None:
            used.add(column.name)
        return column

    ids = [
        c
        for c in columns
        if c.present >= 0.99 and c.unique >= 0.99 and c.kind in ("text", "integer")
    ]
    order_id = take(_named(ids, ("order", "id"), ("text", "integer")) or (ids[0] if ids else None))
    times = [c for c in columns if c.kind == "time"]
    order_time = take(
        _named(times, ("order", "created", "placed", "date", "time", "ts"), ("time",))
        or (max(times, key=lambda c: c.present) if times else None)
    )
    rest = [c for c in columns if c.name not in used]
    amount = take(_named(rest, ("amount", "total", "price", "value", "sum"), ("number", "integer")))
    missing = [
        what
        for what, column in (("order id", order_id), ("order time", order_time), ("amount", amount))
        if column is None
    ]
    if missing:
        raise ValueError(
            f"cannot tell the {', '.join(missing)} apart in the sample's columns "
            f"({', '.join(c.name for c in columns)}): write those keys by hand"
        )
    assert order_id and order_time and amount
    rest = [c for c in columns if c.name not in used]
    flag = take(_named(rest, ("fraud", "chargeback", "dispute", "label"), ("flag",)))
    rest = [c for c in columns if c.name not in used]
    label_words = ("label", "chargeback", "dispute", "fraud")
    label_time = None
    if flag:  # a time column, or one still empty in the sample (no label known yet)
        empty = [c for c in rest if c.present == 0.0]
        label_time = _named(rest, label_words, ("time",)) or _named(empty, label_words, ("text",))
        take(label_time)

    lines = [
        f"# Proposed by `fraud contract infer` from {len(frame):,} rows: read every key, edit what",
        "# it guessed wrong, then `fraud contract check` this file against the sample.",
        "version: 1",
        f"name: {_q(name)}",
        "",
        "source:",
        f"  order_id: {_q(order_id.name)}",
        "  order_time:",
        f"    column: {_q(order_time.name)}",
    ]
    if order_time.offsets:
        lines.append("    zone: offset        # every value carries its UTC offset")
    else:
        lines.append(
            "    zone: UTC           # values without an offset: UTC; if they are local time, "
            "write its zone (Europe/Berlin)"
        )
    minor = amount.kind == "integer" and any(
        w in amount.name.lower() for w in ("cent", "minor", "pence")
    )
    lines += ["  amount:", f"    column: {_q(amount.name)}"]
    lines.append(
        "    unit: minor         # whole cents (the column's name says so)"
        if minor
        else "    unit: major         # 129.90; write `minor` if these are cents"
    )
    if flag and label_time:
        lines += [
            "  labels:",
            f"    is_fraud: {_q(flag.name)}",
            f"    label_time: {_q(label_time.name)}",
        ]
    elif flag:
        lines.append(
            f"  # labels: {_q(flag.name)} looks like a fraud flag, but no column gives the time it became known"
        )

    rest = [c for c in columns if c.name not in used]
    entities: list[tuple[str, Column, str]] = []
    primary = take(
        _named(rest, ("customer", "user", "account", "buyer", "member"), ("text", "integer"))
    )
    if primary:
        entities.append(("customer_id", primary, "primary: true"))
    for kind, entity in (("email", "email"), ("ip", "ip_addr")):
        column = take(next((c for c in columns if c.kind == kind and c.name not in used), None))
        if column:
            entities.append((entity, column, ""))
    rest = [c for c in columns if c.name not in used]
    words = ("id", "device", "card", "terminal", "merchant", "phone", "fingerprint")
    for c in rest:  # other identifiers repeated across orders: devices, cards, terminals
        if (
            c.kind in ("text", "integer")
            and c.present >= 0.9
            and 0.01 < c.unique < 0.9
            and any(w in c.name.lower() for w in words)
        ):
            entities.append((_plain_name(c.name), c, ""))
            used.add(c.name)
    if not entities:
        raise ValueError(
            "no column looks like a customer, e-mail or IP: write the entities by hand"
        )
    if not any(flag_ == "primary: true" for _, _, flag_ in entities):
        entities[0] = (entities[0][0], entities[0][1], "primary: true")
    names = [e[0] for e in entities]
    lines += ["", "entities:"]
    for entity, column, primary_flag in entities:
        others = [n for n in names if n != entity]
        lines += [f"  - name: {_q(entity)}", f"    column: {_q(column.name)}"]
        if primary_flag:
            lines.append(
                "    primary: true       # its labels and precision@k are what the model reports"
            )
        if others:
            lines.append(f"    counterparts: [{', '.join(_q(o) for o in others)}]")

    # The platform's own attribute names where the built-in contract has the same attribute.
    known = {"lat": ("location_lat", "-90", "90"), "lon": ("location_long", "-180", "180")}
    known["lng"] = known["lon"]
    lines_attr: list[str] = []
    for c in [c for c in columns if c.name not in used and c.present > 0.0]:
        word = next((w for w in known if w in c.name.lower()), None)
        coded = c.kind == "integer" and any(w in c.name.lower() for w in _CODE_WORDS)
        if c.kind in ("number", "integer") and not coded:
            values = pd.to_numeric(_text(frame[c.name]), errors="coerce").dropna()
            attribute, low, high = known[word] if word else (_plain_name(c.name), None, None)
            lines_attr += [
                f"  - name: {_q(attribute)}",
                f"    column: {_q(c.name)}",
                f"    type: numeric       # seen {values.min():g}..{values.max():g}",
            ]
            if low is not None:
                lines_attr.append(f"    range: [{low}, {high}]")
            # a suggestion: aggregating needs a value on every order
            lines_attr.append("    # aggregate: true  # every entity sums and averages it")
        elif (c.kind == "text" or coded) and c.unique < 0.05:
            distinct = frame[c.name].nunique()
            lines_attr += [
                f"  - name: {_q(_plain_name(c.name))}",
                f"    column: {_q(c.name)}",
                f"    type: categorical   # {distinct} distinct values",
            ]
        else:
            continue
        if c.present < 1.0:
            lines_attr.append("    required: false")
    if lines_attr:
        lines += ["", "attributes:", *lines_attr]

    builtin = DEFAULT_CONTRACT_PATH.read_text()
    lines += ["", "features:                            # the built-in contract's; tune them later"]
    lines += builtin[builtin.index("features:") :].splitlines()[1:]
    text = "\n".join(lines) + "\n"
    contract_from_text(text, "<proposal>", env={})  # never propose a contract that does not load
    return text
