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
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import date

import pyarrow as pa
import pyarrow.parquet as pq
import redis

from fraud_core.decision_log import (
    LOG_FIELD,
    SEGMENT_SCHEMA,
    next_id,
    order_days,
    segment_batch,
)
from fraud_core.online_keys import OnlineKeys
from fraud_core.storage import DataLayout, as_path, atomic_path

READ_CHUNK = 5_000  # entries per XRANGE (about 7 MB; Redis spends ~5 ms on one: bench/RESULTS.md)


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


def _read(raw: redis.Redis, stream: str, low: str, count: int) -> tuple[list, list]:
    """One XRANGE chunk, unparsed by redis-py: (entry ids, encoded entries)."""
    chunk = raw.execute_command("XRANGE", stream, low, "+", "COUNT", count)
    ids = [entry_id for entry_id, _ in chunk]
    blobs = [
        fields[1] if len(fields) == 2 and fields[0] == LOG_FIELD else _field(fields, LOG_FIELD)
        for _, fields in chunk
    ]
    return ids, blobs


def drain_decisions(
    client: redis.Redis, keys: OnlineKeys, layout: DataLayout, limit: int = 1_000_000
) -> DrainReport:
    """Move at most `limit` of the oldest decision-log entries into one segment file.

    Chunk by chunk: while one chunk's rows are written (the parquet writer releases the GIL, in
    a thread), the next is read from Redis. Each XRANGE is kept small (`READ_CHUNK`) so that
    Redis, which runs one command at a time, never stalls the scoring service for long."""
    started = time.perf_counter()
    # the stream's replies as Redis sends them: redis-py's per-entry dicts cost more than the rest
    raw = redis.Redis(connection_pool=client.connection_pool)
    raw.set_response_callback("XRANGE", lambda response, **_: response)
    ids, blobs = _read(raw, keys.decisions, "-", min(READ_CHUNK, limit))
    if not ids:
        return DrainReport(0, None, remaining=0, seconds=time.perf_counter() - started)
    first = ids[0].decode()
    path = layout.decision_log_segment(first)
    drained, last, days = 0, first, set()
    collecting = gc.isenabled()
    gc.disable()  # many small objects, none in a cycle: the collector only slows it down
    try:
        # lz4: twice zstd's pace; segments are the raw log, `scored_orders` the compact form
        with (
            atomic_path(as_path(path), durable=True) as tmp,
            pq.ParquetWriter(tmp, SEGMENT_SCHEMA, compression="lz4") as writer,
            ThreadPoolExecutor(1) as pool,
        ):
            pending = None
            while ids:
                batch = segment_batch(ids, blobs)
                drained += len(ids)
                last = ids[-1].decode()
                days.update(order_days(pa.Table.from_batches([batch])))
                if pending is not None:
                    pending.result()
                pending = pool.submit(writer.write_batch, batch)
                count = min(READ_CHUNK, limit - drained)
                ids, blobs = _read(raw, keys.decisions, "(" + last, count) if count else ([], [])
            if pending is not None:
                pending.result()
    finally:
        if collecting:
            gc.enable()
    # only now: what is trimmed is on disk
    client.xtrim(keys.decisions, minid=next_id(last), approximate=False)
    return DrainReport(
        drained=drained,
        segment=str(path),
        days=sorted(days),
        remaining=client.xlen(keys.decisions),
        seconds=time.perf_counter() - started,
    )
