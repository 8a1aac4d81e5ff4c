"""The review queue as the service sees it (issue 18): the REVIEW orders of the decision log less
those with a verdict, an order's whole story for the order page, and the analyst's verdicts.

Each worker process keeps its own `ReviewIndex`, fed from the decision log: the `{p}decisions`
stream read on from where it stopped, then the drained segment files it has not read yet (an entry
trimmed from the stream was written to its segment before the trim, so reading the stream first
and the segments second misses nothing; the index takes each entry once). Verdicts are shared by
every worker through Redis (`OnlineStore.record_verdict`); a worker reads them again only when
their counter moved.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime

import pyarrow as pa

from fraud_core import audit
from fraud_core.contract import Contract
from fraud_core.review import (
    Explanation,
    QueueFilter,
    QueuePage,
    ReviewIndex,
    Verdict,
    decode_verdicts,
    explain,
    stream_number,
)
from fraud_core.storage import DataLayout, file_times, read_parquet, segment_first_id
from fraud_serving.schemas import Label
from fraud_serving.services.answers import decode_record
from fraud_serving.services.entities import EntityNotFoundError, EntityService
from fraud_serving.services.labels import LabelService, OrderNotFoundError
from fraud_serving.services.lists import ListService
from fraud_serving.services.scoring import InvalidInputError
from fraud_serving.services.store import OnlineStore, StoreUnavailableError

# decision-log entries per XRANGE: about 1.4 MB, a few ms of Redis, well inside the read timeout
READ_CHUNK = 1_000
log = logging.getLogger(__name__)
TIMELINE_N = 20  # an entity's most recent orders shown on the order page


@dataclass(frozen=True)
class TimelineEvent:
    order_id: str
    placed: datetime
    amount: float
    fraud_since: datetime | None  # its fraud label's date (None: not labelled fraud)
    counterparts: dict[str, str]  # the order's other entities (kind -> key)
    current: bool  # the order on the page


@dataclass(frozen=True)
class Timeline:
    kind: str
    key: str  # as stored: the value, or its keyed digest (`personal`)
    personal: bool
    found: bool  # False: no state in the online store (new, or aged out)
    events: list[TimelineEvent] = field(default_factory=list)  # newest first
    orders: int = 0  # orders the state holds
    fraud: int = 0  # of them labelled fraud


@dataclass(frozen=True)
class OrderView:
    order_id: str
    placed: datetime | None
    amount: float | None
    score: float
    decision: str
    model_version: str
    policy_version: str
    decided_by: str
    rules: list[str]
    segment: str
    list_hits: list[str]
    explanations: list[Explanation]
    ids: dict[str, str]  # entity kind -> key
    attributes: dict[str, str]  # categorical attributes (as stored) and numbers (as sent)
    timelines: list[Timeline]
    verdict: Verdict | None
    source: str  # "decision log" or "stored answer"
    in_queue: bool


@dataclass(frozen=True)
class MarkOutcome:
    order_id: str
    result: str  # "marked", "unchanged" (the same verdict was there), "refused"
    detail: str = ""


class ReviewService:
    def __init__(
        self,
        store: OnlineStore,
        labels: LabelService,
        lists: ListService,
        entities: EntityService,
        layout: DataLayout,
        contract: Contract,
        window_days: int,
    ) -> None:
        self.store = store
        self.labels = labels
        self.lists = lists
        self.entities = entities
        self.layout = layout
        self.spec = contract.spec
        self.kinds = tuple(e.kind for e in self.spec.entities)
        self.personal = {e.name for e in contract.entities if e.personal}
        self.index = ReviewIndex(window_days)
        self._cursor: str | None = None  # the last stream id read
        self._segments: dict[str, int] = {}  # segment file name -> its size when read
        self._segments_read = False
        self._oldest: str | None = None  # the stream's oldest entry when segments were listed
        self._lock = asyncio.Lock()  # one refresh at a time; queries wait for it
        self._verdict_version = -1
        self._verdict_days: tuple[date, ...] = ()
        self._verdicts_known: dict[str, Verdict] = {}  # order id -> its verdict

    # -- reading the log ------------------------------------------------------------------------

    async def _refresh(self) -> None:
        """The stream's new entries, then the segments a drain wrote since: listed only when the
        stream's oldest entry moved (a drain trims only what its segment holds), so a page costs
        one round trip when the log did not change."""
        unreadable = self.index.unreadable
        while True:
            read = await self.store.decision_entries(self._cursor, READ_CHUNK)
            if read.entries:  # a chunk decodes in a few ms on the event loop: scoring waits
                self.index.add(read.entries)
            self._cursor = read.last_id or self._cursor
            oldest = read.oldest_id
            if read.count < READ_CHUNK:
                break
        if not self._segments_read or oldest != self._oldest:
            await asyncio.to_thread(self._read_segments)
            self._segments_read, self._oldest = True, oldest
        if self.index.unreadable > unreadable:
            log.warning(
                "review queue: skipped %d decision-log entries that are no decision",
                self.index.unreadable - unreadable,
            )

    def _read_segments(self) -> None:
        """Segments not read yet, newest first, each cut to the window as it is then known; the
        newest one read is looked at again (a drain that died before its trim writes the same
        file again, with more). Older segments than the window's are not opened."""
        paths = self.layout.decision_log_segments()
        newest_read = next((p for p in reversed(paths) if p.name in self._segments), None)
        for at in range(len(paths) - 1, -1, -1):
            path = paths[at]
            if (
                at + 1 < len(paths)
                and stream_number(segment_first_id(paths[at + 1])) < self.index.floor
            ):
                break  # this one and every older one hold only entries below the window
            if path.name in self._segments and path != newest_read:
                continue
            try:
                size = file_times(path)[0]
            except FileNotFoundError:
                continue
            if self._segments.get(path.name) == size:
                continue
            horizon = self.index.horizon_s if self.index.newest_t_s else None
            try:
                table = read_parquet(
                    path,
                    columns=["log_id", "entry"],
                    filters=None if horizon is None else [("t_s", ">=", horizon)],
                )
            except (OSError, pa.ArrowException) as exc:  # being replaced, or damaged
                log.warning("review queue: segment %s not read: %s", path.name, exc)
                continue
            self.index.add(
                list(
                    zip(
                        table.column("log_id").to_pylist(),
                        table.column("entry").to_pylist(),
                        strict=True,
                    )
                )
            )
            self._segments[path.name] = size

    async def _verdicts(self) -> dict[str, Verdict]:
        """Order id -> verdict of every order day in the window (read again when a verdict was
        given since, or the window moved); an unreadable record counts as no verdict."""
        days = tuple(self.index.days())
        version = await self.store.review_version()
        if version != self._verdict_version or days != self._verdict_days:
            version, hashes = await self.store.verdict_fields(days)
            self._verdicts_known = {k: v for h in hashes for k, v in decode_verdicts(h).items()}
            self._verdict_version, self._verdict_days = version, days
        return self._verdicts_known

    async def warm(self) -> None:
        """Read the window's log once at start, so the first page does not wait for it."""
        try:
            await self.queue(QueueFilter(per_page=0))
        except (StoreUnavailableError, ValueError) as exc:
            log.warning("review queue not loaded at start (the first page will): %s", exc)

    # -- the queue ------------------------------------------------------------------------------

    async def queue(self, wanted: QueueFilter) -> QueuePage:
        async with self._lock:
            await self._refresh()
            done = await self._verdicts()
            return self.index.query(wanted, done)

    async def overview(self) -> tuple[dict[date, dict[str, int]], QueuePage]:
        """Decisions per order day (newest first) and the queue's first page."""
        page = await self.queue(QueueFilter(per_page=0))
        counts = self.index.counts
        return {d: counts[d] for d in sorted(counts, reverse=True)}, page

    def performance(self, days: int = 7) -> list[tuple[date, dict]]:
        """The latest served days' realized performance (`model_performance`), newest first:
        what the labels known so far say about the decisions (precision at review, say)."""
        files = self.layout.model_performance_files()
        out = []
        for day in sorted(files, reverse=True)[:days]:
            try:
                out.append((day, json.loads(files[day].read_text())))
            except (OSError, ValueError):
                continue  # being rewritten, or unreadable: the next render tries again
        return out

    # -- one order ------------------------------------------------------------------------------

    async def order(self, order_id: str) -> OrderView | None:
        """The order as the console shows it: from its decision-log entry when it is a REVIEW
        order of the window, else from its stored answer; None when neither has it."""
        async with self._lock:
            await self._refresh()
            done = await self._verdicts()
            decision = self.index.decision(order_id)
        verdict = done.get(order_id)
        if decision is not None:
            ids = dict(decision.ids)
            numbers = {k: f"{v:g}" for k, v in decision.numbers.items()}
            view = OrderView(
                order_id=order_id,
                placed=datetime.fromtimestamp(decision.t_s, UTC),
                amount=decision.cents / 100,
                score=float(decision.score),
                decision=decision.decision,
                model_version=decision.model_version,
                policy_version=decision.policy_version,
                decided_by="",
                rules=list(decision.rules),
                segment=decision.segment,
                list_hits=list(decision.list_hits),
                explanations=explain(decision.reasons, self.spec),
                ids={},
                attributes={},
                timelines=[],
                verdict=verdict,
                source="decision log",
                in_queue=verdict is None,
            )
        else:
            blob = await self.store.get_record(order_id)
            if blob is None:
                return None
            stored = decode_record(blob)
            answer = stored.answer
            ids, numbers = dict(stored.ids), {}
            view = OrderView(
                order_id=order_id,
                placed=stored.order_date,
                amount=None,  # not in a stored answer: its entities' states have it
                score=answer.score,
                decision=answer.decision,
                model_version=answer.model_version,
                policy_version=answer.policy_version,
                decided_by=answer.decided_by,
                rules=list(answer.rules),
                segment=answer.segment,
                list_hits=list(answer.list_hits),
                explanations=explain(
                    [(r.feature, r.value, r.contribution) for r in answer.reasons], self.spec
                ),
                ids={},
                attributes={},
                timelines=[],
                verdict=verdict,
                source="stored answer",
                in_queue=False,
            )
        entities = {k: ids[k] for k in self.kinds if k in ids}
        timelines = [await self.timeline(kind, key, order_id) for kind, key in entities.items()]
        amount = view.amount
        if amount is None:
            amount = next((e.amount for line in timelines for e in line.events if e.current), None)
        return replace(
            view,
            amount=amount,
            ids=entities,
            attributes={**{k: v for k, v in ids.items() if k not in entities}, **numbers},
            timelines=timelines,
        )

    async def timeline(self, kind: str, key: str, current: str = "") -> Timeline:
        """An entity's recent orders and labels from its online state (newest first)."""
        if kind not in self.kinds:
            raise InvalidInputError("kind", f"must be one of {', '.join(self.kinds)}; got {kind!r}")
        personal = kind in self.personal
        try:
            view = await self.entities.view_key(kind, key)
        except EntityNotFoundError:
            return Timeline(kind, key, personal, found=False)
        events = [
            TimelineEvent(
                order_id=e.order_id,
                placed=e.order_date,
                amount=e.order_amount,
                fraud_since=e.fraud_label_date,
                counterparts=e.counterparts,
                current=e.order_id == current,
            )
            for e in reversed(view.events[-TIMELINE_N:])
        ]
        fraud = sum(1 for e in view.events if e.fraud_label_date is not None)
        return Timeline(kind, key, personal, True, events, len(view.events), fraud)

    # -- acting ---------------------------------------------------------------------------------

    async def mark(
        self, order_ids: Sequence[str], is_fraud: bool, note: str, key_id: str
    ) -> list[MarkOutcome]:
        """Give each order a verdict: a label (source `analyst`, known now) in its entities'
        states and the label feed, the verdict record that takes it out of the queue, and an
        audit record. The same verdict again changes nothing (idempotent)."""
        async with self._lock:
            await self._refresh()
            done = dict(await self._verdicts())
        outcomes = []
        for order_id in dict.fromkeys(order_ids):
            before = done.get(order_id)
            if before is not None and before.is_fraud == is_fraud:
                outcomes.append(MarkOutcome(order_id, "unchanged", "that verdict was given before"))
                continue
            row = self.index.row(order_id)
            now = datetime.now(UTC)
            # a label cannot be dated before its order (an order dated a little ahead)
            label_date = max(now, row.placed) if row is not None else now
            try:
                await self.labels.apply(
                    Label(order_id, is_fraud, label_date, "analyst"),
                    key_id,
                    origin="console",
                    note=note,
                )
            except (OrderNotFoundError, InvalidInputError) as err:
                outcomes.append(MarkOutcome(order_id, "refused", str(err)))
                continue
            await asyncio.to_thread(
                audit.append,
                self.layout.audit,
                audit.AuditRecord(
                    action="review.verdict",
                    actor=f"key:{key_id}",
                    target=f"order:{order_id}",
                    reason=note,
                    before=None if before is None else _word(before.is_fraud),
                    after=_word(is_fraud),
                ),
            )
            outcomes.append(MarkOutcome(order_id, "marked"))
        return outcomes

    async def add_to_list(
        self, list_name: str, kind: str, key: str, reason: str, key_id: str, ttl_s: float | None
    ) -> None:
        """Put an order's entity (by the key the store keeps) on a list; audited by the lists."""
        try:
            await self.lists.add(list_name, kind, key, reason, f"key:{key_id}", ttl_s, keyed=True)
        except ValueError as err:
            raise InvalidInputError("list", str(err)) from None


def _word(is_fraud: bool) -> str:
    return "fraud" if is_fraud else "legitimate"
