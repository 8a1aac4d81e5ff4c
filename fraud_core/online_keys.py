"""The Redis layout of the online store, shared by the loader (`online_store` asset) and the
scoring service, and the Lua scripts that keep it consistent.

Every key starts with a configurable prefix (default `fraud:`; tests use `test:<uuid>:`):

| key | type | what |
|---|---|---|
| `{p}active` | string | id of the namespace the service reads and writes |
| `{p}namespaces` | sorted set | every namespace ever started, scored by its start time |
| `{p}ns:{ns}:meta` | hash | snapshot day, entity counts, state (loading / active), times |
| `{p}ns:{ns}:e:{kind}:{entity}` | string | the entity's state (`fraud_core.features.state` codec) |
| `{p}ns:{ns}:orders` | hash | order id -> its primary entity (the customer) of the snapshot's recent orders (the loader's) |
| `{p}ns:{ns}:orders:{t}` | hash | the same for orders the service scored in the bucket starting at `t` (epoch s); expires |
| `{p}ns:{ns}:touched` | set | entity keys the service has rewritten in this namespace |
| `{p}scored:{order_id}` | string | the service's stored answer for an order (idempotency), with a TTL |
| `{p}fence:{token}` | string | `done`: the commit `token` was stored (60 s); `fenced`: its reply was lost and it may never apply (1 h) |
| `{p}decisions` | stream | one entry per order the service committed (`fraud_core.decision_log`), written by the commit that stores its answer; trimmed only after a drain wrote it to parquet |
| `{p}labels` | stream | one entry per label `/v1/labels` accepted (`fraud_core.labels`); trimmed only after `label_log` wrote it to parquet |
| `{p}review:{day}` | hash | order id -> the verdict on it from the review console or a label (`fraud_core.review`), per order day; expires `FRAUD_REVIEW_DAYS` + 7 days after its last verdict |
| `{p}review:version` | string | counts verdicts, so consoles re-read the hashes only when it moved |
| `{p}{c}pending:{token}` | string | cluster only: a two-step commit's `CommitIntent` until its answers are stored (see below) |

A load writes a new namespace and then moves `active` in one step; the service's writes go through
`COMMIT_SCRIPT`, which refuses to write into a namespace that is no longer active, so no update is
ever lost in a namespace nobody reads. Scored-order records live outside the namespaces: a replay
is recognised across reloads.

Nothing grows with traffic without a bound. Answers expire (the service's `FRAUD_SCORED_TTL_S`);
the order index, which lets a label name an order whose answer is gone, keeps an order for
`OrderIndexWindow.retention_s` (`FRAUD_ORDER_INDEX_DAYS`, by default the features' horizon: a
label for an older order can change no feature): the loader indexes only the snapshot's orders of
that many days, and the service's own orders go into time-bucketed hashes that Redis expires
whole. Entity states hold a bounded history (`FeatureSpec.history_n` orders plus the horizon), and
the touched set names each rewritten entity once; both go with their namespace at the next load
but one.

The service's commits are fenced (`FENCED_COMMIT_SCRIPT`): a commit that stores marks its fence
key `done` in the same atomic step; when a commit's reply is lost (a timeout after it was sent),
`FENCE_SCRIPT` marks the key `fenced` unless it is `done` already, so the commit can no longer
apply late, and answers which it was: the service learns for sure whether it was stored, whatever
other writers did meanwhile, from a reply of a few bytes.

On a Redis Cluster (`FRAUD_REDIS_CLUSTER=1`, `OnlineKeys(cluster=True)`) a script or a
transaction may only touch keys of one hash slot, so the layout carries hash tags:

- every key above but the entity states and the touched sets lives in one slot, the
  *coordinator* slot (`{p}{c}active`, `{p}{c}scored:{order_id}`, `{p}{c}decisions`, …): the
  answers, fences, the decision log, the order index, lists, labels and verdicts keep their
  single-slot scripts and transactions, and an order's answer and its log entry are still
  written in one step;
- entity states are spread over `ENTITY_GROUPS` tags (`{p}ns:{ns}:e:{g<k>}:{kind}:{value}`,
  k = `entity_group`), each group with its own touched set (`{p}ns:{ns}:touched:{g<k>}`) and
  its namespace's closed mark (`{p}ns:{ns}:closed:{g<k>}`).

An order is committed in two steps (`ENTITY_COMMIT_SCRIPT` per entity, then `INTENT_COMMIT_SCRIPT`
with no entity on the coordinator slot): each entity's new state by compare-and-set, refused once
its namespace's group is closed (the loader closes every group of the namespace it replaced, then
carries what was written there over); then the answers, the log entries and the fence, refused
if the namespace is no longer active. An order id is the entity's event id: a retry, after the
first step applied some entities and not the rest, finds the order in those states and neither
counts it again nor sees it in its own features (`fraud_serving.services.scoring`). Before the
first step the batch writes a `CommitIntent` (`{p}{c}pending:{token}`: its orders and entities),
and the second step deletes it as it stores the answers; an intent left behind by a process that
died between the steps is settled by the service's sweeper: its fence is barred, and the orders
that have no answer are taken out of the listed entities again.
"""

from __future__ import annotations

import os
import uuid
import zlib
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime

import msgpack

DEFAULT_PREFIX = "fraud:"
KEY_PREFIX_ENV = "FRAUD_REDIS_PREFIX"  # the loader's, the drain's and the service's prefix
FENCE_TTL_S = 3_600  # far longer than a sent command can wait in Redis before it runs
# How long a stored commit's `done` mark lives: far longer than a lost reply takes to settle
# (~1.3 s), short enough that one key per commit stays a few MB at thousands of commits a second.
COMMIT_MARK_TTL_S = 60
_GLOB_SPECIAL = "*?[]\\"
DAY_S = 86_400
# How long an order stays in the order index: `FeatureSpec.horizon_s` in whole days (a test keeps
# them equal), beyond which a fraud label changes no feature of any later order.
DEFAULT_ORDER_INDEX_DAYS = 37
CLUSTER_ENV = "FRAUD_REDIS_CLUSTER"  # 1: every Redis client is a cluster client
# Cluster mode: entity states are spread over this many hash tags (a namespace's close sets one
# mark per group, a carry-over reads one touched set per group); the coordinator's tag.
ENTITY_GROUPS = 128
COORDINATOR_TAG = "{c}"
INTENT_TTL_S = 7 * 86_400  # a commit intent nobody settled goes after this long


def stream_id_parts(entry_id: str | bytes) -> tuple[int, int]:
    """A Redis stream id (`<ms>-<seq>`) as its two numbers."""
    text = entry_id.decode() if isinstance(entry_id, bytes) else entry_id
    ms, _, seq = text.partition("-")
    return int(ms), int(seq or 0)


def new_namespace_id(snapshot_day: date | None, now: datetime | None = None) -> str:
    """A sortable, unique namespace id: snapshot day, load time, random suffix."""
    now = now or datetime.now(UTC)
    day = snapshot_day.strftime("%Y%m%d") if snapshot_day else "empty"
    return f"{day}.{now.strftime('%Y%m%dT%H%M%S')}.{uuid.uuid4().hex[:6]}"


def namespace_snapshot_day(namespace: str) -> date | None:
    """The snapshot day a namespace id names (`new_namespace_id`), or None (an empty one)."""
    head = namespace.split(".", 1)[0]
    try:
        return date(int(head[:4]), int(head[4:6]), int(head[6:8]))
    except ValueError:
        return None


def resolve_key_prefix(explicit: str | None = None, env: Mapping[str, str] | None = None) -> str:
    """The key prefix in use: `explicit`, else $FRAUD_REDIS_PREFIX, else `fraud:`."""
    env = os.environ if env is None else env
    return explicit or env.get(KEY_PREFIX_ENV) or DEFAULT_PREFIX


def resolve_cluster(env: Mapping[str, str] | None = None) -> bool:
    """Whether Redis is a cluster: $FRAUD_REDIS_CLUSTER is 1/true/yes (0/false/no/empty: not)."""
    env = os.environ if env is None else env
    value = (env.get(CLUSTER_ENV) or "").strip().lower()
    if value in ("", "0", "false", "no"):
        return False
    if value in ("1", "true", "yes"):
        return True
    raise ValueError(f"{CLUSTER_ENV} must be 1 or 0, not {value!r}")


def entity_group(kind: str, value: str) -> int:
    """The hash-tag group of an entity on a cluster (stable: CRC-32 of `kind:value`)."""
    return zlib.crc32(f"{kind}:{value}".encode()) % ENTITY_GROUPS


def _glob_escape(text: str) -> str:
    return "".join(f"\\{c}" if c in _GLOB_SPECIAL else c for c in text)


@dataclass(frozen=True)
class OnlineKeys:
    """Key names under one prefix; `cluster` adds the hash tags a Redis Cluster needs (see the
    module doc)."""

    prefix: str = DEFAULT_PREFIX
    cluster: bool = False

    def __post_init__(self) -> None:
        if self.cluster and ("{" in self.prefix or "}" in self.prefix):
            raise ValueError(
                f"{KEY_PREFIX_ENV} {self.prefix!r}: on a Redis Cluster a key prefix may not hold "
                "'{' or '}' (the layout's own hash tags follow it)"
            )

    @classmethod
    def from_env(
        cls, prefix: str | None = None, env: Mapping[str, str] | None = None
    ) -> OnlineKeys:
        """The layout for $FRAUD_REDIS_PREFIX (or `prefix`) and $FRAUD_REDIS_CLUSTER."""
        return cls(resolve_key_prefix(prefix, env), resolve_cluster(env))

    @property
    def _c(self) -> str:
        """The prefix of every coordinator key (see the module doc)."""
        return f"{self.prefix}{COORDINATOR_TAG}" if self.cluster else self.prefix

    @property
    def active(self) -> str:
        return f"{self._c}active"

    @property
    def namespaces(self) -> str:
        return f"{self._c}namespaces"

    def namespace_patterns(self, ns: str) -> list[str]:
        """SCAN patterns that together match every key of namespace `ns`."""
        roots = {f"{self.prefix}ns:{ns}:", f"{self._c}ns:{ns}:"}
        return sorted(_glob_escape(root) + "*" for root in roots)

    def meta(self, ns: str) -> str:
        return f"{self._c}ns:{ns}:meta"

    def _tag(self, kind: str, value: str) -> str:
        return f"{{g{entity_group(kind, value)}}}:" if self.cluster else ""

    def entity(self, ns: str, kind: str, value: str) -> str:
        return f"{self.prefix}ns:{ns}:e:{self._tag(kind, value)}{kind}:{value}"

    def entity_pattern(self, ns: str, kind: str) -> str:
        """SCAN pattern matching every state of entity kind `kind` in namespace `ns`."""
        head = _glob_escape(f"{self.prefix}ns:{ns}:e:")
        return head + ("{g*}:" if self.cluster else "") + _glob_escape(f"{kind}:") + "*"

    def parse_entity(self, ns: str, key: str | bytes) -> tuple[str, str]:
        """(kind, value) of an entity key of namespace `ns`."""
        text = key.decode() if isinstance(key, bytes) else key
        head = f"{self.prefix}ns:{ns}:e:"
        if not text.startswith(head):
            raise ValueError(f"{text!r} is not an entity key of namespace {ns!r}")
        rest = text[len(head) :]
        if self.cluster:
            tag, _, rest = rest.partition("}:")
            if not tag.startswith("{g"):
                raise ValueError(f"{text!r} is not an entity key of namespace {ns!r}")
        kind, _, value = rest.partition(":")
        return kind, value

    def groups(self) -> range:
        """The entity groups of a cluster layout (none for a single Redis)."""
        return range(ENTITY_GROUPS if self.cluster else 0)

    def closed(self, ns: str, group: int) -> str:
        """Cluster: set when namespace `ns` no longer takes entity writes in `group`."""
        return f"{self.prefix}ns:{ns}:closed:{{g{group}}}"

    def order_index(self, ns: str) -> str:
        """The loader's order index: the snapshot's orders of the retention window."""
        return f"{self._c}ns:{ns}:orders"

    def order_index_bucket(self, ns: str, start_s: int) -> str:
        """The service's order index for orders scored from `start_s` on (one bucket)."""
        return f"{self._c}ns:{ns}:orders:{start_s}"

    def touched(self, ns: str, group: int | None = None) -> str:
        """The set of entity keys the service rewrote in `ns`; on a cluster one per entity group
        (`group` None: a key of the coordinator slot that commits without entities name)."""
        if not self.cluster:
            return f"{self.prefix}ns:{ns}:touched"
        if group is None:
            return f"{self._c}ns:{ns}:touched"
        return f"{self.prefix}ns:{ns}:touched:{{g{group}}}"

    def touched_sets(self, ns: str) -> list[str]:
        """Every touched set of `ns`."""
        if not self.cluster:
            return [self.touched(ns)]
        return [self.touched(ns, g) for g in self.groups()]

    def scored(self, order_id: str) -> str:
        return f"{self._c}scored:{order_id}"

    def pending(self, token: str) -> str:
        """Cluster: the `CommitIntent` of the commit `token` until its answers are stored."""
        return f"{self._c}pending:{token}"

    @property
    def pending_pattern(self) -> str:
        return _glob_escape(self.pending("")) + "*"

    @property
    def scored_pattern(self) -> str:
        """SCAN pattern matching every stored answer."""
        return _glob_escape(self.scored("")) + "*"

    def fence(self, token: str) -> str:
        return f"{self._c}fence:{token}"

    @property
    def decisions(self) -> str:
        """The decision log (a stream): outside the namespaces, so a load keeps it."""
        return f"{self._c}decisions"

    @property
    def lists(self) -> str:
        """Block/allow/watch list entries (a hash, `fraud_core.policy.lists`): outside the
        namespaces, so a store load keeps them."""
        return f"{self._c}lists"

    @property
    def lists_version(self) -> str:
        """Incremented with every list change; read with each batch's states."""
        return f"{self._c}lists:version"

    @property
    def labels(self) -> str:
        """The labels posted to the service (a stream), for the label feed."""
        return f"{self._c}labels"

    def review_verdicts(self, day: date) -> str:
        """Verdicts on the orders of one order day (a hash: order id -> `fraud_core.review`
        record), which take them out of the review queue; expires when verdicts stop coming."""
        return f"{self._c}review:{day.isoformat()}"

    @property
    def review_version(self) -> str:
        """Incremented with every verdict: a console reads the verdict hashes again when it moved."""
        return f"{self._c}review:version"


@dataclass(frozen=True)
class CommitIntent:
    """Cluster: what a two-step commit is about to write, recorded before its first step (see
    the module doc): its fence token, namespace, when (epoch s), its orders and the entities
    (kind, value) its first step rewrites."""

    token: str
    namespace: str
    t_s: int
    order_ids: list[str]
    entities: list[tuple[str, str]]

    def encode(self) -> bytes:
        entities = [list(pair) for pair in self.entities]
        return msgpack.packb([1, self.token, self.namespace, self.t_s, self.order_ids, entities])

    @classmethod
    def decode(cls, blob: bytes) -> CommitIntent:
        try:
            version, token, namespace, t_s, order_ids, entities = msgpack.unpackb(blob)
        except (ValueError, TypeError, msgpack.ExtraData, msgpack.FormatError) as exc:
            raise ValueError(f"not a commit intent: {exc}") from exc
        if version != 1:
            raise ValueError(f"commit intent version {version} is not supported")
        return cls(token, namespace, int(t_s), list(order_ids), [(k, v) for k, v in entities])


@dataclass(frozen=True)
class OrderIndexWindow:
    """How long the service's order index keeps an order: orders scored in one bucket of time go
    into one hash, which expires `retention_s` after the bucket ends, so an order is found for
    between `retention_s` and `retention_s + bucket_s` after it was scored and the index never
    holds more than that much traffic. Buckets are a day long (an eighth of the retention when
    that is shorter, for tests)."""

    retention_s: int = DEFAULT_ORDER_INDEX_DAYS * DAY_S

    def __post_init__(self) -> None:
        if self.retention_s < 1:
            raise ValueError(f"order index retention must be at least 1 s, not {self.retention_s}")

    @property
    def bucket_s(self) -> int:
        return max(1, min(DAY_S, self.retention_s // 8))

    def bucket(self, now_s: float) -> int:
        """Start of the bucket that holds orders scored at `now_s`."""
        return int(now_s) // self.bucket_s * self.bucket_s

    def expire_at(self, start_s: int) -> int:
        """When the bucket starting at `start_s` expires (epoch seconds)."""
        return start_s + self.bucket_s + self.retention_s

    def live_buckets(self, now_s: float) -> list[int]:
        """Starts of every bucket that may still exist at `now_s`, newest first."""
        newest = self.bucket(now_s)
        oldest = self.bucket(now_s - self.retention_s - self.bucket_s)
        return list(range(newest, oldest - 1, -self.bucket_s))


# Compare-and-set of a group of entity states and new scored-order records, all or nothing.
#   KEYS[1] active pointer, KEYS[2] touched set and KEYS[3] order index (bucket) of the namespace,
#   KEYS[4 .. 3+r] scored-order records (must not exist yet),
#   KEYS[4+r ..]   entity states (must still be what the writer read)
#   ARGV[1] namespace, ARGV[2] r, ARGV[3] record TTL in seconds, ARGV[4] when the order index
#   expires (epoch seconds, set by its first writer; 0: never),
#   then per record: the record, its order id, its customer id (for the order index), its
#   decision-log entry ('' for none),
#   then per entity: SHA-1 of the state the writer read ('' when absent), the new state.
# Returns {0} on success; {1} when the namespace is not active; {2, i} when record i exists;
# {3, j} when entity j changed since it was read. Nothing is written unless the answer is {0}.
# `off` is the number of keys before the records (the fenced variant has two more: its fence and
# the decision log, to which each record's entry is added in the same step).
_COMMIT_BODY = """
local active = redis.call('GET', KEYS[1])
if active ~= ARGV[1] then return {1} end
local r = tonumber(ARGV[2])
for i = 1, r do
  if redis.call('EXISTS', KEYS[off + i]) == 1 then return {2, i} end
end
local first = off + 1 + r
local n = #KEYS - first + 1
local base = 4 + 4 * r
for j = 1, n do
  local current = redis.call('GET', KEYS[first + j - 1])
  local expected = ARGV[base + 2 * j - 1]
  if current then
    if redis.sha1hex(current) ~= expected then return {3, j} end
  elseif expected ~= '' then
    return {3, j}
  end
end
local ttl = tonumber(ARGV[3])
if mark_ttl then redis.call('SET', KEYS[4], 'done', 'EX', mark_ttl) end
if intent_key then redis.call('DEL', intent_key) end
for i = 1, r do
  redis.call('SET', KEYS[off + i], ARGV[1 + 4 * i], 'EX', ttl)
  redis.call('HSET', KEYS[3], ARGV[2 + 4 * i], ARGV[3 + 4 * i])
  if log_key and ARGV[4 + 4 * i] ~= '' then
    redis.call('XADD', log_key, '*', 'd', ARGV[4 + 4 * i])
  end
end
local index_expires = tonumber(ARGV[4])
if r > 0 and index_expires > 0 and redis.call('TTL', KEYS[3]) == -1 then
  redis.call('EXPIREAT', KEYS[3], index_expires)  -- not EXPIREAT NX: Redis 6.2 runs this too
end
for j = 1, n do
  redis.call('SET', KEYS[first + j - 1], ARGV[base + 2 * j])
end
for j = 1, n, 500 do
  redis.call('SADD', KEYS[2], unpack(KEYS, first + j - 1, first + math.min(j + 499, n) - 1))
end
return {0}
"""
COMMIT_SCRIPT = (
    "local off = 3\nlocal mark_ttl = nil\nlocal log_key = nil\nlocal intent_key = nil"
    + _COMMIT_BODY
)


# The service's commit: COMMIT_SCRIPT with KEYS[4] its fence and KEYS[5] the decision log, records
# and entities two keys later. Returns {4} (and writes nothing) when the fence exists: its writer
# gave the commit up. When it stores, it marks the fence key `done` and adds each record's
# decision-log entry in the same step: a stored answer has exactly one entry, a commit that did not
# store has none.
def _fenced_commit(off: int, intent_key: str) -> str:
    return (
        "if redis.call('EXISTS', KEYS[4]) == 1 then return {4} end\n"
        f"local off = {off}\nlocal mark_ttl = {COMMIT_MARK_TTL_S}\nlocal log_key = KEYS[5]\n"
        f"local intent_key = {intent_key}" + _COMMIT_BODY
    )


FENCED_COMMIT_SCRIPT = _fenced_commit(5, "nil")

# Cluster mode, a commit's second step: FENCED_COMMIT_SCRIPT with KEYS[6] the commit's intent
# (`OnlineKeys.pending`, on the coordinator's slot), deleted in the step that stores: a stored
# commit leaves no intent for the sweeper, and the commit saves the round trip of its own DEL.
INTENT_COMMIT_SCRIPT = _fenced_commit(6, "KEYS[6]")

# Settle a commit whose reply was lost. KEYS[1] its fence, then its record keys; ARGV[1] fence
# TTL. Unless the commit marked the fence `done`, marks it `fenced` (a commit not yet run never
# runs). Returns {'done' or 'fenced', how many of the record keys exist}: existing records of a
# commit that did not store were written by another request (a replay).
FENCE_SCRIPT = """
local state = redis.call('GET', KEYS[1])
if state ~= 'done' then
  redis.call('SET', KEYS[1], 'fenced', 'EX', ARGV[1])
  state = 'fenced'
end
local existing = 0
if #KEYS > 1 then existing = redis.call('EXISTS', unpack(KEYS, 2, #KEYS)) end
return {state, existing}
"""

# Cluster mode, one entity of a commit: compare-and-set of its state, refused when its namespace
# no longer takes writes in its group. KEYS[1] the namespace's closed mark in the entity's group,
# KEYS[2] the group's touched set, KEYS[3] the entity; ARGV[1] SHA-1 of the state the writer read
# ('' when absent), ARGV[2] the new state. Returns 0 (written), 1 (namespace closed) or 3 (the
# state changed since it was read): `CommitOutcome`'s codes.
ENTITY_COMMIT_SCRIPT = """
if redis.call('EXISTS', KEYS[1]) == 1 then return 1 end
local current = redis.call('GET', KEYS[3])
if current then
  if redis.sha1hex(current) ~= ARGV[1] then return 3 end
elseif ARGV[1] ~= '' then
  return 3
end
redis.call('SET', KEYS[3], ARGV[2])
redis.call('SADD', KEYS[2], KEYS[3])
return 0
"""

# Start an empty namespace when none is active (a fresh Redis): the service then writes there and
# the next load carries those writes over. KEYS: active, namespaces, meta of the new namespace;
# ARGV: new namespace id, now (epoch seconds). Returns the active namespace.
BOOT_SCRIPT = """
local active = redis.call('GET', KEYS[1])
if active then return active end
redis.call('SET', KEYS[1], ARGV[1])
redis.call('ZADD', KEYS[2], ARGV[2], ARGV[1])
redis.call('HSET', KEYS[3], 'state', 'active', 'snapshot_day', '', 'created_at', ARGV[2])
return ARGV[1]
"""

# Point `active` at a loaded namespace. KEYS: active, meta of the new namespace; ARGV: the new
# namespace, now. Returns the namespace that was active before ('' when none).
SWITCH_SCRIPT = """
local previous = redis.call('GET', KEYS[1])
redis.call('SET', KEYS[1], ARGV[1])
redis.call('HSET', KEYS[2], 'state', 'active', 'activated_at', ARGV[2])
return previous or ''
"""
