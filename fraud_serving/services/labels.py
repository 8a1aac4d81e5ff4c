"""Chargeback feedback: a label marks an order fraudulent (or not) in the state of each of its
entities, so later orders of the same customer, e-mail or IP see it in their risk features once
`label_date` has passed. Setting a label is idempotent: the same label twice changes nothing.

A label dated before its order is refused, as the landing folder quarantines it: the order's own
date is in its stored answer when the service scored it; for an order known only from the loaded
snapshot (or an answer stored before dates were kept), its time in the entity states (whole
seconds) is the bound. An order no state holds is a 404 either way: nothing can be labelled.

An accepted label is also added to the label feed (`{p}labels`, see `fraud_core.labels`) before
the states are written: the feed records what was received, so a state write that fails after it
leaves an event the client's retry repeats (the feed keeps one of equal events), never a label
the states hold and the feed lacks.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime

from fraud_core.features.kernel import NO_LABEL
from fraud_core.features.offline import epoch_seconds
from fraud_core.features.spec import FeatureSpec
from fraud_core.features.state import decode_state, encode_state
from fraud_core.labels import LabelEvent, encode_entry
from fraud_core.review import DEFAULT_WINDOW_DAYS, Verdict, verdict_lifetime_s
from fraud_serving.metrics import ServiceMetrics
from fraud_serving.schemas import Label, LabelResult
from fraud_serving.services.answers import decode_record
from fraud_serving.services.scoring import InvalidInputError
from fraud_serving.services.store import (
    CommitOutcome,
    EntityWrite,
    OnlineStore,
    StoreUnavailableError,
)

_ATTEMPTS = 8


class OrderNotFoundError(LookupError):
    """No entity state holds the order: unknown, or too old to affect any feature."""


class LabelService:
    def __init__(
        self,
        store: OnlineStore,
        metrics: ServiceMetrics,
        spec: FeatureSpec,
        verdict_ttl_s: int = verdict_lifetime_s(DEFAULT_WINDOW_DAYS),
    ) -> None:
        self.store = store
        self.metrics = metrics
        self.verdict_ttl_s = verdict_ttl_s
        self.kinds = tuple(e.kind for e in spec.entities)
        self.primary = spec.primary  # the order index names an order's primary entity

    async def _entities_of(self, order_id: str) -> tuple[dict[str, str], datetime | None]:
        """The entities of an order (their keys), and its date when known: from its stored
        answer, else (no date) from the namespace's order index and the state of the primary
        entity ("the customer"), whose counterparts name the order's other entities."""
        snapshot = await self.store.read([order_id], [])
        blob = snapshot.records.get(order_id)
        if blob is not None:
            record = decode_record(blob)
            return record.ids, record.order_date
        customer = await self.store.indexed_customer(snapshot.namespace, order_id)
        if customer is not None:
            _, (state_blob,) = await self.store.get_states([(self.primary, customer)])
            if state_blob is not None:
                state = decode_state(state_blob)
                if order_id in state.order_ids:
                    i = state.order_ids.index(order_id)
                    ids = {c: values[i] for c, values in state.counterparts.items()}
                    return {self.primary: customer, **ids}, None
        raise OrderNotFoundError(
            f"order {order_id!r} is in no entity state: unknown, or too old to affect features"
        )

    def _check_date(self, label: Label, order_date: datetime) -> None:
        if label.label_date < order_date:
            self.metrics.labels.labels(result="refused").inc()
            raise InvalidInputError(
                "label_date",
                f"before the order's order_date ({order_date.isoformat()}): a chargeback "
                "cannot be known before its order",
            )

    async def apply(
        self, label: Label, key_id: str = "", origin: str = "api", note: str = ""
    ) -> LabelResult:
        """Label the order in its entities' states and the label feed, and keep the verdict for
        the review queue (`fraud_core.review`): an order with a label is no longer pending.
        `origin` says where it came from (`api`, `console`), with the key's id."""
        label_s = epoch_seconds(label.label_date) if label.is_fraud else NO_LABEL
        try:
            ids, order_date = await self._entities_of(label.order_id)
        except OrderNotFoundError:
            self.metrics.labels.labels(result="not_found").inc()
            raise
        pairs = [(kind, ids[kind]) for kind in self.kinds if kind in ids]
        fed = False
        for _ in range(_ATTEMPTS):
            snapshot = await self.store.read([], pairs)
            updated: list[str] = []
            writes: list[EntityWrite] = []
            order_s: list[int] = []  # the order's time in each state that holds it
            for kind, value in pairs:
                blob = snapshot.states[(kind, value)]
                if blob is None:
                    continue
                state = decode_state(blob)
                if label.order_id not in state.order_ids:
                    continue
                updated.append(kind)
                i = state.order_ids.index(label.order_id)
                order_s.append(state.t_s[i])
                if state.label_s[i] != label_s:
                    state.label_s[i] = label_s
                    writes.append(EntityWrite(kind, value, blob, encode_state(state)))
            if not updated:
                self.metrics.labels.labels(result="not_found").inc()
                raise OrderNotFoundError(
                    f"order {label.order_id!r} is no longer in any entity state (too old to matter)"
                )
            placed = order_date or datetime.fromtimestamp(min(order_s), UTC)
            self._check_date(label, placed)
            if not fed:
                event = LabelEvent(
                    label.order_id,
                    label.is_fraud,
                    label.label_date,
                    label.source,
                    f"{origin}:{key_id}",
                    order_date=placed,
                )
                await self.store.append_label(encode_entry(event))
                fed = True
            code = CommitOutcome.OK
            if writes:
                code = await self.store.commit(snapshot.namespace, [], writes)
            if code == CommitOutcome.OK:
                verdict = Verdict(
                    label.order_id,
                    label.is_fraud,
                    int(time.time() * 1000),
                    f"key:{key_id}",
                    note,
                    label.source,
                )
                await self.store.record_verdict(
                    placed.astimezone(UTC).date(),
                    label.order_id,
                    verdict.encode(),
                    self.verdict_ttl_s,
                )
                self.metrics.labels.labels(result="updated" if writes else "unchanged").inc()
                return LabelResult(
                    order_id=label.order_id,
                    is_fraud=label.is_fraud,
                    updated_entities=updated,  # type: ignore[arg-type]
                    changed=bool(writes),
                )
            self.metrics.conflicts.inc()
        raise StoreUnavailableError("the online store is too busy with this order's entities")
