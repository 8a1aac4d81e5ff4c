"""How a contract's landing files map onto the platform's order columns: which source column
plays which role, how its order times are read (UTC, an offset on every value, or local time
in a named zone) and in which unit its amounts come.

Landing files are read under their own column names and renamed to the platform's
(`fraud_core.schema`) on the way in; validation parses times and amounts the contract's way;
quarantined rows go back under the source's names, with reasons that name the source's columns.
"""

from __future__ import annotations

import functools
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace

import numpy as np
import pandas as pd
import pyarrow as pa

from fraud_core.contract.loader import PERSONAL_KEY_MIN_CHARS, applied_contract, builtin_contract
from fraud_core.contract.model import ZONE_OFFSET, ZONE_UTC, Attribute, Contract, Entity

# A text time that carries its own offset: ...Z, ...+02:00, ...-0530, ...+02
HAS_OFFSET = re.compile(r"(?:[zZ]|[+-]\d{2}(?::?\d{2})?)$")


def clean_text(col: pd.Series) -> pd.Series:
    """Values as stripped text, NA where missing or empty (how every text field is read)."""
    s = col.astype("string").str.strip()
    return s.mask(s == "")


@dataclass(frozen=True)
class SourceFormat:
    """The source's shape: `columns` maps each platform column to the source column that
    fills it (the built-in contract maps every column to itself)."""

    columns: tuple[tuple[str, str], ...]
    zone: str = ZONE_UTC
    amount_unit: str = "major"
    minor_digits: int = 2
    entities: tuple[Entity, ...] = ()
    attributes: tuple[Attribute, ...] = ()
    key_env: str | None = None  # the variable holding the HMAC key of personal entities
    column_names: tuple[str, ...] = ()  # the platform's columns, in order (`schema.columns_of`)
    order_schema: pa.Schema | None = field(default=None, compare=False)  # validated orders

    @classmethod
    def of(cls, contract: Contract) -> SourceFormat:
        from fraud_core.schema import columns_of, order_schema  # built from a contract too

        s = contract.source
        return cls(
            tuple((own, source) for _, own, source, _ in contract.column_roles()),
            s.order_time.zone,
            s.amount.unit,
            s.amount.minor_digits,
            tuple(replace(e, description="") for e in contract.entities),  # words for people
            tuple(replace(a, description="") for a in contract.attributes),
            contract.privacy_key_env,
            tuple(c.name for c in columns_of(contract)),
            order_schema(contract),
        )

    @functools.cached_property
    def to_source(self) -> dict[str, str]:
        """platform column -> source column, for the columns whose names differ."""
        return {own: source for own, source in self.columns if source != own}

    def source_column(self, own: str) -> str:
        return self.to_source.get(own, own)

    @property
    def source_names(self) -> list[str]:
        """The source's columns for the platform's, in order, each once (an empty landing day
        is a frame of these)."""
        return list(dict.fromkeys(self.source_column(c) for c in self.column_names))

    @property
    def identity(self) -> bool:
        return not self.to_source and self.zone == ZONE_UTC and self.amount_unit == "major"

    def platform_frame(self, frame: pd.DataFrame) -> pd.DataFrame:
        """`frame` (a landing file as read) under the platform's column names; one source
        column may fill several (an e-mail and its domain). A source column that is not in
        the contract but carries a platform column's name is kept as `source:<name>`, so it
        cannot take that column's place."""
        if not self.to_source:
            return frame
        read = [source for _, source in self.columns]
        own = {name for name, _ in self.columns}
        clash = {c: f"source:{c}" for c in frame.columns if c in own and c not in read}
        if len(set(read)) == len(read):  # one platform column per source column: a rename
            return frame.rename(columns={**clash, **{v: k for k, v in self.to_source.items()}})
        out = {name: frame[source] for name, source in self.columns if source in frame.columns}
        for c in frame.columns:
            if c not in read:
                out[clash.get(c, c)] = frame[c]
        return pd.DataFrame(out, index=frame.index)

    def source_frame(self, frame: pd.DataFrame) -> pd.DataFrame:
        """Back to the source's names (quarantined rows keep the names and values they arrived
        with; of several platform columns read from one source column, the first says it)."""
        if not self.to_source:
            return frame
        out: dict[str, pd.Series] = {}
        for c in frame.columns:
            name = self.source_column(c) if not c.startswith("source:") else c[len("source:") :]
            out.setdefault(name, frame[c])
        return pd.DataFrame(out, index=frame.index)

    def personal_key(self, env: Mapping[str, str] | None = None) -> bytes | None:
        """The HMAC key of personal entities, from the environment (None: none is personal)."""
        if not any(e.personal for e in self.entities):
            return None
        value = (os.environ if env is None else env).get(self.key_env or "", "")
        if len(value) < PERSONAL_KEY_MIN_CHARS:  # the loader refused it; the variable changed
            raise ValueError(
                f"${self.key_env} is unset or shorter than {PERSONAL_KEY_MIN_CHARS} characters"
            )
        return value.encode()

    def reason(self, text: str) -> str:
        """A validation reason (`<platform column>: why`) naming the source's column."""
        own, sep, why = text.partition(": ")
        return f"{self.to_source[own]}{sep}{why}" if sep and own in self.to_source else text

    def amounts(self, values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(amounts in major units, mask of values that are not whole minor units)."""
        if self.amount_unit == "major":
            return values, np.zeros(len(values), dtype=bool)
        with np.errstate(invalid="ignore"):
            fractional = np.isfinite(values) & (values != np.round(values))
        return values / 10**self.minor_digits, fractional

    def timestamps(self, col: pd.Series) -> tuple[pd.Series, pd.Series, np.ndarray]:
        """(UTC timestamps in µs, mask of values present, mask of values refused for want of
        an offset or of a valid local time): the zone rule of the contract applied."""
        if isinstance(col.dtype, pd.DatetimeTZDtype):
            ts = col.dt.tz_convert("UTC")
            return ts.astype("datetime64[us, UTC]"), ts.notna(), np.zeros(len(col), dtype=bool)
        if pd.api.types.is_datetime64_dtype(col):
            return self._naive(col, col.notna().to_numpy())
        text = clean_text(col)
        present = text.notna()
        if self.zone == ZONE_UTC:  # naive values are UTC
            ts = pd.to_datetime(text, utc=True, errors="coerce", format="ISO8601")
            return ts.astype("datetime64[us, UTC]"), present, np.zeros(len(col), dtype=bool)
        has_offset = text.str.contains(HAS_OFFSET).fillna(False).to_numpy(dtype=bool)
        ts = pd.Series(pd.NaT, index=col.index, dtype="datetime64[us, UTC]")
        if has_offset.any():
            parsed = pd.to_datetime(text[has_offset], utc=True, errors="coerce", format="ISO8601")
            ts[has_offset] = parsed.astype("datetime64[us, UTC]")
        naive = present.to_numpy(dtype=bool) & ~has_offset
        refused = np.zeros(len(col), dtype=bool)
        if naive.any():
            local = pd.to_datetime(text[naive], errors="coerce", format="ISO8601")
            local_ts, _, local_refused = self._naive(local, local.notna().to_numpy())
            ts[naive] = local_ts
            refused[naive] = local_refused
        return ts, present, refused

    def _naive(self, col: pd.Series, parsed: np.ndarray) -> tuple[pd.Series, pd.Series, np.ndarray]:
        """Timestamps without a zone: UTC, refused (`offset`), or local time in the zone (a
        time that a DST change skips or repeats is refused: it names no single instant)."""
        col = col.astype("datetime64[us]")
        if self.zone == ZONE_UTC:
            ts = col.dt.tz_localize("UTC")
            return ts, pd.Series(parsed, index=col.index), np.zeros(len(col), dtype=bool)
        if self.zone == ZONE_OFFSET:
            ts = pd.Series(pd.NaT, index=col.index, dtype="datetime64[us, UTC]")
            return ts, pd.Series(parsed, index=col.index), parsed.copy()
        local = col.dt.tz_localize(self.zone, ambiguous="NaT", nonexistent="NaT")
        ts = local.dt.tz_convert("UTC").astype("datetime64[us, UTC]")
        refused = parsed & ts.isna().to_numpy()
        return ts, pd.Series(parsed, index=col.index), refused


def _local_text(ts: pd.Series, zone: str) -> pd.Series:
    """UTC timestamps as ISO 8601 text in `zone` with the offset they had there."""
    local = ts.dt.tz_convert(zone)
    whole = bool((local.dropna().dt.microsecond == 0).all())
    text = local.dt.strftime("%Y-%m-%dT%H:%M:%S%z" if whole else "%Y-%m-%dT%H:%M:%S.%f%z")
    return text.str.replace(r"([+-]\d{2})(\d{2})$", r"\1:\2", regex=True).astype("string")


# Where generated files of an `offset` contract keep their local times (any zone would do).
OFFSET_DISPLAY_ZONE = "Europe/Berlin"


def source_orders(source: SourceFormat, orders: pd.DataFrame) -> pd.DataFrame:
    """Validated orders (the platform's columns) in the source's shape, as a shop's export
    would hold them: its column names, amounts in its unit, order and label times as ISO text
    with their local offset (`offset`: in OFFSET_DISPLAY_ZONE; a named zone: in that zone; UTC:
    timestamps as they are). Validating the result under `source` gives `orders` back."""
    out = orders.copy()
    if source.amount_unit == "minor":
        scaled = np.round(out["order_amount"].to_numpy(dtype=np.float64) * 10**source.minor_digits)
        out["order_amount"] = scaled.astype(np.int64)
    if source.zone != ZONE_UTC:
        zone = OFFSET_DISPLAY_ZONE if source.zone == ZONE_OFFSET else source.zone
        for column in ("order_date", "label_date"):
            if column in out.columns:
                out[column] = _local_text(out[column], zone)
    return source.source_frame(out)


BUILTIN_FORMAT = SourceFormat.of(builtin_contract())


def applied_format() -> SourceFormat:
    """The source format of the contract in use ($FRAUD_CONTRACT, else the built-in one)."""
    return _format_of(applied_contract())


@functools.lru_cache(maxsize=8)
def _format_of(contract: Contract) -> SourceFormat:
    return SourceFormat.of(contract)
