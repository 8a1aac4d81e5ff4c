"""What the online store costs in Redis memory, measured in Redis: MEMORY USAGE over a bounded
sample of each kind of key (entity states per kind, stored answers), the order index's entries
and bytes, and Redis' own total against its limit. The `online_store` asset reports it after each
load; the README's sizing rule is built from these figures.

SCAN visits keys in hash-table order, which has nothing to do with their names, so the first keys
a pattern matches are a fair random sample; the scan stops after a bounded number of calls, so a
huge keyspace costs a measurement no more than a small one.
"""

from __future__ import annotations

import itertools
import time
from dataclasses import dataclass, field

from redis.cluster import RedisCluster

from fraud_assets.lib.redis_clients import AnyRedis
from fraud_core.online_keys import OnlineKeys, OrderIndexWindow

_SCAN_COUNT = 1_000  # slots a SCAN call looks at
_MAX_SCAN_CALLS = 100  # so at most ~100,000 slots per pattern


@dataclass
class MemoryReport:
    """Mean bytes per key of each kind (None: none found) and Redis' totals."""

    bytes_per_state: dict[str, float | None] = field(default_factory=dict)  # per entity kind
    states_sampled: dict[str, int] = field(default_factory=dict)
    bytes_per_answer: float | None = None
    answers_sampled: int = 0
    order_index_entries: int = 0
    order_index_bytes: int = 0
    used_memory: int = 0
    limit: int = 0  # maxmemory, else the machine's memory
    limit_source: str = "maxmemory"

    @property
    def bytes_per_index_entry(self) -> float | None:
        if not self.order_index_entries:
            return None
        return self.order_index_bytes / self.order_index_entries

    @property
    def used_share(self) -> float:
        return self.used_memory / self.limit if self.limit else 0.0


def sample_keys(client: AnyRedis, pattern: str, n: int) -> list[bytes]:
    """Up to `n` keys matching `pattern`, from a bounded SCAN (of every master of a cluster)."""
    if isinstance(client, RedisCluster):
        return list(itertools.islice(client.scan_iter(match=pattern, count=_SCAN_COUNT), n))
    found: list[bytes] = []
    cursor = 0
    for _ in range(_MAX_SCAN_CALLS):
        cursor, keys = client.scan(cursor, match=pattern, count=_SCAN_COUNT)
        found.extend(keys)
        if len(found) >= n or cursor == 0:
            break
    return found[:n]


def _mean_usage(client: AnyRedis, keys: list[bytes]) -> tuple[float | None, int]:
    with client.pipeline(transaction=False) as pipe:
        for key in keys:
            pipe.memory_usage(key)
        sizes = [size for size in pipe.execute() if size is not None]  # None: expired meanwhile
    return (sum(sizes) / len(sizes) if sizes else None), len(sizes)


def measure_memory(
    client: AnyRedis,
    keys: OnlineKeys,
    ns: str,
    kinds: list[str],
    order_index: OrderIndexWindow | None = None,
    sample: int = 200,
) -> MemoryReport:
    """Bytes per entity state of each of `kinds` in namespace `ns`, per stored answer and per
    order index entry (the loader's index and the service's live buckets), up to `sample` keys
    of each; Redis' used memory and its limit."""
    report = MemoryReport()
    for kind in kinds:
        mean, count = _mean_usage(
            client, sample_keys(client, keys.entity_pattern(ns, kind), sample)
        )
        report.bytes_per_state[kind], report.states_sampled[kind] = mean, count
    answers = sample_keys(client, keys.scored_pattern, sample)
    report.bytes_per_answer, report.answers_sampled = _mean_usage(client, answers)
    window = order_index or OrderIndexWindow()
    index = [keys.order_index(ns)]
    index += [keys.order_index_bucket(ns, t) for t in window.live_buckets(time.time())]
    with client.pipeline(transaction=False) as pipe:
        for key in index:
            pipe.hlen(key)
            pipe.memory_usage(key)  # Redis samples a few fields of a big hash: cheap
        values = pipe.execute()
    report.order_index_entries = sum(values[0::2])
    report.order_index_bytes = sum(size or 0 for size in values[1::2])
    if isinstance(client, RedisCluster):  # the masters' sums
        infos = list(client.info("memory", target_nodes=RedisCluster.PRIMARIES).values())
    else:
        infos = [client.info("memory")]
    report.used_memory = sum(int(info["used_memory"]) for info in infos)
    report.limit = sum(int(info.get("maxmemory") or 0) for info in infos)
    if not report.limit:
        report.limit = sum(int(info.get("total_system_memory") or 0) for info in infos)
        report.limit_source = "system"
    return report
