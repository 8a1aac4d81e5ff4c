"""Draining the scoring service's decision log from Redis into parquet segments.

The order of the steps is what keeps every committed decision exactly once: read the stream's
oldest entries, write them as one segment named by the first entry's id (atomically), and only
then trim the stream up to the last entry written. A drain that dies before the trim leaves the
entries in the stream; the next one starts at the same first entry and rewrites the same segment
with at least those entries. Nothing is trimmed that is not on disk.
"""

from __future__ import annotations

import gc
import time
from dataclasses import dataclass, field
from datetime import date

import redis

from fraud_core.decision_log import LOG_FIELD, next_id, order_days, segment_table
from fraud_core.online_keys import OnlineKeys
from fraud_core.storage import DataLayout, write_parquet

READ_CHUNK = 50_000  # entries per XRANGE call (about 70 MB)


def _field(fields: list[bytes], name: bytes) -> bytes:
    """One field of a raw stream entry ([name, value, name, value, ...])."""
    for k in range(0, len(fields), 2):
        if fields[k] == name:
            return fields[k + 1]
    raise ValueError(f"a decision-log entry without its {name.decode()!r} field")


@dataclass(frozen=True)
class DrainReport:
    drained: int  # entries written and trimmed
    segment: str | None  # the segment file written (None when the log was empty)
    days: list[date] = field(default_factory=list)  # order days of the drained entries
    remaining: int = 0  # entries left in the stream (arrived meanwhile, or beyond `limit`)
    seconds: float = 0.0

    @property
    def rate(self) -> float:
        return self.drained / self.seconds if self.seconds > 0 else 0.0


def drain_decisions(
    client: redis.Redis, keys: OnlineKeys, layout: DataLayout, limit: int = 1_000_000
) -> DrainReport:
    """Move at most `limit` of the oldest decision-log entries into one segment file."""
    started = time.perf_counter()
    # the stream's replies as Redis sends them: redis-py's per-entry dicts cost more than the rest
    raw = redis.Redis(connection_pool=client.connection_pool)
    raw.set_response_callback("XRANGE", lambda response, **_: response)
    logged: list[tuple[str, bytes]] = []
    low = "-"
    collecting = gc.isenabled()
    gc.disable()  # a million small objects, none in a cycle: the collector only slows it down
    try:
        while len(logged) < limit:
            count = min(READ_CHUNK, limit - len(logged))
            chunk = raw.execute_command("XRANGE", keys.decisions, low, "+", "COUNT", count)
            if not chunk:
                break
            for entry_id, fields in chunk:
                logged.append((entry_id.decode(), _field(fields, LOG_FIELD)))
            low = "(" + logged[-1][0]  # exclusive: after the last one read
        if not logged:
            return DrainReport(0, None, remaining=0, seconds=time.perf_counter() - started)
        table = segment_table(logged)
    finally:
        if collecting:
            gc.enable()
    first, last = logged[0][0], logged[-1][0]
    # lz4: twice zstd's pace; segments are the raw log, `scored_orders` the compact form
    path = write_parquet(table, layout.decision_log_segment(first), compression="lz4")
    # only now: what is trimmed is on disk
    client.xtrim(keys.decisions, minid=next_id(last), approximate=False)
    return DrainReport(
        drained=len(logged),
        segment=str(path),
        days=order_days(table),
        remaining=client.xlen(keys.decisions),
        seconds=time.perf_counter() - started,
    )
