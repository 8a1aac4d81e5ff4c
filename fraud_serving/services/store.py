"""The online store as the service sees it: one round trip to read what a batch needs, one
atomic compare-and-set to write it back, and a health flag that turns a Redis outage into a fast
503 and heals by itself.

Layout and scripts: `fraud_core.online_keys`. Every Redis error or timeout becomes
`StoreUnavailableError`; the client has short timeouts, so a request never waits long on a store
that is gone. A refused or broken connection is a 503 at once (the store is down). A timeout (a
busy host: Redis or the service starved of CPU for a moment) is tried again, with jittered
exponential pauses, as long as another attempt can finish within the call's deadline
(`FRAUD_REDIS_DEADLINE_MS`); only then is it a 503.

A 503 means nothing was stored. A commit whose reply is lost after it was sent (a timeout: Redis
may have run it, or may still) is settled before the caller hears of it: one script reads the
commit's fence key, which the commit marks `done` in the step that stores, and bars the commit
(`fenced`) if it has not stored; retried a few times. Stored: it succeeded. Not stored: it never
will be, so the commit is tried again under a new fence while the deadline allows, else
`StoreUnavailableError`; when another request stored these orders meanwhile, the caller answers
from the store. Redis silent throughout: `CommitUnknownError`, never a 503 and never retried.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import TypeVar
from urllib.parse import urlsplit, urlunsplit

import redis.asyncio as aioredis
from redis.asyncio.cluster import RedisCluster as AsyncRedisCluster
from redis.asyncio.retry import Retry
from redis.backoff import EqualJitterBackoff, NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import NoScriptError, RedisClusterException, RedisError, ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError

from fraud_core.decision_log import LOG_FIELD
from fraud_core.features.online import without_orders
from fraud_core.features.state import decode_state, encode_state
from fraud_core.labels import LABEL_FIELD
from fraud_core.online_keys import (
    BOOT_SCRIPT,
    ENTITY_COMMIT_SCRIPT,
    FENCE_SCRIPT,
    FENCE_TTL_S,
    FENCED_COMMIT_SCRIPT,
    INTENT_COMMIT_SCRIPT,
    INTENT_TTL_S,
    CommitIntent,
    OnlineKeys,
    OrderIndexWindow,
    entity_group,
    new_namespace_id,
)
from fraud_serving.metrics import ServiceMetrics
from fraud_serving.services.tasks import raise_if_cancelled

log = logging.getLogger(__name__)

_DOWN_PROBE_S = 0.2  # how often a store marked down is probed
# Cluster: commit intents older than this are settled (a live commit ends within its deadline,
# FRAUD_REDIS_DEADLINE_MS), looked for this often.
INTENT_SWEEP_AFTER_S = 60.0
INTENT_SWEEP_EVERY_S = 30.0
_UP_PROBE_S = 1.0
_SETTLE_PAUSES_S = (0.0, 0.02, 0.05, 0.1, 0.2, 0.4)  # tries to settle a lost commit reply
# Pauses between tries after a timeout: 10-20 ms, 20-40 ms, 40-80 ms, then 50-100 ms.
_RETRY_BACKOFF = EqualJitterBackoff(cap=0.1, base=0.02)
T = TypeVar("T")


class StoreUnavailableError(RuntimeError):
    """Redis did not answer in time (or refused) and nothing was written: the request gets a
    503."""


class CommitUnknownError(RuntimeError):
    """A commit was sent, and Redis stayed silent while the service tried to learn whether it
    ran: it may be stored. The request gets a 504; a retry with the same order ids is answered
    from the store if it was."""


class _NotStoredError(Exception):
    """A commit surely not stored (not sent, or settled as fenced): it may be tried again."""

    def __init__(self, cause: BaseException, error: StoreUnavailableError | None = None) -> None:
        super().__init__(str(cause))
        self.cause = cause
        self.error = error  # what the caller hears if it is not tried again (None: `_down`)


class ReplyLostError(Exception):
    """A command was sent but its reply did not come: Redis may have run it, or may still."""

    def __init__(self, cause: BaseException) -> None:
        super().__init__(f"{type(cause).__name__}: {cause}")
        self.cause = cause


def sha1(blob: bytes | None) -> str:
    return "" if blob is None else hashlib.sha1(blob).hexdigest()


@dataclass(frozen=True)
class Snapshot:
    """What one read returned: the namespace, stored answers by order id and entity states
    (None: never seen) by (kind, value)."""

    namespace: str
    records: dict[str, bytes]
    states: dict[tuple[str, str], bytes | None]
    lists_version: int = 0  # the lists' change counter (`fraud_core.policy.lists`)


@dataclass(frozen=True)
class EntityWrite:
    kind: str
    value: str
    before: bytes | None  # what was read: the write applies only if it is still there
    after: bytes


class CommitOutcome:
    OK = 0
    NAMESPACE_MOVED = 1
    ALREADY_SCORED = 2
    ENTITY_CHANGED = 3
    FENCED = 4  # given up by its writer after a lost reply (the writer never sees this code)


def make_client(url: str, timeout_ms: int, max_connections: int) -> aioredis.Redis:
    """An asyncio client with short timeouts and no retries (the caller answers 503 fast and
    the health probe brings the store back). When every connection is busy, a request waits
    for one (up to a second) instead of failing."""
    timeout = timeout_ms / 1000
    pool = aioredis.BlockingConnectionPool.from_url(
        url,
        max_connections=max_connections,
        timeout=1.0,
        socket_timeout=timeout,
        socket_connect_timeout=timeout,
        retry=Retry(NoBackoff(), 0),
    )
    return aioredis.Redis(connection_pool=pool)


def make_cluster_client(url: str, timeout_ms: int, max_connections: int) -> AsyncRedisCluster:
    """A cluster client (`FRAUD_REDIS_CLUSTER=1`) for the entity states, with the same short
    timeouts; the coordinator slot's keys go through a `make_client` on the node that holds it
    (`OnlineStore.probe` finds it)."""
    timeout = timeout_ms / 1000
    return AsyncRedisCluster.from_url(
        url,
        max_connections=max_connections,
        socket_timeout=timeout,
        socket_connect_timeout=timeout,
    )


def _node_url(url: str, host: str, port: int) -> str:
    """`url` (its scheme, credentials and options) pointed at another node."""
    parts = urlsplit(url)
    auth = parts.netloc.rpartition("@")[0]
    netloc = f"{auth}@{host}:{port}" if auth else f"{host}:{port}"
    return urlunsplit((parts.scheme, netloc, "/0", parts.query, ""))


def _pack(*args: bytes | str | int | float) -> bytes:
    """A command in the Redis protocol. redis-py's asyncio packer is pure Python and costs
    more than the rest of a write; batches send hundreds of arguments."""
    parts = [b"*%d\r\n" % len(args)]
    for arg in args:
        raw = arg if isinstance(arg, bytes) else str(arg).encode()
        parts.append(b"$%d\r\n%s\r\n" % (len(raw), raw))
    return b"".join(parts)


def _is_pool_wait(exc: BaseException) -> bool:
    return isinstance(exc, RedisConnectionError) and "No connection available" in str(exc)


def _is_timeout(exc: BaseException) -> bool:
    """Redis (or this process) was slow, not gone: worth another try. A refused or reset
    connection is not, and neither is a wait for a pooled connection (it waited a second)."""
    return isinstance(exc, RedisTimeoutError | asyncio.TimeoutError | TimeoutError)


@dataclass(frozen=True)
class LogChunk:
    """Decision-log entries read from the stream: (id, encoded entry) of those with the log's
    field, how many entries the read returned in all, the last one's id (to read on from, also
    past an entry without the field) and the stream's oldest id."""

    entries: list[tuple[str, bytes]]
    count: int
    last_id: str | None
    oldest_id: str | None


class OnlineStore:
    def __init__(
        self,
        client: aioredis.Redis,
        keys: OnlineKeys,
        scored_ttl_s: int,
        metrics: ServiceMetrics | None = None,
        *,
        order_index: OrderIndexWindow | None = None,
        deadline_s: float = 0.0,
        cluster: AsyncRedisCluster | None = None,
        url: str = "",
    ) -> None:
        """`deadline_s`: how long a read or a commit may keep trying after Redis timeouts (0:
        one try). `order_index`: how long an order scored here can be found by its id.
        `cluster` (with `keys.cluster`): a Redis Cluster; then `client` is replaced by one on the
        coordinator slot's node (made like `client` from `url`) when the probe finds it."""
        if (cluster is not None) != keys.cluster:
            raise ValueError("a cluster client needs the cluster key layout, and the other way")
        self.client = client
        self.cluster = cluster
        self.url = url
        self._coordinator: tuple[str, int] | None = None  # the node `client` talks to
        # cluster: a plain client per master (host, port), for pre-packed commands by node
        self._nodes: dict[tuple[str, int], aioredis.Redis] = {}
        self._entity_sha = hashlib.sha1(ENTITY_COMMIT_SCRIPT.encode()).hexdigest()
        self._pool_options = (
            client.connection_pool.connection_kwargs.get("socket_timeout") or 0.08,
            client.connection_pool.max_connections,
        )
        self.keys = keys
        self.scored_ttl_s = scored_ttl_s
        self.metrics = metrics or ServiceMetrics()
        self.order_index = order_index or OrderIndexWindow()
        self.deadline_s = deadline_s
        timeout = client.connection_pool.connection_kwargs.get("socket_timeout")
        self._attempt_s = float(timeout) if timeout else 0.0  # longest a failed try takes
        self.namespace: str | None = None
        self.up = False
        self.last_error = "not checked yet"
        self._commit_sha = hashlib.sha1(FENCED_COMMIT_SCRIPT.encode()).hexdigest()
        self._intent_commit_sha = hashlib.sha1(INTENT_COMMIT_SCRIPT.encode()).hexdigest()
        self._boot = client.register_script(BOOT_SCRIPT)

    # -- health ---------------------------------------------------------------------------------

    def _down(self, exc: BaseException) -> StoreUnavailableError:
        """The error for the caller; a refused or broken connection also marks the store down
        (requests then fail at once until the probe reaches it again). A timeout does not: on a
        busy machine one slow reply must not turn away the requests behind it."""
        if _is_pool_wait(exc):  # busy, not down
            return StoreUnavailableError("online store (Redis) busy: no free connection; retry")
        if isinstance(exc, RedisTimeoutError | asyncio.TimeoutError):
            return StoreUnavailableError(f"online store (Redis) did not answer in time: {exc}")
        reason = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
        if self.up:
            log.warning("online store unavailable: %s", reason)
        self.up = False
        self.last_error = reason
        return StoreUnavailableError(f"online store (Redis) unavailable: {reason}")

    def _check_up(self) -> None:
        if not self.up:
            raise StoreUnavailableError(f"online store (Redis) unavailable: {self.last_error}")

    async def probe(self) -> bool:
        """PING (and learn the active namespace); marks the store up or down. A timeout is
        tried again within the deadline, as a request's read is: down means refusing, or silent
        for a whole deadline."""

        async def attempt() -> None:
            if self.cluster is not None:
                await self._find_coordinator(refresh=not self.up)
            await self.client.ping()
            await self._active_namespace()

        try:
            await self._retrying(attempt)
        except StoreUnavailableError as exc:
            cause = exc.__cause__ or exc
            if self.up:
                log.warning("online store unavailable: %s: %s", type(cause).__name__, cause)
            self.up = False  # even for a timeout: the probe is the judge of "down"
            self.last_error = f"{type(cause).__name__}: {cause}"
            return False
        if not self.up:
            log.info("online store reachable again (namespace %s)", self.namespace)
        self.up = True
        self.last_error = ""
        return True

    async def watch(self) -> None:
        """Background task: probe often while down, now and then while up."""
        while True:
            try:
                await self.probe()
            except Exception as exc:
                # the loop that brings the store back must survive anything (a cluster client's
                # slot map read failing half-way, say): down, with the reason, probed again
                log.exception("online store probe failed")
                self._down(exc)
            raise_if_cancelled()
            await asyncio.sleep(_UP_PROBE_S if self.up else _DOWN_PROBE_S)

    async def _find_coordinator(self, refresh: bool) -> None:
        """Cluster: point `client` at the node that serves the coordinator slot; with `refresh`
        (the store is down: the slot may have moved, a failover or a resharding) the slot map
        is read from the cluster again first."""
        assert self.cluster is not None
        try:
            await self.cluster.initialize()
            if refresh:
                await self.cluster.nodes_manager.initialize()
            node = self.cluster.get_node_from_key(self.keys.active)
        except RedisClusterException as exc:  # not a RedisError: make it one
            raise RedisConnectionError(f"Redis Cluster: {exc}") from exc
        address = (node.host, int(node.port))
        if self._coordinator == address:
            return
        old, self._coordinator = self.client, address
        self.client = self._node_client(address)
        if old not in self._nodes.values():  # the client made before the cluster was known
            with contextlib.suppress(RedisError, OSError):
                await old.aclose()

    def _node_client(self, address: tuple[str, int]) -> aioredis.Redis:
        """Cluster: the plain client of one master, made on first use like `client`."""
        client = self._nodes.get(address)
        if client is None:
            timeout_s, connections = self._pool_options
            url = _node_url(self.url, *address)
            client = self._nodes[address] = make_client(url, int(timeout_s * 1000), connections)
        return client

    def _by_node(self, names: Sequence[str]) -> dict[tuple[str, int], list[int]]:
        """Cluster: the positions of `names` grouped by the master that serves each (the
        cluster client's slot map; a stale one shows as a MOVED reply: the store is then down
        until the probe has read the map again)."""
        assert self.cluster is not None
        groups: dict[tuple[str, int], list[int]] = {}
        try:
            for i, name in enumerate(names):
                node = self.cluster.get_node_from_key(name)
                groups.setdefault((node.host, int(node.port)), []).append(i)
        except RedisClusterException as exc:
            raise RedisConnectionError(f"Redis Cluster: {exc}") from exc
        return groups

    # -- namespace ------------------------------------------------------------------------------

    async def _active_namespace(self) -> str:
        value = await self.client.get(self.keys.active)
        if value is None:  # a fresh Redis: start an empty namespace the next load carries over
            now = datetime.now(UTC)
            fresh = new_namespace_id(None, now)
            value = await self._boot(
                keys=[self.keys.active, self.keys.namespaces, self.keys.meta(fresh)],
                args=[fresh, now.timestamp()],
                client=self.client,  # the coordinator's node on a cluster
            )
        self.namespace = value.decode() if isinstance(value, bytes) else str(value)
        return self.namespace

    # -- read and write -------------------------------------------------------------------------

    async def _call(self, packed: bytes):
        """Send one pre-packed command on a pooled connection and return the reply. A failure
        before sending is raised as it is; one after is a `ReplyLostError`."""
        pool = self.client.connection_pool
        conn = await pool.get_connection()
        try:
            await conn.send_packed_command(packed, check_health=False)
            return await conn.read_response()
        except ResponseError:
            raise
        except (TimeoutError, RedisError, OSError) as exc:
            await conn.disconnect()  # the reply may still come: never reuse this connection
            raise ReplyLostError(exc) from exc
        except BaseException:
            await conn.disconnect()
            raise
        finally:
            await pool.release(conn)

    async def _call_many(self, client: aioredis.Redis, packed: bytes, n: int) -> list:
        """`_call` for `n` pre-packed commands sent together: their replies in order, an error
        reply as its exception (every reply is read before the connection is reused)."""
        pool = client.connection_pool
        conn = await pool.get_connection()
        try:
            await conn.send_packed_command(packed, check_health=False)
            replies: list = []
            for _ in range(n):
                try:
                    replies.append(await conn.read_response())
                except ResponseError as exc:
                    replies.append(exc)
            return replies
        except (TimeoutError, RedisError, OSError) as exc:
            await conn.disconnect()  # replies may still come: never reuse this connection
            raise ReplyLostError(exc) from exc
        except BaseException:
            await conn.disconnect()
            raise
        finally:
            await pool.release(conn)

    async def _pause(self, failures: int, deadline: float) -> bool:
        """Wait before try `failures + 1` if that try, given a full Redis timeout, can still end
        by `deadline` (monotonic seconds); False (no wait) if it cannot."""
        pause = _RETRY_BACKOFF.compute(failures)
        if time.monotonic() + pause + self._attempt_s > deadline:
            return False
        await asyncio.sleep(pause)
        return True

    async def _retrying(self, attempt: Callable[[], Awaitable[T]]) -> T:
        """`attempt` (a read: trying it again changes nothing), again after each Redis timeout
        while the deadline allows; any other failure, or a timeout at the deadline, is a
        `StoreUnavailableError`."""
        deadline = time.monotonic() + self.deadline_s
        failures = 0
        while True:
            try:
                return await attempt()
            except ReplyLostError as exc:
                cause = exc.cause
            except (TimeoutError, RedisError, OSError) as exc:
                cause = exc
            if not (_is_timeout(cause) and await self._pause(failures, deadline)):
                raise self._down(cause) from cause
            failures += 1

    async def read(self, order_ids: Sequence[str], entities: Sequence[tuple[str, str]]) -> Snapshot:
        """Stored answers of `order_ids` and states of `entities`, in one MGET together with the
        active pointer (read again if the namespace moved since it was cached) and the lists'
        change counter."""
        self._check_up()
        keys = self.keys

        async def attempt() -> Snapshot | None:
            ns = self.namespace or await self._active_namespace()
            names = [keys.active, keys.lists_version]
            names += [keys.scored(o) for o in order_ids]
            states = [keys.entity(ns, kind, value) for kind, value in entities]
            if self.cluster is None:
                values = await self._call(_pack("MGET", *names, *states))
            else:  # the coordinator's keys and the states (in many slots) side by side
                ordered, spread = await asyncio.gather(
                    self._call(_pack("MGET", *names)), self._cluster_mget(states)
                )
                values = [*ordered, *spread]
            active = values[0].decode() if values[0] is not None else None
            if active != ns:
                self.namespace = None
                return None
            n = len(order_ids)
            records = {o: v for o, v in zip(order_ids, values[2 : 2 + n], strict=True) if v}
            states = dict(zip(entities, values[2 + n :], strict=True))
            return Snapshot(ns, records, states, int(values[1] or 0))

        for _ in range(3):
            snapshot = await self._retrying(attempt)
            if snapshot is not None:
                return snapshot
        raise StoreUnavailableError("the active namespace keeps moving; try again")

    async def _cluster_mget(self, names: list[str]) -> list[bytes | None]:
        """Cluster: the values of keys in many slots, one pipelined GET per key on each master,
        the masters side by side."""
        values: list[bytes | None] = [None] * len(names)

        async def on_node(address: tuple[str, int], positions: list[int]) -> None:
            packed = b"".join(_pack("GET", names[i]) for i in positions)
            replies = await self._call_many(self._node_client(address), packed, len(positions))
            for i, reply in zip(positions, replies, strict=True):
                if isinstance(reply, Exception):
                    raise reply
                values[i] = reply

        await asyncio.gather(*(on_node(a, p) for a, p in self._by_node(names).items()))
        return values

    async def _entity_commits(self, namespace: str, writes: Sequence[EntityWrite]) -> list[int]:
        """Cluster: each write's `ENTITY_COMMIT_SCRIPT`, pre-packed and pipelined per master, the
        masters side by side; their codes."""
        keys = self.keys
        names = [keys.entity(namespace, w.kind, w.value) for w in writes]
        codes = [0] * len(writes)

        async def on_node(address: tuple[str, int], positions: list[int]) -> None:
            client = self._node_client(address)
            parts = []
            for i in positions:
                w = writes[i]
                group = entity_group(w.kind, w.value)
                parts.append(
                    _pack(
                        "EVALSHA",
                        self._entity_sha,
                        3,
                        keys.closed(namespace, group),
                        keys.touched(namespace, group),
                        names[i],
                        sha1(w.before),
                        w.after,
                    )
                )
            packed = b"".join(parts)
            replies = await self._call_many(client, packed, len(positions))
            if any(isinstance(r, NoScriptError) for r in replies):  # a new or restarted node
                await client.script_load(ENTITY_COMMIT_SCRIPT)  # the NOSCRIPT ones did nothing
                replies = await self._call_many(client, packed, len(positions))
            for i, reply in zip(positions, replies, strict=True):
                if isinstance(reply, Exception):
                    raise reply
                codes[i] = int(reply)

        await asyncio.gather(*(on_node(a, p) for a, p in self._by_node(names).items()))
        return codes

    async def commit(
        self,
        namespace: str,
        records: Sequence[tuple[str, str, bytes, bytes]],
        writes: Sequence[EntityWrite],
    ) -> int:
        """Store new answers (order id, customer id, record, decision-log entry) and entity
        states atomically if nothing changed since the read, each stored answer's entry added to
        the decision log in the same step; returns a `CommitOutcome` code. Raises
        `StoreUnavailableError` only when nothing was stored (see the module doc). A commit
        surely not stored after a timeout is tried again, under a new fence, while the deadline
        allows."""
        self._check_up()
        deadline = time.monotonic() + self.deadline_s
        failures = 0
        while True:
            try:
                if self.cluster is not None:
                    return await self._commit_on_cluster(namespace, records, writes)
                return await self._commit_once(namespace, records, writes)
            except _NotStoredError as exc:
                if not (_is_timeout(exc.cause) and await self._pause(failures, deadline)):
                    raise (exc.error or self._down(exc.cause)) from exc.cause
            failures += 1

    async def _commit_once(
        self,
        namespace: str,
        records: Sequence[tuple[str, str, bytes, bytes]],
        writes: Sequence[EntityWrite],
        token: str | None = None,
        intent: str | None = None,
    ) -> int:
        keys = self.keys
        token = token or uuid.uuid4().hex
        now = time.time()
        bucket = self.order_index.bucket(now)
        names = [keys.active, keys.touched(namespace), keys.order_index_bucket(namespace, bucket)]
        names += [keys.fence(token), keys.decisions]
        # a cluster commit's intent goes in the step that stores (`INTENT_COMMIT_SCRIPT`)
        script, sha = (
            (INTENT_COMMIT_SCRIPT, self._intent_commit_sha)
            if intent
            else (FENCED_COMMIT_SCRIPT, self._commit_sha)
        )
        names += [intent] if intent else []
        names += [keys.scored(order_id) for order_id, *_ in records]
        names += [keys.entity(namespace, w.kind, w.value) for w in writes]
        args: list = [namespace, len(records), self.scored_ttl_s]
        args.append(self.order_index.expire_at(bucket))
        for order_id, customer_id, blob, entry in records:
            args += (blob, order_id, customer_id, entry)
        for w in writes:
            args += (sha1(w.before), w.after)
        packed = _pack("EVALSHA", sha, len(names), *names, *args)
        try:
            try:
                result = await self._call(packed)
            except NoScriptError:  # a restarted or flushed Redis: load the script once more
                await self.client.script_load(script)
                result = await self._call(packed)
        except ReplyLostError as exc:
            return await self._settle(token, records, exc.cause)
        except (TimeoutError, RedisError, OSError) as exc:  # not sent
            raise _NotStoredError(exc) from exc
        code = int(result[0])
        if code == CommitOutcome.NAMESPACE_MOVED:
            self.namespace = None
        return code

    async def _commit_on_cluster(
        self,
        namespace: str,
        records: Sequence[tuple[str, str, bytes, bytes]],
        writes: Sequence[EntityWrite],
    ) -> int:
        """Cluster: each entity's compare-and-set in its own slot (pipelined per node), then,
        when every one applied, the answers, log entries and fence on the coordinator's slot
        (`_commit_once` without entities). Entities applied by a commit that then fails keep
        the orders: the caller reads again, finds them there (the order id is the event's id)
        and neither counts them again nor sees them in their own features. A failure of the
        first step is never a lost answer: nothing was answered yet."""
        assert self.cluster is not None
        token = uuid.uuid4().hex
        intent = self.keys.pending(token)
        if writes and records:  # what the sweeper undoes if this process dies between the steps
            record = CommitIntent(
                token,
                namespace,
                int(time.time()),
                [order_id for order_id, *_ in records],
                [(w.kind, w.value) for w in writes],
            )
            try:
                await self._call(_pack("SET", intent, record.encode(), "EX", INTENT_TTL_S))
            except ReplyLostError as exc:
                raise _NotStoredError(exc.cause) from exc.cause
            except (TimeoutError, RedisError, OSError) as exc:
                raise _NotStoredError(exc) from exc
        if writes:
            try:
                codes = await self._entity_commits(namespace, writes)
            # applied or not, each write can only be repeated as a failed compare-and-set
            except ReplyLostError as exc:
                raise _NotStoredError(exc.cause) from exc.cause
            except (TimeoutError, RedisError, OSError) as exc:
                raise _NotStoredError(exc) from exc
            if CommitOutcome.OK not in codes and records:  # nothing written: nothing to undo
                with contextlib.suppress(ReplyLostError, TimeoutError, RedisError, OSError):
                    await self._call(_pack("DEL", intent))
            if CommitOutcome.NAMESPACE_MOVED in codes:
                self.namespace = None
                return CommitOutcome.NAMESPACE_MOVED
            if CommitOutcome.ENTITY_CHANGED in codes:
                return CommitOutcome.ENTITY_CHANGED
        # the step that stores deletes the intent too: a stored commit has nothing to undo
        recorded = intent if writes and records else None
        return await self._commit_once(namespace, records, [], token, intent=recorded)

    async def sweep_intents(self, older_than_s: float = INTENT_SWEEP_AFTER_S) -> int:
        """Cluster: settle every commit intent older than `older_than_s` (see `_settle_intent`);
        how many. Far older than any live commit takes (a request gives up within its
        deadline), so only those of a process that died between the two steps are left."""
        assert self.cluster is not None
        settled = 0
        now = time.time()
        async for name in self.client.scan_iter(match=self.keys.pending_pattern, count=1_000):
            blob = await self.client.get(name)
            if blob is None:
                continue
            try:
                intent = CommitIntent.decode(blob)
            except ValueError as exc:
                log.warning("an unreadable commit intent was deleted: %s", exc)
                await self.client.delete(name)
                continue
            if intent.t_s <= now - older_than_s:
                await self._settle_intent(name, intent)
                settled += 1
        return settled

    async def _settle_intent(self, name: bytes | str, intent: CommitIntent) -> None:
        """Bar the intent's commit from storing (`FENCE_SCRIPT`: unless it already did), then
        take its orders that have no answer out of its entities, in its namespace and in the
        active one (a load may have carried them over), and delete the intent."""
        keys = self.keys
        names = [keys.fence(intent.token)] + [keys.scored(o) for o in intent.order_ids]
        state, _ = await self.client.eval(FENCE_SCRIPT, len(names), *names, FENCE_TTL_S)
        if state != b"done":
            answers = await self.client.mget([keys.scored(o) for o in intent.order_ids])
            orphans = {o for o, a in zip(intent.order_ids, answers, strict=True) if a is None}
            if orphans:
                active = await self.client.get(keys.active)
                spaces = {intent.namespace, active.decode() if active else intent.namespace}
                for ns in sorted(spaces):
                    await self._remove_orders(ns, intent.entities, orphans)
                log.warning(
                    "undid %d orders of a commit that stopped between its two steps",
                    len(orphans),
                )
        await self.client.delete(name)

    async def _remove_orders(
        self, ns: str, entities: Sequence[tuple[str, str]], orders: set[str]
    ) -> None:
        """Take `orders` out of the states of `entities` in `ns`, by compare-and-set (again on a
        conflict); a closed namespace is left as it is (its states were carried over)."""
        names = [self.keys.entity(ns, kind, value) for kind, value in entities]
        for _ in range(20):
            writes = []
            for (kind, value), blob in zip(entities, await self._cluster_mget(names), strict=True):
                if blob is None:
                    continue
                state = decode_state(blob)
                if not orders.isdisjoint(state.order_ids):
                    after = encode_state(without_orders(state, orders))
                    writes.append(EntityWrite(kind, value, blob, after))
            if not writes:
                return
            codes = await self._entity_commits(ns, writes)
            if CommitOutcome.ENTITY_CHANGED not in codes:
                return
        raise StoreUnavailableError("could not undo a half-done commit: too much contention")

    async def sweep(self, every_s: float = INTENT_SWEEP_EVERY_S) -> None:
        """Background task (cluster): `sweep_intents` now and then; an error is logged and the
        next round tries again."""
        while True:
            await asyncio.sleep(every_s)
            if not self.up:
                continue
            try:
                await self.sweep_intents()
            except (StoreUnavailableError, TimeoutError, RedisError, OSError) as exc:
                log.warning("the commit-intent sweep failed: %s: %s", type(exc).__name__, exc)
            raise_if_cancelled()

    async def _settle(
        self, token: str, records: Sequence[tuple[str, str, bytes, bytes]], cause: BaseException
    ) -> int:
        """Whether the commit `token`, whose reply was lost, was stored: `CommitOutcome.OK` if
        it was, `ALREADY_SCORED` if another writer stored some of its orders (the caller reads
        again and answers from the store), `_NotStoredError` if it was not and never will be,
        `CommitUnknownError` if Redis does not answer."""
        keys = self.keys
        names = [keys.fence(token)] + [keys.scored(order_id) for order_id, *_ in records]
        packed = _pack("EVAL", FENCE_SCRIPT, len(names), *names, FENCE_TTL_S)
        lost = self.metrics.commit_replies_lost
        for pause in _SETTLE_PAUSES_S:
            await asyncio.sleep(pause)
            try:
                state, existing = await self._call(packed)
            except (ReplyLostError, TimeoutError, RedisError, OSError):
                continue
            if state == b"done":  # the commit marked it in the step that stored
                lost.labels(result="stored").inc()
                return CommitOutcome.OK
            if int(existing):  # not ours: another request stored some of these orders
                lost.labels(result="taken").inc()
                return CommitOutcome.ALREADY_SCORED
            lost.labels(result="not_stored").inc()
            raise _NotStoredError(
                cause,
                StoreUnavailableError(
                    f"online store (Redis) did not answer in time ({type(cause).__name__}); "
                    "nothing was stored"
                ),
            )
        lost.labels(result="unknown").inc()
        log.error("a commit's reply was lost and Redis stayed silent: outcome unknown")
        raise CommitUnknownError(
            "online store (Redis) stopped answering during the write: the orders may be stored; "
            "retry with the same order ids (a stored order is answered from the store)"
        )

    async def get_states(
        self, entities: Sequence[tuple[str, str]]
    ) -> tuple[str, list[bytes | None]]:
        snapshot = await self.read([], entities)
        return snapshot.namespace, [snapshot.states[e] for e in entities]

    async def get_record(self, order_id: str) -> bytes | None:
        snapshot = await self.read([order_id], [])
        return snapshot.records.get(order_id)

    async def indexed_customer(self, namespace: str, order_id: str) -> str | None:
        """The customer of an order in the order index: the loaded snapshot's recent orders and
        those scored here within the index's retention (see `OrderIndexWindow`)."""
        self._check_up()
        names = [self.keys.order_index(namespace)]
        names += [
            self.keys.order_index_bucket(namespace, start)
            for start in self.order_index.live_buckets(time.time())
        ]

        async def attempt() -> list:
            async with self.client.pipeline(transaction=False) as pipe:
                for name in names:
                    pipe.hget(name, order_id)
                return await pipe.execute()

        found = [value for value in await self._retrying(attempt) if value is not None]
        return found[0].decode() if found else None

    async def append_label(self, entry: bytes) -> None:
        """Add a label entry to the label feed's stream (`fraud_core.labels`). Tried again after
        a timeout: an entry written twice is one event once the feed deduplicates it."""
        self._check_up()
        await self._retrying(lambda: self.client.xadd(self.keys.labels, {LABEL_FIELD: entry}))

    # -- the review queue -----------------------------------------------------------------------

    async def decision_entries(self, after: str | None, count: int) -> LogChunk:
        """Up to `count` decision-log entries after stream id `after` (from the first: None),
        and the id of the stream's oldest entry, read together: when the oldest moved, a drain
        trimmed the stream."""
        self._check_up()
        low = "-" if after is None else f"({after}"

        async def attempt() -> list:
            async with self.client.pipeline(transaction=False) as pipe:
                pipe.xrange(self.keys.decisions, low, "+", count=count)
                pipe.xrange(self.keys.decisions, "-", "+", count=1)
                return await pipe.execute()

        entries, oldest = await self._retrying(attempt)
        return LogChunk(
            entries=[
                (entry_id.decode(), fields[LOG_FIELD])
                for entry_id, fields in entries
                if LOG_FIELD in fields
            ],
            count=len(entries),
            last_id=entries[-1][0].decode() if entries else None,
            oldest_id=oldest[0][0].decode() if oldest else None,
        )

    async def review_version(self) -> int:
        self._check_up()
        return int(await self._retrying(lambda: self.client.get(self.keys.review_version)) or 0)

    async def verdict_fields(self, days: Sequence[date]) -> tuple[int, list[dict[bytes, bytes]]]:
        """The verdict counter and each day's verdict hash, read together."""
        self._check_up()

        async def attempt() -> list:
            async with self.client.pipeline(transaction=True) as pipe:
                pipe.get(self.keys.review_version)
                for day in days:
                    pipe.hgetall(self.keys.review_verdicts(day))
                return await pipe.execute()

        version, *hashes = await self._retrying(attempt)
        return int(version or 0), hashes

    async def record_verdict(self, day: date, order_id: str, record: bytes, ttl_s: int) -> None:
        """Keep an order's verdict (in its order day's hash, whose expiry it renews) and bump the
        counter, in one transaction. Setting the same record again changes nothing that matters,
        so a timeout is tried again."""
        self._check_up()
        name = self.keys.review_verdicts(day)

        async def attempt() -> list:
            async with self.client.pipeline(transaction=True) as pipe:
                pipe.hset(name, order_id, record)
                pipe.expire(name, ttl_s)
                pipe.incr(self.keys.review_version)
                return await pipe.execute()

        await self._retrying(attempt)

    # -- lists --------------------------------------------------------------------------------

    async def list_fields(self) -> tuple[int, dict[bytes, bytes]]:
        """The lists' change counter and every entry (HGETALL), read together."""
        self._check_up()

        async def attempt() -> list:
            async with self.client.pipeline(transaction=True) as pipe:
                pipe.get(self.keys.lists_version)
                pipe.hgetall(self.keys.lists)
                return await pipe.execute()

        version, fields = await self._retrying(attempt)
        return int(version or 0), fields

    async def change_list(
        self, put: Sequence[tuple[str, str]] = (), drop: Sequence[str] = ()
    ) -> list[int]:
        """Set (field, value) entries and delete fields, and bump the change counter, in one
        transaction; the number of fields each HSET added / HDEL removed. Not retried after a
        timeout (it may have been applied): the caller sees a 503 and may repeat it, which is
        harmless (a set of the same entry, a delete of a missing one)."""
        self._check_up()
        try:
            async with self.client.pipeline(transaction=True) as pipe:
                for field, value in put:
                    pipe.hset(self.keys.lists, field, value)
                for field in drop:
                    pipe.hdel(self.keys.lists, field)
                pipe.incr(self.keys.lists_version)
                replies = await pipe.execute()
        except (TimeoutError, RedisError, OSError) as exc:
            raise self._down(exc) from exc
        return [int(r) for r in replies[:-1]]

    async def close(self) -> None:
        with contextlib.suppress(RedisError, OSError, asyncio.TimeoutError):
            await self.client.aclose()
        for node in self._nodes.values():
            if node is not self.client:
                with contextlib.suppress(RedisError, OSError, asyncio.TimeoutError):
                    await node.aclose()
        if self.cluster is not None:
            with contextlib.suppress(RedisError, OSError, asyncio.TimeoutError):
                await self.cluster.aclose()
