"""The review queue (issue 18): the orders the platform sent to REVIEW, read from the decision
log, less those that have a verdict, and the verdicts analysts give them.

`ReviewIndex` holds, for a window of order days, the REVIEW entries of the decision log (their
columns for filtering and ranking, their encoded entry for the order page) and every entry's
decision counted per day (the overview). It is fed entries as the service reads them (the
stream's, then the drained segments'), each once: an entry is known by its stream id, so the
same entry read from the stream and again from a segment counts once. The window is anchored at
the newest order logged, not at the wall clock, so a replayed or simulated history (the demo's)
has a queue too.

A verdict is a label (`fraud_core.labels`, source `analyst`) plus a small record kept per order
day (`Verdict`), which takes the order out of the queue and says who decided and why.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

import msgpack
import numpy as np

from fraud_core.decision_log import Decision, decode_decision, peek_entry
from fraud_core.features.spec import FeatureSpec
from fraud_core.online_keys import DAY_S, stream_id_parts

REVIEW = "review"
DECISIONS = ("approve", "review", "decline")  # the overview's columns (the holdout is approve)
DEFAULT_WINDOW_DAYS = 14  # FRAUD_REVIEW_DAYS: how far back the queue reaches
SORTS = ("risk", "newest", "oldest", "amount")
MAX_PER_PAGE = 200
VERDICT_VERSION = 1


def stream_number(entry_id: str | bytes) -> int:
    """A stream id (`ms-seq`) as one integer that sorts as the ids do (an unsigned 64-bit value
    until the year 2109)."""
    ms, seq = stream_id_parts(entry_id)
    return (ms << 22) + seq


EPOCH_DAY = date(1970, 1, 1)


def day_of(t_s: int) -> date:
    return EPOCH_DAY + timedelta(days=t_s // DAY_S)


def verdict_lifetime_s(window_days: int) -> int:
    """How long a day's verdict hash lives after its last verdict: the window and a week."""
    return (window_days + 7) * DAY_S


# -- verdicts ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Verdict:
    """An order's verdict as the console keeps it: fraud or not, when, by whom, why."""

    order_id: str
    is_fraud: bool
    at_ms: int
    actor: str  # "key:<id>" of the analyst's key (never the key)
    note: str = ""
    source: str = "analyst"  # the label's source (`fraud_core.labels.LABEL_SOURCES`)

    @property
    def at(self) -> datetime:
        return datetime.fromtimestamp(self.at_ms / 1000, UTC)

    def encode(self) -> bytes:
        return msgpack.packb(
            [VERDICT_VERSION, self.is_fraud, self.at_ms, self.actor, self.note, self.source]
        )

    @classmethod
    def decode(cls, order_id: str, blob: bytes) -> Verdict:
        row = msgpack.unpackb(blob)
        if not isinstance(row, list) or len(row) != 6 or row[0] != VERDICT_VERSION:
            raise ValueError(f"verdict of {order_id!r}: not a version {VERDICT_VERSION} record")
        _, is_fraud, at_ms, actor, note, source = row
        return cls(order_id, bool(is_fraud), int(at_ms), actor, note, source)


def decode_verdicts(fields: Mapping[bytes, bytes]) -> dict[str, Verdict]:
    """A day's verdict hash (order id -> record) as verdicts; unreadable records are skipped."""
    out: dict[str, Verdict] = {}
    for raw_id, blob in fields.items():
        order_id = raw_id.decode()
        try:
            out[order_id] = Verdict.decode(order_id, blob)
        except (ValueError, TypeError, msgpack.UnpackException):
            continue
    return out


# -- the queue ---------------------------------------------------------------------------------


class FilterError(ValueError):
    """A queue filter refused: which field, and why."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason


@dataclass(frozen=True)
class QueueFilter:
    """What the analyst asked the queue for. Empty fields filter nothing."""

    day: date | None = None
    segment: str | None = None
    rule: str | None = None
    model_version: str | None = None
    min_amount: float | None = None
    max_amount: float | None = None
    sort: str = "risk"  # risk (score x amount), newest, oldest, amount
    page: int = 1
    per_page: int = 50

    def __post_init__(self) -> None:
        if self.sort not in SORTS:
            raise FilterError("sort", f"must be one of {', '.join(SORTS)}; got {self.sort!r}")
        if self.page < 1:
            raise FilterError("page", f"must be 1 or more; got {self.page}")
        if not 0 <= self.per_page <= MAX_PER_PAGE:
            raise FilterError("per_page", f"must be 0 to {MAX_PER_PAGE}; got {self.per_page}")
        for name in ("min_amount", "max_amount"):
            value = getattr(self, name)
            if value is not None and not (math.isfinite(value) and value >= 0):
                raise FilterError(name, f"must be a number >= 0; got {value}")


@dataclass(frozen=True)
class QueueRow:
    order_id: str
    t_s: int
    cents: int
    score: float
    model_version: str
    segment: str
    rules: tuple[str, ...]
    list_hits: tuple[str, ...]
    ids: dict[str, str]

    @property
    def placed(self) -> datetime:
        return datetime.fromtimestamp(self.t_s, UTC)

    @property
    def amount(self) -> float:
        return self.cents / 100

    @property
    def risk(self) -> float:
        """Score x amount: the money at stake, as the queue ranks it."""
        return self.score * self.cents / 100


@dataclass(frozen=True)
class QueuePage:
    rows: list[QueueRow]
    total: int  # pending orders that pass the filter
    pending: int  # pending orders in the window, filter or not
    backlog: dict[date, int]  # pending orders per order day, newest first
    page: int
    pages: int
    # what the filters can choose from (every value seen among REVIEW orders in the window)
    days: list[date] = field(default_factory=list)
    segments: list[str] = field(default_factory=list)
    rules: list[str] = field(default_factory=list)
    model_versions: list[str] = field(default_factory=list)


class ReviewIndex:
    """REVIEW entries of the decision log within `window_days` of the newest order, and every
    entry's decision counted per order day. Not thread-safe: one owner feeds and reads it."""

    def __init__(self, window_days: int = DEFAULT_WINDOW_DAYS) -> None:
        if window_days < 1:
            raise ValueError(f"review window: at least one day; got {window_days}")
        self.window_days = window_days
        self.newest_t_s = 0
        self.unreadable = 0  # entries skipped: not a decision-log entry of a known version
        self._counts: dict[int, dict[str, int]] = {}  # per order day (days since the epoch)
        self._seen = np.empty(0, dtype=np.uint64)  # stream numbers of every entry taken, sorted
        # entries logged (received) this long before the newest one are not looked at again: the
        # seen numbers stay bounded by the window, not by the service's uptime
        self._floor = 0
        self._newest_number = 0
        self._fresh: list[int] = []  # taken since `_seen` was last merged
        self._rows: dict[str, QueueRow] = {}  # REVIEW orders by order id (first logged wins)
        self._blobs: dict[str, bytes] = {}
        self._columns: _Columns | None = None  # built on the first query after a change

    def __len__(self) -> int:
        return len(self._rows)

    @property
    def floor(self) -> int:
        """Entries with a smaller stream number are not looked at (logged long before the
        newest one: outside the window)."""
        return self._floor

    @property
    def horizon_s(self) -> int:
        """Orders placed before this (epoch s) are out of the window."""
        return (self.newest_t_s // DAY_S - (self.window_days - 1)) * DAY_S

    @property
    def counts(self) -> dict[date, dict[str, int]]:
        """Decisions per order day in the window."""
        return {EPOCH_DAY + timedelta(days=d): dict(c) for d, c in self._counts.items()}

    def _merge_fresh(self) -> None:
        """Fold the numbers taken since into the sorted seen numbers: an append when they all
        come after (stream ids grow: the usual case), else a sort of both."""
        if not self._fresh:
            return
        fresh = np.sort(np.asarray(self._fresh, dtype=np.uint64))
        self._fresh = []
        if not len(self._seen) or fresh[0] > self._seen[-1]:
            self._seen = np.concatenate((self._seen, fresh))
            return
        merged = np.sort(np.concatenate((self._seen, fresh)), kind="stable")
        keep = np.ones(len(merged), dtype=bool)
        keep[1:] = merged[1:] != merged[:-1]
        self._seen = merged[keep]

    def _known(self, numbers: np.ndarray) -> np.ndarray:
        self._merge_fresh()
        at = np.searchsorted(self._seen, numbers)
        at[at == len(self._seen)] = 0
        return (self._seen[at] == numbers) if len(self._seen) else np.zeros(len(numbers), bool)

    def add(self, entries: Sequence[tuple[str | bytes, bytes]]) -> int:
        """Take decision-log entries (stream id, encoded entry) not taken before; the number of
        REVIEW orders added. An entry that is no decision is skipped and counted (`unreadable`)."""
        if not entries:
            return 0
        numbers = np.fromiter((stream_number(i) for i, _ in entries), np.uint64, len(entries))
        known = self._known(numbers) | (numbers < self._floor)
        added = 0
        for (_, blob), number, old in zip(entries, numbers, known, strict=True):
            if old:
                continue
            self._newest_number = max(self._newest_number, int(number))
            self._fresh.append(int(number))
            try:
                order_id, t_s, decision = peek_entry(blob)
            except ValueError:
                self.unreadable += 1  # not the service's entry: skipped, counted, not fatal
                continue
            per_day = self._counts.get(t_s // DAY_S)
            if per_day is None:
                per_day = self._counts[t_s // DAY_S] = dict.fromkeys(DECISIONS, 0)
            per_day[decision] = per_day.get(decision, 0) + 1
            self.newest_t_s = max(self.newest_t_s, t_s)
            if decision != REVIEW or order_id in self._rows:
                continue
            d = decode_decision(blob)
            self._rows[order_id] = QueueRow(
                order_id=order_id,
                t_s=t_s,
                cents=d.cents,
                score=float(d.score),
                model_version=d.model_version,
                segment=d.segment,
                rules=tuple(d.rules),
                list_hits=tuple(d.list_hits),
                ids=dict(d.ids),
            )
            self._blobs[order_id] = blob
            added += 1
        self._prune()
        self._columns = None
        return added

    def _prune(self) -> None:
        margin_ms = (self.window_days + 1) * DAY_S * 1000
        self._floor = max(0, ((self._newest_number >> 22) - margin_ms) << 22)
        self._merge_fresh()
        if len(self._seen) and self._seen[0] < self._floor:
            self._seen = self._seen[self._seen >= self._floor]
        horizon = self.horizon_s
        old = [k for k, row in self._rows.items() if row.t_s < horizon]
        for order_id in old:
            del self._rows[order_id], self._blobs[order_id]
        first = horizon // DAY_S
        for day in [d for d in self._counts if d < first]:
            del self._counts[day]

    def decision(self, order_id: str) -> Decision | None:
        """The logged decision of a REVIEW order in the window (None: not one)."""
        blob = self._blobs.get(order_id)
        return None if blob is None else decode_decision(blob)

    def row(self, order_id: str) -> QueueRow | None:
        return self._rows.get(order_id)

    def days(self) -> list[date]:
        """The window's order days that have entries, newest first."""
        return [EPOCH_DAY + timedelta(days=d) for d in sorted(self._counts, reverse=True)]

    def query(self, wanted: QueueFilter, done: Collection[str]) -> QueuePage:
        """The pending REVIEW orders (no verdict in `done`) that pass `wanted`, ranked, one page."""
        cols = self._columns = self._columns or _Columns.of(list(self._rows.values()))
        pending = np.fromiter((o not in done for o in cols.order_ids), bool, len(cols.order_ids))
        mask = pending.copy()
        if wanted.day is not None:
            mask &= cols.day == (wanted.day - EPOCH_DAY).days
        if wanted.segment is not None:
            mask &= cols.segment == wanted.segment
        if wanted.model_version is not None:
            mask &= cols.model_version == wanted.model_version
        if wanted.rule is not None:
            mask &= np.fromiter((wanted.rule in r for r in cols.rules), bool, len(cols.rules))
        if wanted.min_amount is not None:
            mask &= cols.cents >= round(wanted.min_amount * 100)
        if wanted.max_amount is not None:
            mask &= cols.cents <= round(wanted.max_amount * 100)
        chosen = np.flatnonzero(mask)
        key = {
            "risk": -cols.score[chosen] * cols.cents[chosen],
            "amount": -cols.cents[chosen].astype(np.float64),
            "newest": -cols.t_s[chosen].astype(np.float64),
            "oldest": cols.t_s[chosen].astype(np.float64),
        }[wanted.sort]
        order = chosen[np.lexsort((chosen, key))]  # ties: the first logged first
        total = len(order)
        pages = max(1, -(-total // wanted.per_page)) if wanted.per_page else 1
        page = min(wanted.page, pages)
        start = (page - 1) * wanted.per_page
        shown = order[start : start + wanted.per_page]
        backlog_days, backlog_n = np.unique(cols.day[pending], return_counts=True)
        backlog = {
            EPOCH_DAY + timedelta(days=int(d)): int(n)
            for d, n in zip(backlog_days[::-1], backlog_n[::-1], strict=True)
        }
        return QueuePage(
            rows=[cols.rows[i] for i in shown],
            total=total,
            pending=int(pending.sum()),
            backlog=backlog,
            page=page,
            pages=pages,
            days=[EPOCH_DAY + timedelta(days=int(d)) for d in np.unique(cols.day)[::-1]],
            segments=sorted(set(cols.segment) - {""}),
            rules=sorted({r for rules in cols.rules for r in rules}),
            model_versions=sorted(set(cols.model_version)),
        )


@dataclass(frozen=True)
class _Columns:
    rows: list[QueueRow]
    order_ids: np.ndarray
    day: np.ndarray
    t_s: np.ndarray
    cents: np.ndarray
    score: np.ndarray
    segment: np.ndarray
    model_version: np.ndarray
    rules: list[tuple[str, ...]]

    @classmethod
    def of(cls, rows: list[QueueRow]) -> _Columns:
        t_s = np.fromiter((r.t_s for r in rows), np.int64, len(rows))
        return cls(
            rows=rows,
            order_ids=np.array([r.order_id for r in rows], dtype=object),
            day=t_s // DAY_S,
            t_s=t_s,
            cents=np.fromiter((r.cents for r in rows), np.int64, len(rows)),
            score=np.fromiter((r.score for r in rows), np.float64, len(rows)),
            segment=np.array([r.segment for r in rows], dtype=object),
            model_version=np.array([r.model_version for r in rows], dtype=object),
            rules=[r.rules for r in rows],
        )


# -- why an order was flagged, in words --------------------------------------------------------


@dataclass(frozen=True)
class Explanation:
    feature: str
    description: str  # the feature's definition (`FeatureSpec`)
    value: float | None  # None: empty (no history)
    contribution: float  # log-odds
    direction: str  # "raises" or "lowers" the fraud risk
    size: str  # "strongly", "moderately", "slightly"

    @property
    def sentence(self) -> str:
        value = "empty (no history)" if self.value is None else f"{self.value:g}"
        return f"{self.description}: {value}; {self.size} {self.direction} the risk"


def explain(
    reasons: Iterable[tuple[str, float | None, float]], spec: FeatureSpec
) -> list[Explanation]:
    """The model's reasons (feature, value, contribution in log-odds) in plain language."""
    described = {f.name: f.description for f in spec.features}
    out = []
    for name, value, contribution in reasons:
        if value is not None and value != value:  # NaN: empty
            value = None
        push = abs(contribution)
        size = "strongly" if push >= 1.0 else "moderately" if push >= 0.3 else "slightly"
        out.append(
            Explanation(
                feature=name,
                description=described.get(name, name),
                value=value,
                contribution=float(contribution),
                direction="raises" if contribution > 0 else "lowers",
                size=size,
            )
        )
    return out
