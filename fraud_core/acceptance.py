"""What a day's ingestion accepted, and when a new validation may replace it.

An accepted day is never lost to a bad delivery. Each day's validated orders carry a record
(`DataLayout.day_record`) of the landing files they were built from and the row counts. A new
validation replaces the day only when every landing file of the day was readable, no file the
day was built from has gone, and the day does not shrink beyond a configured share; otherwise the
accepted output stays and the record says why (`last_attempt`), which the day's checks report.
A replace marker (`DataLayout.replace_marker(day)`, a file in `landing/_replace/`) says "the
landing files of this day as they are now are the whole truth": it lifts the missing-file and
shrink rules once and is consumed by the replacement.

Order ids are unique across days too: the first day that accepted an id keeps it, a later row
with the same id on another day is quarantined (`AcceptedOrderIds`).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path

import numpy as np
import pandas as pd

from fraud_core.env import env_number
from fraud_core.storage import DataLayout, as_path, atomic_path, read_metadata, read_parquet

MAX_SHRINK_ENV = "FRAUD_MAX_DAY_SHRINK"
DEFAULT_MAX_SHRINK = 0.1  # a re-delivery may lose at most 10 % of a day's accepted orders

REPLACED = "replaced"  # the day's output is the new validation
KEPT = "kept"  # the accepted output stays; `problems` say why
EMPTY = "empty"  # no landing file and nothing accepted before: an explicit empty day
NOTHING = "nothing"  # nothing accepted and nothing acceptable (an unreadable first delivery)


def max_shrink(env: Mapping[str, str] | None = None) -> float:
    """The share of accepted orders a re-delivery may drop without a replace marker."""
    return env_number(MAX_SHRINK_ENV, DEFAULT_MAX_SHRINK, float, low=0.0, high=1.0, env=env)


@dataclass(frozen=True)
class FileSeen:
    """One landing file as a validation read it."""

    name: str
    size: int
    mtime_ns: int


@dataclass
class DayRecord:
    """`accepted`: what the day's current output was built from (None: nothing accepted yet).
    `last_attempt`: the newest ingestion of the day, replaced or not, with its problems."""

    day: str
    accepted: dict | None = None
    last_attempt: dict = field(default_factory=dict)

    @property
    def accepted_files(self) -> list[str]:
        return [f["name"] for f in (self.accepted or {}).get("files", [])]

    @property
    def accepted_valid(self) -> int:
        return int((self.accepted or {}).get("valid_rows", 0))

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=1, sort_keys=True)

    @classmethod
    def read(cls, path: Path) -> DayRecord | None:
        """The record at `path`, None when there is none."""
        try:
            data = json.loads(as_path(path).read_text())
        except FileNotFoundError:
            return None
        return cls(data["day"], data.get("accepted"), data.get("last_attempt", {}))

    def write(self, path: Path) -> None:
        with atomic_path(path) as tmp:
            tmp.write_text(self.to_json())


def read_day_record(layout: DataLayout, day: date) -> DayRecord | None:
    """The day's record; a day written before records existed gets one from its files."""
    record = DayRecord.read(layout.day_record(day))
    if record is not None:
        return record
    path = layout.raw_orders(day)
    if not path.exists():
        return None
    valid = read_metadata(path).num_rows
    quarantine = layout.quarantine(day)
    quarantined = read_metadata(quarantine).num_rows if quarantine.exists() else 0
    accepted = {
        "files": [],  # unknown: no file can be missed
        "valid_rows": valid,
        "quarantined_rows": quarantined,
        "landing_rows": valid + quarantined,
    }
    return DayRecord(day.isoformat(), accepted)


@dataclass(frozen=True)
class Decision:
    action: str  # REPLACED, KEPT, EMPTY or NOTHING
    problems: tuple[str, ...] = ()  # why the day was not replaced (each names the file or rule)
    missing_files: tuple[str, ...] = ()  # files the accepted day was built from, now gone
    unreadable_files: tuple[str, ...] = ()
    used_marker: bool = False

    @property
    def writes(self) -> bool:
        return self.action in (REPLACED, EMPTY)


def decide_day(
    previous: DayRecord | None,
    files: list[FileSeen],
    unreadable: Mapping[str, str],
    valid_rows: int | None,
    *,
    marker: bool,
    shrink_limit: float,
) -> Decision:
    """Whether a new validation of a day (its readable `files`, the `unreadable` ones with their
    problem, and `valid_rows` it accepted; None when it could not run) may replace `previous`."""
    accepted = previous is not None and previous.accepted is not None
    if unreadable:
        problems = tuple(
            f"landing file {name} is unreadable ({problem}): "
            + ("the accepted day is kept" if accepted else "nothing accepted for this day")
            for name, problem in sorted(unreadable.items())
        )
        return Decision(
            KEPT if accepted else NOTHING, problems, unreadable_files=tuple(sorted(unreadable))
        )
    assert valid_rows is not None
    if not accepted:
        return Decision(REPLACED if files else EMPTY, used_marker=marker)
    present = {f.name for f in files}
    missing = tuple(n for n in previous.accepted_files if n not in present)
    if missing and not marker:
        return Decision(
            KEPT,
            tuple(
                f"landing file {n} that the accepted day was built from no longer feeds it "
                "(archived, or its orders of this day removed): the accepted day is kept; drop "
                "a replace marker to rebuild it without it"
                for n in missing
            ),
            missing_files=missing,
        )
    before = previous.accepted_valid
    if not marker and before and valid_rows < before * (1.0 - shrink_limit):
        names = ", ".join(sorted(present)) or "no file"
        return Decision(
            KEPT,
            (
                f"re-delivery ({names}) would shrink the day from {before} to {valid_rows} valid "
                f"orders (more than {shrink_limit:.0%}): the accepted day is kept; drop a "
                "replace marker to accept it",
            ),
        )
    return Decision(REPLACED if files or marker else EMPTY, used_marker=marker)


def attempt_entry(
    decision: Decision, run_id: str, counts: Mapping[str, int], files: list[FileSeen]
) -> dict:
    return {
        "action": decision.action,
        "problems": list(decision.problems),
        "missing_files": list(decision.missing_files),
        "unreadable_files": list(decision.unreadable_files),
        "used_replace_marker": decision.used_marker,
        "files": [asdict(f) for f in files],
        "run_id": run_id,
        "at": datetime.now(UTC).isoformat(timespec="seconds"),
        **counts,
    }


def consume_replace_marker(layout: DataLayout, day: date) -> str | None:
    """Remove the day's replace marker and return its text (the reason, if one was written)."""
    path = layout.replace_marker(day)
    try:
        text = path.read_text(errors="replace").strip()
    except FileNotFoundError:
        return None
    path.unlink(missing_ok=True)
    return text


def _hashes(order_ids: pd.Series | np.ndarray) -> np.ndarray:
    values = np.asarray(order_ids, dtype=object)
    return pd.util.hash_array(values, categorize=False) if len(values) else np.empty(0, np.uint64)


class AcceptedOrderIds:
    """Every order id accepted on any day, as 64-bit hashes with the index of the day entry
    that holds each (a year of a mid-size shop's 12M ids is ~150 MB). A day a run replaces gets
    a new entry; its earlier entries stop counting. A hash hit is confirmed against the owning
    day's file, so a collision never quarantines an order.

    The hashes are kept in a few sorted runs, log-structured: a replaced day adds a run, which
    is merged into the one before while that one is at most twice its size. A year's range run
    so moves each hash O(log days) times instead of once per later day (inserting every day into
    one sorted array of 12M took 36 s of a year's ingestion; the runs take 8.7 s)."""

    def __init__(self, layout: DataLayout) -> None:
        self.layout = layout
        self.days: list[str] = []  # day of each entry
        self._live: list[bool] = []  # False: an entry a later replacement superseded
        # (hashes ascending, entry of each): within equal hashes, entries ascend; runs are in
        # the order they were added, so a later run holds only later entries
        self._runs: list[tuple[np.ndarray, np.ndarray]] = []
        for day in layout.raw_orders_days():
            path = layout.raw_orders(day)
            ids = read_parquet(path, columns=["order_id"]).column(0).to_numpy(zero_copy_only=False)
            self.replace(day, ids)

    def replace(self, day: date, order_ids: pd.Series | np.ndarray) -> None:
        """`day` now holds exactly `order_ids`."""
        key = day.isoformat()
        for k, d in enumerate(self.days):
            if d == key:
                self._live[k] = False
        hashes = np.sort(_hashes(np.asarray(order_ids, dtype=object)))
        self._runs.append((hashes, np.full(len(hashes), len(self.days), dtype=np.int32)))
        self.days.append(key)
        self._live.append(True)
        while len(self._runs) > 1 and len(self._runs[-2][0]) <= 2 * len(self._runs[-1][0]):
            newer = self._runs.pop()
            self._runs[-1] = _merge(self._runs[-1], newer)

    def owners(self, day: date, order_ids: pd.Series) -> pd.Series:
        """For each id, the other day that accepted it first (None where no other day did)."""
        key = day.isoformat()
        hashes = _hashes(order_ids.to_numpy(dtype=object))
        order = np.argsort(hashes)  # sorted needles search faster
        needles = hashes[order]
        # the entries whose ids count against `day`: another day's, not superseded
        usable = np.array(
            [live and d != key for d, live in zip(self.days, self._live, strict=True)], dtype=bool
        )
        none = len(self.days)
        first = np.full(len(needles), none, dtype=np.int64)  # earliest usable entry per needle
        for run_hashes, run_entries in self._runs:
            lo = np.searchsorted(run_hashes, needles, side="left")
            hi = np.searchsorted(run_hashes, needles, side="right")
            single = np.flatnonzero(hi - lo == 1)  # the usual hit: one entry holds the hash
            entry = run_entries[lo[single]]
            ok = usable[entry]
            first[single[ok]] = np.minimum(first[single[ok]], entry[ok])
            for i in np.flatnonzero(hi - lo > 1):  # several entries: a replaced day, a collision
                for k in run_entries[lo[i] : hi[i]]:  # ascending: the first usable is earliest
                    if usable[k]:
                        first[i] = min(first[i], k)
                        break
        first[order] = first.copy()  # back to the ids' order
        out = np.full(len(hashes), None, dtype=object)
        hits = np.flatnonzero(first < none)
        out[hits] = [self.days[k] for k in first[hits]]
        if len(hits):  # confirm each hash hit with the owner's real ids
            by_owner: dict[str, list[int]] = {}
            for i in hits:
                by_owner.setdefault(out[i], []).append(i)
            for owner_day, rows in by_owner.items():
                real = set(self._ids_of(owner_day))
                for i in rows:
                    if order_ids.iloc[i] not in real:
                        out[i] = None
        return pd.Series(out, index=order_ids.index, dtype=object)

    def _ids_of(self, day: str) -> list[str]:
        path = self.layout.raw_orders(day)
        if not path.exists():
            return []
        return read_parquet(path, columns=["order_id"]).column(0).to_pylist()


def _merge(
    older: tuple[np.ndarray, np.ndarray], newer: tuple[np.ndarray, np.ndarray]
) -> tuple[np.ndarray, np.ndarray]:
    """One sorted run from two; a newer entry goes after an older one with the same hash."""
    (h1, e1), (h2, e2) = older, newer
    at = np.searchsorted(h1, h2, side="right") + np.arange(len(h2))
    hashes = np.empty(len(h1) + len(h2), dtype=h1.dtype)
    entries = np.empty(len(hashes), dtype=e1.dtype)
    from_older = np.ones(len(hashes), dtype=bool)
    from_older[at] = False
    hashes[at], entries[at] = h2, e2
    hashes[from_older], entries[from_older] = h1, e1
    return hashes, entries
