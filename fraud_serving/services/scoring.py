"""Scoring orders: read their entities' states, compute features with the `fraud_core` online
path, predict and explain, apply the fraud team's policy (rules, lists, segment thresholds:
`fraud_core.policy`; a challenger model is scored in shadow beside, for the log only), then store
the answer and the updated states in one atomic step.

`process` is the micro-batcher's callback: it gets the jobs (requests) that arrived together and
handles all their orders at once, in arrival order, so an order sees the earlier orders of the
same batch exactly as if they had been scored one after another.

Idempotency: an order id seen before is answered with the stored answer (see `answers`) and
changes nothing; the same id with different content (another fingerprint) is a conflict (409).
Every order the commit stores gets one decision-log entry in the same atomic step
(`fraud_core.decision_log`); a replay gets none.
Concurrent writers (other processes) are caught by the compare-and-set and the whole batch is
recomputed on fresh state, after a short random pause. On a Redis Cluster the write is two steps
(`fraud_core.online_keys`): a retry may find its own orders in some states already, and neither
sees them in its features nor appends them again.
"""

from __future__ import annotations

import asyncio
import collections
import dataclasses
import logging
import math
import random
import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from fraud_core.clock import DEFAULT_MAX_FUTURE_S, latest_accepted
from fraud_core.contract.request import RequestShape, RequestValueError
from fraud_core.decision_log import Decision, encode_decision
from fraud_core.features.offline import amount_cents, epoch_seconds, number_units
from fraud_core.features.online import (
    OrderEvent,
    append_order,
    batch_features,
    without_orders,
)
from fraud_core.features.spec import NO_VALUE, FeatureSpec, NumericSpec
from fraud_core.features.state import EntityState, decode_state, encode_state
from fraud_core.model.decisions import HOLDOUT, check_holdout_share, held_out
from fraud_core.policy import DECIDED_BY_SCORE, OrderFacts, Outcome, Policy
from fraud_core.policy.lists import ListIndex
from fraud_core.scoring.future_events import without_future_events
from fraud_serving.metrics import ServiceMetrics
from fraud_serving.schemas import Reason, ScoreResult
from fraud_serving.services.answers import StoredAnswer, decode_record, encode_record, fingerprint
from fraud_serving.services.batcher import MicroBatcher
from fraud_serving.services.lists import ListService
from fraud_serving.services.models import ModelHolder, ServedModel
from fraud_serving.services.policies import PolicyHolder
from fraud_serving.services.store import (
    CommitOutcome,
    EntityWrite,
    OnlineStore,
    Snapshot,
    StoreUnavailableError,
)

log = logging.getLogger(__name__)

Order = Any  # an instance of the contract's order type (`schemas.order_types`)
_ATTEMPTS = 12
# After a lost compare-and-set, a random pause of up to this much times 2^attempt (capped at
# 16x): writers of the same entities in two processes fall out of step instead of colliding again.
_CONFLICT_PAUSE_S = 0.001


class InvalidInputError(ValueError):
    """Input the schema accepts but the service refuses (a 400 naming the field)."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason


class OrderConflictError(ValueError):
    """An order id that was already scored with other content."""

    def __init__(self, order_id: str) -> None:
        super().__init__(
            f"order_id {order_id!r} was already scored with different content; "
            "an order id is scored once"
        )
        self.order_id = order_id


@dataclass(frozen=True)
class ScoredOrder:
    result: ScoreResult
    features: np.ndarray | None  # None for a replay
    replayed: bool

    def features_dict(self, names: list[str]) -> dict[str, float | None] | None:
        """The features by name (`names`: the spec's feature names), None for a replay."""
        if self.features is None:
            return None
        return {n: _plain(v) for n, v in zip(names, self.features.tolist(), strict=True)}


def _plain(value: float) -> float | None:
    return None if math.isnan(value) else value


@dataclass(frozen=True, slots=True)
class _Decided:
    outcome: Outcome
    listed: frozenset[tuple[str, str]]  # (list, kind) the order's entities are on


@dataclass(frozen=True)
class _Planned:
    order: Order
    fp: str
    keys: dict[str, str]  # entity kind -> key (`RequestShape.keys`)
    ids: dict[str, str]  # the keys and the categorical attributes' values: the order's event
    numbers: dict[str, int]  # the aggregated numeric attributes in whole units
    job: _Job  # the request it came in (when, from which key)


@dataclass
class _Plan:
    """The orders of a batch after removing repeats: first occurrence of each id, in order."""

    orders: dict[str, _Planned]  # order id -> the order, its fingerprint and entity keys
    failed: dict[int, Exception]  # job index -> error

    def entities(self) -> list[tuple[str, str]]:
        seen: dict[tuple[str, str], None] = {}
        for planned in self.orders.values():
            for kind, key in planned.keys.items():
                seen[(kind, key)] = None
        return list(seen)


def job_keys(shape: RequestShape, job: list[Order]) -> list[dict[str, str]]:
    """The entity keys of a job's orders; InvalidInputError naming the field (and the order's
    place in a batch) when an entity cannot be keyed by a value."""
    fields = shape.entity_fields
    try:
        return shape.keys([{f: getattr(o, f) for f in fields} for o in job])
    except RequestValueError as err:
        if len(job) == 1:
            raise InvalidInputError(err.field, err.reason) from None
        for i, order in enumerate(job):  # which order: the first one that fails alone
            try:
                shape.keys([{f: getattr(order, f) for f in fields}])
            except RequestValueError:
                raise InvalidInputError(f"orders[{i}].{err.field}", err.reason) from None
        raise


@dataclass(frozen=True)
class _Job:
    """One call of `score`: its orders and their entity keys (`job_keys`, derived once)."""

    orders: list[Order]
    keys: list[dict[str, str]]
    received_ms: int = 0  # when the request arrived (epoch ms)
    key_id: str = ""  # which API key sent it (`decision_log.key_id`)


def _plan(
    jobs: list[_Job],
    failed: dict,
    categorical: tuple[str, ...],
    numeric: tuple[NumericSpec, ...] = (),
) -> _Plan:
    orders: dict[str, _Planned] = {}
    for j, job in enumerate(jobs):
        if j in failed:
            continue
        mine: dict[str, _Planned] = {}
        for order, order_keys in zip(job.orders, job.keys, strict=True):
            ids = order_keys
            if categorical:
                ids = {**ids, **{a: getattr(order, a) or NO_VALUE for a in categorical}}
            numbers = {v.name: number_units(getattr(order, v.name), v) for v in numeric}
            fp = fingerprint(order, ids, numbers)
            known = mine.get(order.order_id) or orders.get(order.order_id)
            if known is not None and known.fp != fp:
                failed[j] = OrderConflictError(order.order_id)
                break
            mine.setdefault(order.order_id, _Planned(order, fp, order_keys, ids, numbers, job))
        else:
            for order_id, item in mine.items():
                orders.setdefault(order_id, item)
    return _Plan(orders, failed)


class ScoringService:
    """`score(orders)` is what the routes call: each call is one job of the micro-batcher."""

    def __init__(
        self,
        store: OnlineStore,
        models: ModelHolder,
        metrics: ServiceMetrics,
        shape: RequestShape,
        spec: FeatureSpec,
        policies: PolicyHolder,
        lists: ListService,
        *,
        challengers: ModelHolder | None = None,
        batch_max_orders: int = 64,
        batch_wait_s: float = 0.0,
        max_future_s: int = DEFAULT_MAX_FUTURE_S,
        decline_holdout_share: float = 0.0,
    ) -> None:
        self.store = store
        self.holdout_share = check_holdout_share(decline_holdout_share)
        self.models = models
        self.metrics = metrics
        self.shape = shape
        self.spec = spec
        self.kinds = shape.kinds
        self.feature_names = spec.feature_names
        self.max_future_s = max_future_s
        self.policies = policies
        self.lists = lists
        self.challengers = challengers  # a model scored in shadow, for the decision log only
        self.numeric = tuple(a.name for a in shape.attributes if a.type == "numeric")
        self._rule_counters: dict[str, Any] = {}
        self.batcher: MicroBatcher[_Job, list[ScoredOrder]] = MicroBatcher(
            self.process, lambda job: len(job.orders), batch_max_orders, batch_wait_s
        )

    async def score(self, orders: list[Order], key_id: str = "") -> list[ScoredOrder]:
        """Score orders one after another (as one job of the next micro-batch). An order dated
        more than `max_future_s` ahead of now is refused: it would move its entities' clocks.
        `key_id` names the API key that asked, for the decision log."""
        received_ms = time.time_ns() // 1_000_000
        latest = latest_accepted(self.max_future_s)
        for i, order in enumerate(orders):
            if order.order_date > latest:
                field = f"orders[{i}].order_date" if len(orders) > 1 else "order_date"
                reason = (
                    f"more than {self.max_future_s} s in the future (the allowed clock skew, "
                    "FRAUD_MAX_FUTURE_S)"
                )
                raise InvalidInputError(field, reason)
        # a value no entity can be keyed by is a 400 before queueing
        job = _Job(orders, job_keys(self.shape, orders), received_ms, key_id)
        return await self.batcher.submit(job)

    async def process(self, jobs: list[_Job]) -> list[list[ScoredOrder] | Exception]:
        """Score every job's orders (see the module doc); one result or error per job."""
        model = self.models.require()
        failed: dict[int, Exception] = {}
        answers: dict[str, ScoredOrder] = {}
        scored: dict[str, ScoredOrder] = {}
        for attempt in range(_ATTEMPTS):
            scored = {}
            plan = _plan(jobs, failed, self.shape.categorical, self.spec.numeric)
            if not plan.orders:
                break
            snapshot = await self.store.read(list(plan.orders), plan.entities())
            stored = {oid: decode_record(blob) for oid, blob in snapshot.records.items()}
            changed = {oid for oid, s in stored.items() if s.fp != plan.orders[oid].fp}
            if changed:  # replays with other content: fail their jobs, plan again without them
                for j, job in enumerate(jobs):
                    hit = next((o.order_id for o in job.orders if o.order_id in changed), None)
                    if hit is not None and j not in failed:
                        failed[j] = OrderConflictError(hit)
                continue
            fresh = [item for oid, item in plan.orders.items() if oid not in stored]
            lists = await self.lists.current(snapshot.lists_version) if fresh else None
            scored, records, writes = (
                self._compute(model, snapshot, fresh, self.policies.current, lists)
                if fresh
                else ({}, [], [])
            )
            code = CommitOutcome.OK
            if records or writes:
                code = await self.store.commit(snapshot.namespace, records, writes)
            if code == CommitOutcome.OK:
                answers = {oid: ScoredOrder(s.answer, None, True) for oid, s in stored.items()}
                answers.update(scored)
                break
            self.metrics.conflicts.inc()
            if code == CommitOutcome.ENTITY_CHANGED:
                await asyncio.sleep(random.uniform(0, _CONFLICT_PAUSE_S * 2 ** min(attempt, 4)))
        else:
            raise StoreUnavailableError(
                "the online store is too busy with the same entities; try again"
            )
        if scored:
            self.metrics.scored(
                [a.result.score for a in scored.values()],
                [a.result.decision for a in scored.values()],
            )
        self.metrics.batch_orders.observe(sum(len(job.orders) for job in jobs))

        out: list[list[ScoredOrder] | Exception] = []
        replayed = 0
        for j, job in enumerate(jobs):
            if j in failed:
                out.append(failed[j])
                continue
            results = []
            for order in job.orders:
                answer = answers[order.order_id]
                if not answer.replayed:  # the first occurrence in this batch gets the features
                    answers[order.order_id] = ScoredOrder(answer.result, None, True)
                replayed += answer.replayed
                results.append(answer)
            out.append(results)
        if replayed:
            self.metrics.replays.inc(replayed)
        return out

    def _numbers(self, order: Order) -> dict[str, float]:
        """The order's numeric attributes as sent (absent ones left out)."""
        out = {}
        for name in self.numeric:
            value = getattr(order, name)
            if value is not None:
                out[name] = float(value)
        return out

    def _decide(
        self,
        policy: Policy,
        lists: ListIndex | None,
        model: ServedModel,
        fresh: list[_Planned],
        events: list[OrderEvent],
        features: np.ndarray,
        scores: np.ndarray,
        new_entities: list[list[str]],
        numbers: list[dict[str, float]],
    ) -> list[_Decided]:
        """The policy's outcome for each order: its conditions read the order's fields, its
        features, its score, its entities' list memberships and which entities are new."""
        now = time.time()
        thresholds = model.scorer.card.thresholds
        # only what the policy's conditions read (the built-in policy reads no feature)
        reads = policy.reads
        columns = [(name, j) for j, name in enumerate(self.feature_names) if name in reads]
        kinds = [k for k in self.kinds if k in reads]
        categorical = [a for a in self.shape.categorical if a in reads]
        numeric = [a for a in self.numeric if a in reads]
        nan = math.nan
        out = []
        for i, planned in enumerate(fresh):
            order = planned.order
            row = features[i]
            values: dict[str, float | str] = {name: float(row[j]) for name, j in columns}
            for kind in kinds:
                values[kind] = planned.keys[kind]
            for name in categorical:
                values[name] = getattr(order, name) or ""
            for name in numeric:
                values[name] = numbers[i].get(name, nan)
            values["amount"] = float(order.order_amount)
            values["score"] = float(scores[i])
            values["hour"] = float(events[i].t_s % 86_400 // 3_600)
            hits = lists.hits(planned.keys, now) if lists is not None else frozenset()
            outcome = policy.decide(
                OrderFacts(values, hits, frozenset(new_entities[i])), thresholds
            )
            out.append(_Decided(outcome, hits))
        return out

    def _count_rules(self, outcomes: list[_Decided]) -> None:
        matched = collections.Counter(rule for o in outcomes for rule in o.outcome.rules)
        for rule, n in matched.items():
            counter = self._rule_counters.get(rule)
            if counter is None:  # labels() takes a lock and checks: once per rule name
                counter = self._rule_counters[rule] = self.metrics.rule_matches.labels(rule)
            counter.inc(n)

    def _compute(
        self,
        model: ServedModel,
        snapshot: Snapshot,
        fresh: list[_Planned],
        policy: Policy,
        lists: ListIndex | None,
    ) -> tuple[dict[str, ScoredOrder], list[tuple[str, str, bytes, bytes]], list[EntityWrite]]:
        """Features, scores and reasons of orders never scored before (with their fingerprints
        and entity keys), the records to store (order id, primary key, stored answer,
        decision-log entry) and the entity states to write."""
        kinds, spec = self.kinds, self.spec
        states: dict[tuple[str, str], EntityState | None] = {
            key: decode_state(blob) if blob is not None else None
            for key, blob in snapshot.states.items()
        }
        # On a Redis Cluster a failed commit may have written some entities (`store`): their
        # states may hold these very orders. Features see the states without them, and an
        # order already in a state is not appended to it again.
        stored = dict(states)
        own = {p.order.order_id for p in fresh} if self.store.cluster is not None else set()
        stripped = {
            key
            for key, state in states.items()
            if own and state is not None and not own.isdisjoint(state.order_ids)
        }
        for key in stripped:
            states[key] = without_orders(stored[key], own)
        latest_s = epoch_seconds(latest_accepted(self.max_future_s))
        for key, state in states.items():
            if state is not None and len(state) and state.t_s[-1] > latest_s:
                states[key], dropped = without_future_events(state, latest_s)
                log.warning(  # the kind, never the e-mail or IP itself: logs are not the store
                    "a %s held orders dated after now + %d s, dropped from its history: %s",
                    key[0],
                    self.max_future_s,
                    dropped,
                )
        last_t: dict[tuple[str, str], int | None] = {}
        events: list[OrderEvent] = []
        new_entities: list[list[str]] = []
        for planned in fresh:
            order = planned.order
            t_s = epoch_seconds(order.order_date)
            fresh_kinds = []
            for kind in kinds:
                key = (kind, planned.keys[kind])
                if key not in last_t:
                    state = states.get(key)
                    last_t[key] = state.t_s[-1] if state is not None and len(state) else None
                if last_t[key] is None:
                    fresh_kinds.append(kind)
                else:  # an order dated before its entity's latest: taken as accepted now
                    t_s = max(t_s, last_t[key])
            for kind in kinds:
                last_t[(kind, planned.keys[kind])] = t_s
            cents = amount_cents(order.order_amount)
            events.append(
                OrderEvent(order.order_id, t_s, cents, planned.ids, numbers=planned.numbers)
            )
            new_entities.append(fresh_kinds)

        by_kind: dict[str, dict[str, EntityState]] = {k: {} for k in kinds}
        for (kind, value), state in states.items():
            if state is not None:
                by_kind[kind][value] = state
        features = batch_features(by_kind, events, spec)
        batch = model.scorer.score(features)
        shadow = self.challengers.current if self.challengers is not None else None
        shadow_scores = None
        if shadow is not None and shadow.version != model.version:
            # the challenger's calibrated scores only (no reasons): what promotion compares
            shadow_scores = shadow.scorer.predict(np.asarray(features, dtype=np.float64))
            self.metrics.shadow_scored.inc(len(fresh))

        current = {key: stored[key] if key in stripped else value for key, value in states.items()}
        changed: set[tuple[str, str]] = set()
        for event in events:
            for kind in kinds:
                key = (kind, event.ids[kind])
                state, added = current.get(key), event
                if key in stripped and state is not None:
                    if event.order_id in state.order_ids:
                        continue  # written by an earlier try (see above)
                    if state.t_s[-1] > event.t_s:  # keep the state's times in order
                        added = dataclasses.replace(event, t_s=state.t_s[-1])
                current[key] = append_order(state, added, kind, spec)
                changed.add(key)
        writes = [
            EntityWrite(kind, value, snapshot.states.get((kind, value)), encode_state(state))
            for (kind, value), state in current.items()
            if state is not None and (kind, value) in changed
        ]

        numbers = [self._numbers(p.order) for p in fresh]
        outcomes = self._decide(
            policy, lists, model, fresh, events, features, batch.scores, new_entities, numbers
        )
        self._count_rules(outcomes)
        answers: dict[str, ScoredOrder] = {}
        records: list[tuple[str, str, bytes, bytes]] = []
        decided_ms = time.time_ns() / 1e6
        for i, planned in enumerate(fresh):
            order = planned.order
            outcome = outcomes[i].outcome
            decided = outcome.decision
            # a would-be decline by the score held out: the shop is told to approve, the log
            # says why (a rule's decline is the team's own call: never held out)
            holdout = (
                decided == "decline"
                and outcome.decided_by == DECIDED_BY_SCORE
                and held_out(order.order_id, self.holdout_share)
            )
            hits = [f"{name}:{kind}" for name, kind in sorted(outcomes[i].listed)]
            result = ScoreResult(
                order_id=order.order_id,
                score=float(batch.scores[i]),
                decision="approve" if holdout else decided,  # type: ignore[arg-type]
                reasons=[
                    Reason(r.feature, _plain(r.value), r.contribution) for r in batch.reasons[i]
                ],
                model_version=model.version,
                new_entities=new_entities[i],  # type: ignore[arg-type]
                rules=list(outcome.rules),
                decided_by=outcome.decided_by,
                segment=outcome.segment,
                list_hits=hits,
                tags=list(outcome.tags),
                policy_version=policy.version,
            )
            answers[order.order_id] = ScoredOrder(result, features[i], False)
            stored = StoredAnswer(
                fp=planned.fp, ids=dict(planned.keys), answer=result, order_date=order.order_date
            )
            entry = Decision(
                order_id=order.order_id,
                t_s=events[i].t_s,
                received_ms=planned.job.received_ms,
                cents=events[i].cents,
                ids=planned.ids,
                namespace=snapshot.namespace,
                model_version=model.version,
                features=features[i],
                score=result.score,
                decision=HOLDOUT if holdout else result.decision,
                reasons=[(r.feature, r.value, r.contribution) for r in result.reasons],
                latency_us=max(0, int((decided_ms - planned.job.received_ms) * 1000)),
                key_id=planned.job.key_id,
                policy_version=policy.version,
                rules=list(outcome.rules),
                segment=outcome.segment,
                list_hits=hits,
                new_kinds=list(new_entities[i]),
                numbers=numbers[i],
                shadow_version=shadow.version if shadow_scores is not None else "",
                shadow_score=float(shadow_scores[i]) if shadow_scores is not None else None,
            )
            records.append(
                (
                    order.order_id,
                    planned.keys[spec.primary],
                    encode_record(stored),
                    encode_decision(entry),
                )
            )
        cold = collections.Counter(kind for kinds in new_entities for kind in kinds)
        for kind, count in cold.items():  # one labelled increment per kind and batch
            self.metrics.cold_starts.labels(kind=kind).inc(count)
        return answers, records, writes
