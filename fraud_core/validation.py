"""Validation of landing files: typed, in-contract orders on one side, every rejected row with one
reason on the other.

The contract is the data contract in use (`fraud_core.contract`). Nothing is dropped silently:
each input row ends up either in `ValidationResult.valid` (typed as the contract's
`schema.order_schema`) or in `ValidationResult.quarantine` (the
original values as text, plus the `reason` naming the field and the `source_file`).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa

from fraud_core.clock import MAX_FUTURE_ENV, latest_accepted, max_future_s
from fraud_core.contract.model import ZONE_OFFSET
from fraud_core.contract.source import SourceFormat, applied_format, clean_text
from fraud_core.contract.transforms import entity_keys, keyed_digest
from fraud_core.features.spec import MAX_UNITS
from fraud_core.schema import BUILTIN_CONTRACT, ENTITY_KINDS
from fraud_core.storage import as_path, read_frame, readable

SOURCE_FILE = "source_file"
REASON = "reason"

# One fixed text per rule, so reasons can be counted; each names the field it is about.
ORDER_ID_MISSING = "order_id: missing or empty"
ORDER_ID_DUPLICATE = "order_id: duplicate of an earlier row (first kept)"
ORDER_ID_ACCEPTED_ON_OTHER_DAY = "order_id: already accepted on another day (first seen kept)"
ORDER_DATE_MISSING = "order_date: missing"
ORDER_DATE_UNPARSABLE = "order_date: not a timestamp"
ORDER_DATE_NO_OFFSET = "order_date: no UTC offset (the contract reads order times with one)"
ORDER_DATE_NOT_LOCAL = (
    "order_date: not a time of the contract's zone (a DST change skips or repeats it)"
)
ORDER_DATE_IN_FUTURE = f"order_date: in the future (more than ${MAX_FUTURE_ENV} after ingestion)"
ORDER_DATE_OUTSIDE_DAY = "order_date: outside the partition day (UTC)"
AMOUNT_MISSING = "order_amount: missing"
AMOUNT_UNPARSABLE = "order_amount: not a number"
AMOUNT_NOT_FINITE = "order_amount: not finite"
AMOUNT_NEGATIVE = "order_amount: negative"
AMOUNT_NOT_WHOLE_MINOR = "order_amount: not a whole number of minor units (the contract's unit)"
IS_FRAUD_INVALID = "is_fraud: not 0 or 1"
LABEL_DATE_UNPARSABLE = "label_date: not a timestamp"
LABEL_DATE_NO_OFFSET = "label_date: no UTC offset (the contract reads times with one)"
LABEL_DATE_NOT_LOCAL = (
    "label_date: not a time of the contract's zone (a DST change skips or repeats it)"
)
LABEL_DATE_BEFORE_ORDER = "label_date: before order_date"


def entity_missing(kind: str) -> str:
    return f"{kind}: missing or empty"


def not_utf8(column: str) -> str:
    return f"{column}: not valid UTF-8"


def out_of_range(name: str, lo: float, hi: float) -> str:
    return f"{name}: outside [{lo:g}, {hi:g}]"


ENTITY_MISSING = {k: entity_missing(k) for k in ENTITY_KINDS}
COORDINATE_RANGES = {a.name: a.range for a in BUILTIN_CONTRACT.attributes if a.range is not None}
COORDINATE_MISSING = {k: f"{k}: missing or not a number" for k in COORDINATE_RANGES}
COORDINATE_OUT_OF_RANGE = {k: out_of_range(k, lo, hi) for k, (lo, hi) in COORDINATE_RANGES.items()}

# A CSV that is not valid UTF-8 is read with the bad bytes replaced by U+FFFD, and every row with
# such a value in a text column is quarantined (the rest of the file is still accepted).
NOT_UTF8 = {k: not_utf8(k) for k in ("order_id", *ENTITY_KINDS)}
_REPLACEMENT_CHAR = "\ufffd"

LANDING_SUFFIXES = (".parquet", ".csv", ".csv.gz")
_DAY_IN_NAME = re.compile(r"(\d{4}-\d{2}-\d{2})")
_NAN_TEXT = frozenset({"nan", "+nan", "-nan"})


@dataclass(frozen=True)
class ValidationResult:
    """`valid`: the contract's `order_schema` dtypes, amounts rounded to cents, input order kept.
    `quarantine`: the rejected rows' original columns as text + `reason` + `source_file`."""

    valid: pd.DataFrame
    quarantine: pd.DataFrame

    @property
    def reason_counts(self) -> dict[str, int]:
        return reason_counts(self.quarantine)


def reason_counts(quarantine: pd.DataFrame) -> dict[str, int]:
    """How many quarantined rows per reason, most frequent first."""
    if quarantine.empty:
        return {}
    return {str(k): int(v) for k, v in quarantine[REASON].value_counts().items()}


def empty_orders(source: SourceFormat | None = None) -> pd.DataFrame:
    """A frame with no rows in the validated dtypes (what a day without orders holds) under
    `source`'s contract (default: the one in use)."""
    return (source or applied_format()).order_schema.empty_table().to_pandas()


def quarantine_schema(columns: list[str] | tuple[str, ...]) -> pa.Schema:
    """Every quarantine column is text: the values exactly as they arrived."""
    return pa.schema([pa.field(c, pa.string()) for c in columns])


def _numbers(col: pd.Series) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(float64 values, present mask, mask of literal NaN text) of a column of any type."""
    if pd.api.types.is_bool_dtype(col):
        col = col.astype("Int8")
    if pd.api.types.is_numeric_dtype(col):
        values = col.astype("Float64").to_numpy(dtype=np.float64, na_value=np.nan)
        present = col.notna().to_numpy()
        return values, present, np.zeros(len(col), dtype=bool)
    text = clean_text(col)
    values = pd.to_numeric(text, errors="coerce").astype("Float64")
    values = values.to_numpy(dtype=np.float64, na_value=np.nan)
    nan_text = text.str.lower().isin(_NAN_TEXT).fillna(False).to_numpy(dtype=bool)
    return values, text.notna().to_numpy(), nan_text


def validate_orders(
    df: pd.DataFrame,
    day: date,
    *,
    source_file: str | None = None,
    latest: datetime | None = None,
    accepted_elsewhere: Callable[[pd.Series], pd.Series] | None = None,
    source: SourceFormat | None = None,
) -> ValidationResult:
    """Validate one day's landing rows (as read, under the source's column names) against the
    data contract (`source`: the format of `$FRAUD_CONTRACT`, else of the built-in one).

    Types are coerced (a CSV gives text). Each rejected row gets exactly one reason: the first
    failing rule in column order. Duplicates are judged among rows that pass every other rule:
    the first occurrence of an order_id is kept, later ones are quarantined; so are ids that
    `accepted_elsewhere` (order ids -> the other day that accepted each first, or None) names.
    Orders dated after `latest` (default: now plus `FRAUD_MAX_FUTURE_S`) are refused, so one
    far-future order cannot move its entities' clocks. `source_file` names the file in the
    quarantine; a `source_file` column in `df` (several files of a day, see `read_landing_day`)
    wins over it. The quarantine keeps the source's column names and its reasons name the
    source's columns. Invariant: len(valid) + len(quarantine) == len(df).
    """
    if latest is None:
        latest = latest_accepted(max_future_s())
    source = source or applied_format()
    df = source.platform_frame(df.reset_index(drop=True))
    n = len(df)
    if SOURCE_FILE in df.columns:
        sources = df[SOURCE_FILE].astype("string").fillna(source_file or "")
        df = df.drop(columns=[SOURCE_FILE])
    else:
        sources = pd.Series([source_file or ""] * n, dtype="string")

    def column(name: str) -> pd.Series:
        return df[name] if name in df.columns else pd.Series([pd.NA] * n, dtype="object")

    reason = np.full(n, None, dtype=object)

    def flag(mask: np.ndarray | pd.Series, text: str) -> None:
        mask = np.asarray(mask, dtype=bool) & (reason == None)  # noqa: E711 (elementwise)
        reason[mask] = text

    order_id = clean_text(column("order_id"))
    flag(order_id.isna(), ORDER_ID_MISSING)
    flag(order_id.str.contains(_REPLACEMENT_CHAR, regex=False).fillna(False), NOT_UTF8["order_id"])

    offset_rule = source.zone == ZONE_OFFSET
    order_date, has_date, refused = source.timestamps(column("order_date"))
    flag(~has_date, ORDER_DATE_MISSING)
    flag(refused, ORDER_DATE_NO_OFFSET if offset_rule else ORDER_DATE_NOT_LOCAL)
    flag(order_date.isna(), ORDER_DATE_UNPARSABLE)
    flag((order_date > pd.Timestamp(latest)).fillna(False), ORDER_DATE_IN_FUTURE)
    start = pd.Timestamp(day.isoformat(), tz="UTC")
    end = start + timedelta(days=1)
    outside = ((order_date < start) | (order_date >= end)).fillna(False)
    flag(outside, ORDER_DATE_OUTSIDE_DAY)

    entities = {}
    key = source.personal_key()
    for entity in source.entities:
        name = entity.name
        raw = clean_text(column(name))
        flag(raw.isna(), entity_missing(name))
        flag(raw.str.contains(_REPLACEMENT_CHAR, regex=False).fillna(False), not_utf8(name))
        keyed = entity_keys(entity, raw, key) if entity.transform or entity.personal else raw
        flag(raw.notna() & keyed.isna(), f"{name}: {entity.transform} finds nothing in it")
        entities[name] = keyed

    amount, has_amount, amount_nan_text = _numbers(column("order_amount"))
    flag(~has_amount, AMOUNT_MISSING)
    flag(amount_nan_text, AMOUNT_NOT_FINITE)
    flag(np.isnan(amount), AMOUNT_UNPARSABLE)
    flag(np.isinf(amount), AMOUNT_NOT_FINITE)
    with np.errstate(invalid="ignore"):
        flag(amount < 0, AMOUNT_NEGATIVE)
    amount, fractional = source.amounts(amount)
    flag(fractional, AMOUNT_NOT_WHOLE_MINOR)

    attributes: dict[str, pd.Series | np.ndarray] = {}
    for attribute in source.attributes:
        name = attribute.name
        if attribute.type == "categorical":
            text = clean_text(column(name))
            if attribute.required:
                flag(text.isna(), f"{name}: missing or empty")
            flag(text.str.contains(_REPLACEMENT_CHAR, regex=False).fillna(False), not_utf8(name))
            attributes[name] = text
            continue
        values, present, _ = _numbers(column(name))
        if attribute.required:
            flag(np.isnan(values), f"{name}: missing or not a number")
        else:
            flag(present & np.isnan(values), f"{name}: not a number")
        if attribute.range is not None:
            lo, hi = attribute.range
            with np.errstate(invalid="ignore"):
                flag((values < lo) | (values > hi) | np.isinf(values), out_of_range(name, lo, hi))
        else:
            flag(np.isinf(values), f"{name}: not finite")
        if attribute.aggregate:
            with np.errstate(invalid="ignore", over="ignore"):
                big = np.abs(values) * 10.0**attribute.decimals > MAX_UNITS
            flag(big, f"{name}: too large to aggregate (at most {MAX_UNITS:.3g} units)")
        attributes[name] = values

    # is_fraud is optional: empty means "not known to be fraud", i.e. 0.
    fraud, has_fraud, _ = _numbers(column("is_fraud"))
    flag(has_fraud & ~np.isin(fraud, (0.0, 1.0)), IS_FRAUD_INVALID)

    label_date, has_label, refused = source.timestamps(column("label_date"))
    flag(refused, LABEL_DATE_NO_OFFSET if offset_rule else LABEL_DATE_NOT_LOCAL)
    flag(has_label & label_date.isna(), LABEL_DATE_UNPARSABLE)
    flag((label_date < order_date).fillna(False), LABEL_DATE_BEFORE_ORDER)

    passing = reason == None  # noqa: E711
    duplicate = passing & order_id.where(passing).duplicated(keep="first").to_numpy()
    flag(duplicate, ORDER_ID_DUPLICATE)
    if accepted_elsewhere is not None:
        passing = reason == None  # noqa: E711
        if passing.any():
            owners = accepted_elsewhere(order_id[passing])
            taken = np.zeros(n, dtype=bool)
            taken[np.flatnonzero(passing)] = owners.notna().to_numpy()
            flag(taken, ORDER_ID_ACCEPTED_ON_OTHER_DAY)

    ok = reason == None  # noqa: E711

    def keep(values: pd.Series | np.ndarray) -> pd.Series | np.ndarray:
        return values[ok].reset_index(drop=True) if isinstance(values, pd.Series) else values[ok]

    valid = pd.DataFrame(
        {
            "order_id": keep(order_id).astype("str"),
            "order_date": keep(order_date),
            **{kind: keep(values).astype("str") for kind, values in entities.items()},
            "order_amount": np.round(keep(amount), 2),
            **{name: keep(values) for name, values in attributes.items()},
            "is_fraud": np.nan_to_num(keep(fraud), nan=0.0).astype(np.int8),
            "label_date": keep(label_date),
        },
        columns=list(source.column_names),
    )

    bad = ~ok
    names = source.column_names
    original = list(names) + [c for c in df.columns if c not in names]
    quarantine = pd.DataFrame(
        {name: column(name)[bad].astype("string") for name in original}, columns=original
    )
    # Personal data is never stored in the clear, not even as it arrived: every column read
    # from a personal entity's source column holds the keyed digest of its text.
    if key is not None:
        personal = {source.source_column(e.name) for e in source.entities if e.personal}
        for name in original:
            if source.source_column(name) in personal:
                quarantine[name] = keyed_digest(clean_text(quarantine[name]), key)
    texts = reason[bad].astype(str)
    named = {text: source.reason(text) for text in set(texts)}  # the source's column names
    reasons = [named[text] for text in texts]
    quarantine[REASON] = pd.array(reasons, dtype="string")
    quarantine[SOURCE_FILE] = sources[bad].to_numpy()
    quarantine = source.source_frame(quarantine.reset_index(drop=True).astype("string"))
    return ValidationResult(valid=valid, quarantine=quarantine)


def day_of_landing_file(path: Path) -> date | None:
    """The day a landing file holds: the first YYYY-MM-DD in its name."""
    match = _DAY_IN_NAME.search(as_path(path).name)
    if match is None:
        return None
    try:
        return date.fromisoformat(match.group(1))
    except ValueError:
        return None


def landing_files_for_day(landing_dir: Path, day: date) -> list[Path]:
    """The landing files (parquet/CSV) whose name carries `day`, sorted by name. Hidden files
    (temporary files of an atomic write in progress) are ignored."""
    landing_dir = as_path(landing_dir)
    if not landing_dir.is_dir():
        return []
    return sorted(
        p
        for p in landing_dir.iterdir()
        if p.is_file()
        and not p.name.startswith(".")
        and p.name.lower().endswith(LANDING_SUFFIXES)
        and day_of_landing_file(p) == day
    )


def read_landing_file(path: Path) -> pd.DataFrame:
    """A landing file as it is: parquet with its own types, CSV as text (empty cells stay "")."""
    path = as_path(path)
    name = path.name.lower()
    if name.endswith(".parquet"):
        return read_frame(path)
    if name.endswith((".csv", ".csv.gz")):
        options = {"dtype": str, "keep_default_na": False, "na_values": []}
        options["compression"] = "gzip" if name.endswith(".gz") else None
        try:
            with readable(path) as file:
                return pd.read_csv(file, **options)
        except UnicodeDecodeError:  # bad bytes become U+FFFD; validation quarantines those rows
            with readable(path) as file:
                return pd.read_csv(file, encoding_errors="replace", **options)
    raise ValueError(f"unsupported landing file {path}: expected one of {LANDING_SUFFIXES}")


def read_landing_day(
    landing_dir: Path, day: date, source: SourceFormat | None = None
) -> tuple[pd.DataFrame, list[Path]]:
    """All landing rows of `day`, in file-name order, with a `source_file` column (the file
    name), and the files read. No file gives an empty frame with the contract's columns."""
    source = source or applied_format()
    files = landing_files_for_day(landing_dir, day)
    frames = []
    for path in files:
        frame = read_landing_file(path)
        frame[SOURCE_FILE] = path.name
        frames.append(frame)
    if not frames:
        return pd.DataFrame(columns=[*source.source_names, SOURCE_FILE], dtype="object"), files
    if len(frames) == 1:
        return frames[0], files
    # Mixed parquet/CSV days: object columns, each value keeps its own type until validation.
    return pd.concat([f.astype("object") for f in frames], ignore_index=True), files


def validate_landing_day(landing_dir: Path, day: date) -> tuple[ValidationResult, list[Path]]:
    """Read and validate every landing file of `day` together (so duplicates across files of
    the same day are caught)."""
    source = applied_format()
    df, files = read_landing_day(landing_dir, day, source)
    return validate_orders(df, day, source=source), files


def summarize(result: ValidationResult) -> Mapping[str, float | int]:
    """Counts an analyst looks at first."""
    valid, quarantined = len(result.valid), len(result.quarantine)
    total = valid + quarantined
    fraud = int((result.valid["is_fraud"] == 1).sum()) if valid else 0
    return {
        "row_count": valid,
        "quarantined_count": quarantined,
        "quarantined_share": quarantined / total if total else 0.0,
        "fraud_count": fraud,
        "fraud_rate": fraud / valid if valid else 0.0,
    }
