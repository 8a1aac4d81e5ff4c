"""Loading an entity-state snapshot into Redis: a new namespace written with pipelined bulk
commands, a sample read back and compared, the service's own writes carried over, one atomic
pointer switch, and old namespaces dropped. The key layout is `fraud_core.online_keys`.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import redis
from redis.cluster import RedisCluster

from fraud_assets.lib.redis_clients import AnyRedis, mget
from fraud_core.features.spec import DEFAULT_SPEC, FeatureSpec
from fraud_core.features.state import EntityState, decode_state, encode_state
from fraud_core.online_keys import (
    COMMIT_SCRIPT,
    ENTITY_COMMIT_SCRIPT,
    SWITCH_SCRIPT,
    OnlineKeys,
    OrderIndexWindow,
    entity_group,
    new_namespace_id,
)
from fraud_core.online_store import (
    Snapshot,
    carry_over,
    newest_snapshot,
    snapshot_buckets,
)
from fraud_core.storage import DataLayout

_CHUNK = 20_000  # keys per bulk command
_SAMPLE_EVERY = 97  # every n-th entity of each bucket is read back after the load
_COMMIT_ATTEMPTS = 20


class SnapshotMissingError(RuntimeError):
    """No complete entity-state snapshot to load."""


@dataclass
class LoadReport:
    namespace: str
    previous: str | None
    snapshot: Snapshot
    entities: dict[str, int] = field(default_factory=dict)  # per kind
    order_index_size: int = 0
    load_seconds: float = 0.0
    sample_checked: int = 0
    sample_mismatches: list[str] = field(default_factory=list)
    carried_over: int = 0  # entities updated with the service's writes from `previous`
    deleted_namespaces: list[str] = field(default_factory=list)

    @property
    def entities_total(self) -> int:
        return sum(self.entities.values())

    @property
    def keys_written(self) -> int:
        """Entity keys plus the order index and the meta hash."""
        return self.entities_total + 2

    @property
    def entities_per_s(self) -> float:
        return self.entities_total / self.load_seconds if self.load_seconds > 0 else 0.0


def _bulk(command: bytes, key: bytes | None, pairs: tuple[pa.Array, pa.Array]) -> list[bytes]:
    """`command [key] a1 b1 a2 b2 ...` in the Redis protocol, in chunks, built by Arrow kernels
    (no Python per pair): MSET for entity states, HSET for the order index."""
    first, second = (p.cast(pa.binary()) for p in pairs)
    out = []
    for start in range(0, len(first), _CHUNK):
        a, b = first[start : start + _CHUNK], second[start : start + _CHUNK]
        items = [command] + ([key] if key is not None else [])
        head = b"*%d\r\n" % (len(items) + 2 * len(a))
        head += b"".join(b"$%d\r\n%s\r\n" % (len(x), x) for x in items)
        body = pc.binary_join_element_wise(
            b"$", _length(a), b"\r\n", a, b"\r\n$", _length(b), b"\r\n", b, b"\r\n", b""
        )
        out.append(head + _concatenated(body))
    return out


def _length(values: pa.Array) -> pa.Array:
    return pc.binary_length(values).cast(pa.string()).cast(pa.binary())


def _concatenated(values: pa.Array) -> bytes:
    """The bytes of a binary array's values, back to back."""
    offsets = np.frombuffer(values.buffers()[1], dtype=np.int32)
    start, stop = offsets[values.offset], offsets[values.offset + len(values)]
    return values.buffers()[2].to_pybytes()[start:stop]


class _Sender:
    """Pre-packed commands on one connection, with the replies of one batch read only after the
    next batch is built: Redis executes a bucket while the next one is being encoded."""

    def __init__(self, client: redis.Redis) -> None:
        self.pool = client.connection_pool
        self.conn = self.pool.get_connection()
        self.unread = 0

    def send(self, commands: list[bytes]) -> None:
        self.conn.send_packed_command(commands, check_health=False)
        self.unread += len(commands)

    def wait(self) -> None:
        """Read every outstanding reply (an error reply raises)."""
        while self.unread:
            self.unread -= 1
            self.conn.read_response()

    def close(self, failed: bool) -> None:
        if failed:
            self.conn.disconnect()
        self.pool.release(self.conn)


def _write_bucket_on_cluster(client: RedisCluster, keys: OnlineKeys, ns: str, bucket) -> None:
    """A bucket's states, one bulk MSET per entity group (one slot each), pre-packed and sent to
    each group's master on one connection per master; then its order index entries (the
    coordinator slot)."""
    values = bucket.states.entities.to_pylist()
    blobs = bucket.states.blobs
    groups = np.fromiter(
        (entity_group(bucket.kind, v) for v in values), dtype=np.int64, count=len(values)
    )
    order = np.argsort(groups, kind="stable")
    bounds = np.flatnonzero(np.diff(groups[order])) + 1
    by_node: dict[str, tuple[object, list[bytes]]] = {}
    for positions in np.split(order, bounds) if len(order) else []:
        names = pa.array([keys.entity(ns, bucket.kind, values[i]) for i in positions], pa.binary())
        node = client.get_node_from_key(names[0].as_py())
        commands = _bulk(b"MSET", None, (names, blobs.take(pa.array(positions))))
        by_node.setdefault(node.name, (node, []))[1].extend(commands)
    for node, commands in by_node.values():
        sender = _Sender(client.get_redis_connection(node))
        failed = True
        try:
            sender.send(commands)
            sender.wait()
            failed = False
        finally:
            sender.close(failed)
    orders = bucket.index_orders.to_pylist()
    customers = bucket.index_customers.to_pylist()
    for start in range(0, len(orders), _CHUNK):
        end = start + _CHUNK
        mapping = dict(zip(orders[start:end], customers[start:end], strict=True))
        client.hset(keys.order_index(ns), mapping=mapping)


def write_snapshot(
    client: AnyRedis,
    layout: DataLayout,
    snapshot: Snapshot,
    keys: OnlineKeys,
    ns: str,
    order_index: OrderIndexWindow | None = None,
    spec: FeatureSpec = DEFAULT_SPEC,
) -> LoadReport:
    """Bulk-write every state of `snapshot` into namespace `ns` and read a sample back. The
    order index gets the snapshot's orders of the last `order_index.retention_s`."""
    report = LoadReport(namespace=ns, previous=None, snapshot=snapshot)
    index_since_s = snapshot.end_s - (order_index or OrderIndexWindow()).retention_s
    started = time.perf_counter()
    sample: dict[str, EntityState] = {}
    sender = _Sender(client) if isinstance(client, redis.Redis) else None
    failed = True
    try:
        for bucket in snapshot_buckets(layout, snapshot, spec, index_since_s=index_since_s):
            entities = bucket.states.entities
            if sender is None:
                assert isinstance(client, RedisCluster)
                _write_bucket_on_cluster(client, keys, ns, bucket)
            else:
                prefix = keys.entity(ns, bucket.kind, "").encode()
                names = pc.binary_join_element_wise(prefix, entities.cast(pa.binary()), b"")
                commands = _bulk(b"MSET", None, (names, bucket.states.blobs))
                if len(bucket.index_orders):
                    index = (
                        bucket.index_orders.combine_chunks(),
                        bucket.index_customers.combine_chunks(),
                    )
                    commands += _bulk(b"HSET", keys.order_index(ns).encode(), index)
                sender.wait()  # the previous bucket, executed while this one was encoded
                sender.send(commands)
            report.entities[bucket.kind] = report.entities.get(bucket.kind, 0) + len(entities)
            report.order_index_size += len(bucket.index_orders)
            checked = time.perf_counter()
            picked = entities.to_pylist()[::_SAMPLE_EVERY]
            for entity, state in bucket.states_of(picked).items():
                sample[keys.entity(ns, bucket.kind, entity)] = state
            started += time.perf_counter() - checked  # the check is not part of the load time
        if sender is not None:
            sender.wait()
        failed = False
    finally:
        if sender is not None:
            sender.close(failed)
    report.load_seconds = time.perf_counter() - started

    names = list(sample)
    for start in range(0, len(names), _CHUNK):
        chunk = names[start : start + _CHUNK]
        for key, blob in zip(chunk, mget(client, chunk), strict=True):
            report.sample_checked += 1
            if blob is None or decode_state(blob) != sample[key]:
                report.sample_mismatches.append(key)
    return report


def _sha1(blob: bytes | None) -> str:
    return "" if blob is None else hashlib.sha1(blob).hexdigest()


def carry_over_namespace(
    client: AnyRedis,
    keys: OnlineKeys,
    source: str,
    target: str,
    since_s: int,
    *,
    live: bool,
    spec: FeatureSpec = DEFAULT_SPEC,
) -> int:
    """Merge the entities the service rewrote in namespace `source` into `target` (see
    `fraud_core.online_store.carry_over`). With `live` the target is active and the service
    writes to it concurrently, so every write is a compare-and-set that retries (on a cluster,
    one per entity, refused once `target` is closed). Returns how many entities changed."""
    commit = client.register_script(COMMIT_SCRIPT)
    changed = 0
    touched = [
        k.decode() if isinstance(k, bytes) else k
        for name in keys.touched_sets(source)
        for k in client.sscan_iter(name, count=5_000)
    ]
    for start in range(0, len(touched), 2_000):
        chunk = touched[start : start + 2_000]
        pairs = [keys.parse_entity(source, k) for k in chunk]
        targets = [keys.entity(target, kind, value) for kind, value in pairs]
        served = mget(client, chunk)
        for _ in range(_COMMIT_ATTEMPTS):
            loaded = mget(client, targets)
            writes: list[tuple[str, bytes | None, bytes]] = []
            index: dict[str, str] = {}  # order id -> customer id of the carried-over orders
            for (kind, value), key, old, new in zip(pairs, targets, served, loaded, strict=True):
                if old is None:
                    continue
                merged = carry_over(
                    decode_state(new) if new is not None else None,
                    decode_state(old),
                    since_s,
                    kind,
                    spec,
                )
                if merged is not None:
                    writes.append((key, new, encode_state(merged)))
                    if kind == spec.primary:  # the older ones: the snapshot's to index
                        index.update(
                            (oid, value)
                            for oid, t_s in zip(merged.order_ids, merged.t_s, strict=True)
                            if t_s >= since_s
                        )
            if not writes:
                break
            if index:
                client.hset(keys.order_index(target), mapping=index)
            if not live:
                if isinstance(client, RedisCluster):
                    client.mset_nonatomic({key: blob for key, _, blob in writes})
                else:
                    client.mset({key: blob for key, _, blob in writes})
                changed += len(writes)
                break
            if keys.cluster:
                codes = _entity_commits(client, keys, target, writes)
                changed += codes.count(0)
                if 1 in codes:
                    return changed  # another load switched and closed `target`: its job now
                if 3 not in codes:
                    break
                continue  # some changed since the read: read them again and merge once more
            args: list = [target, 0, 0, 0]
            for _, before, blob in writes:
                args += (_sha1(before), blob)
            names = [keys.active, keys.touched(target), keys.order_index(target)]
            result = commit(keys=names + [w[0] for w in writes], args=args)
            if int(result[0]) == 0:
                changed += len(writes)
                break
            if int(result[0]) == 1:
                return changed  # another load switched the pointer meanwhile: its job now
        else:
            raise RuntimeError("could not carry the service's writes over: too much contention")
    return changed


def _entity_commits(
    client: AnyRedis,
    keys: OnlineKeys,
    ns: str,
    writes: list[tuple[str, bytes | None, bytes]],
) -> list[int]:
    """Cluster: each (key, read, new) write by its own compare-and-set, pipelined per node;
    their `CommitOutcome` codes. EVAL, not EVALSHA: a node may not know the script yet."""
    with client.pipeline(transaction=False) as pipe:
        for key, before, blob in writes:
            group = entity_group(*keys.parse_entity(ns, key))
            names = [keys.closed(ns, group), keys.touched(ns, group), key]
            pipe.eval(ENTITY_COMMIT_SCRIPT, len(names), *names, _sha1(before), blob)
        return [int(code) for code in pipe.execute()]


def close_namespace(client: AnyRedis, keys: OnlineKeys, ns: str) -> None:
    """Cluster: bar every entity group of `ns` from further writes (after the switch moved
    `active` away from it: the service's commits then fail there and retry in the new one)."""
    with client.pipeline(transaction=False) as pipe:
        for group in keys.groups():
            pipe.set(keys.closed(ns, group), 1)
        pipe.execute()


def delete_namespace(client: AnyRedis, keys: OnlineKeys, ns: str) -> int:
    deleted = 0
    batch: list = []
    for pattern in keys.namespace_patterns(ns):
        for key in client.scan_iter(match=pattern, count=10_000):
            batch.append(key)
            if len(batch) >= 5_000:
                deleted += client.unlink(*batch)
                batch = []
    if batch:
        deleted += client.unlink(*batch)
    client.zrem(keys.namespaces, ns)
    return deleted


def load_online_store(
    client: AnyRedis,
    layout: DataLayout,
    keys: OnlineKeys,
    *,
    keep_previous: bool = True,
    order_index: OrderIndexWindow | None = None,
    spec: FeatureSpec = DEFAULT_SPEC,
) -> LoadReport:
    """Load the newest complete snapshot into a new namespace, check a sample, carry over the
    service's writes from the active namespace, switch `active` atomically, and delete every
    namespace but the new one and (with `keep_previous`) the one it replaced. The order index
    holds the snapshot's orders of `order_index`'s retention before the snapshot's end."""
    snapshot = newest_snapshot(layout, spec)
    if snapshot is None:
        raise SnapshotMissingError(
            f"no complete entity-state snapshot under {layout.entity_states}: "
            "materialize entity_features first"
        )
    now = datetime.now(UTC)
    ns = new_namespace_id(snapshot.day, now)
    client.zadd(keys.namespaces, {ns: now.timestamp()})
    client.hset(
        keys.meta(ns),
        mapping={
            "state": "loading",
            "snapshot_day": snapshot.day.isoformat(),
            "created_at": now.timestamp(),
        },
    )
    report = write_snapshot(client, layout, snapshot, keys, ns, order_index, spec)
    client.hset(
        keys.meta(ns),
        mapping={f"entities_{kind}": n for kind, n in report.entities.items()}
        | {"order_index_size": report.order_index_size},
    )
    if report.sample_mismatches:
        return report  # not switched: the caller reports the failed check

    previous = client.get(keys.active)
    previous = previous.decode() if previous else None
    if previous:
        report.carried_over = carry_over_namespace(
            client, keys, previous, ns, snapshot.end_s, live=False, spec=spec
        )
    switch = client.register_script(SWITCH_SCRIPT)
    before = switch(keys=[keys.active, keys.meta(ns)], args=[ns, time.time()])
    report.previous = (before.decode() if isinstance(before, bytes) else before) or None
    if report.previous and keys.cluster:
        close_namespace(client, keys, report.previous)
    if report.previous:
        # Writes that reached the old namespace between the first pass and the switch; the
        # service cannot write there any more, so this pass is complete.
        report.carried_over += carry_over_namespace(
            client, keys, report.previous, ns, snapshot.end_s, live=True, spec=spec
        )
    keep = {ns, report.previous} if keep_previous else {ns}
    for member in client.zrange(keys.namespaces, 0, -1):
        old = member.decode()
        if old not in keep:
            delete_namespace(client, keys, old)
            report.deleted_namespaces.append(old)
    return report
