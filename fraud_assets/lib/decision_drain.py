"""Draining the scoring service's decision log from Redis into parquet segments.

The order of the steps is what keeps every committed decision exactly once: read the stream's
oldest entries, write them as one segment named by the first entry's id (atomically), and only
then trim the stream up to the last entry written. A drain that dies before the trim leaves the
entries in the stream; the next one starts at the same first entry and rewrites the same segment
with at least those entries. Nothing is trimmed that is not on disk.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import date

import redis

from fraud_core.decision_log import (
    LOG_FIELD,
    log_table,
    next_id,
    order_days,
)
from fraud_core.online_keys import OnlineKeys
from fraud_core.storage import DataLayout, write_parquet

READ_CHUNK = 10_000  # entries per XRANGE call


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
    entries: list = []
    low = "-"
    while len(entries) < limit:
        chunk = client.xrange(keys.decisions, low, "+", count=min(READ_CHUNK, limit - len(entries)))
        if not chunk:
            break
        entries += chunk
        low = "(" + chunk[-1][0].decode()  # exclusive: after the last one read
    if not entries:
        return DrainReport(0, None, remaining=0, seconds=time.perf_counter() - started)
    logged = [(i.decode(), fields[LOG_FIELD]) for i, fields in entries]
    table = log_table(logged)
    first, last = logged[0][0], logged[-1][0]
    path = write_parquet(table, layout.decision_log_segment(first))
    # only now: what is trimmed is on disk
    client.xtrim(keys.decisions, minid=next_id(last), approximate=False)
    return DrainReport(
        drained=len(logged),
        segment=str(path),
        days=order_days(table),
        remaining=client.xlen(keys.decisions),
        seconds=time.perf_counter() - started,
    )
