"""Redis clients for the code location and the CLI: a single Redis, or with
`FRAUD_REDIS_CLUSTER=1` a cluster client (`redis.cluster.RedisCluster`, which discovers every node
from the one in the URL). The key layout that goes with each is `fraud_core.online_keys`.

On a cluster, what lives in the coordinator slot (the active pointer, answers, the decision log,
labels, lists, verdicts) is all on one node: `coordinator` gives a plain client on that node, on
which transactions, scripts and raw stream reads work exactly as on a single Redis.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

import redis
from redis.cluster import RedisCluster
from redis.exceptions import RedisClusterException

from fraud_core.online_keys import OnlineKeys, resolve_cluster

AnyRedis = redis.Redis | RedisCluster


def connect(url: str, *, cluster: bool | None = None, **options: Any) -> AnyRedis:
    """A client for `url`: a cluster client when `cluster` (None: $FRAUD_REDIS_CLUSTER). A
    cluster client reads the cluster's slot map here: a cluster that does not answer raises
    `redis.ConnectionError`, as a single Redis does on its first command."""
    if resolve_cluster() if cluster is None else cluster:
        try:
            return RedisCluster.from_url(url, **options)
        except RedisClusterException as exc:  # not a RedisError
            raise redis.ConnectionError(f"Redis Cluster at {redacted(url)}: {exc}") from exc
    return redis.Redis.from_url(url, **options)


def redacted(url: str) -> str:
    """`url` without its credentials, for messages and logs."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.hostname}:{parts.port or 6379}"


def coordinator(client: AnyRedis, keys: OnlineKeys) -> redis.Redis:
    """A plain client for the coordinator slot's keys: the node that holds the slot on a
    cluster, the client itself on a single Redis."""
    if isinstance(client, RedisCluster):
        return client.get_redis_connection(client.get_node_from_key(keys.active))
    return client


def mget(client: AnyRedis, names: list[str]) -> list[bytes | None]:
    """MGET of keys that may lie in several slots (a cluster client splits it by slot)."""
    if isinstance(client, RedisCluster):
        return client.mget_nonatomic(names)
    return client.mget(names)
