"""How fast the decision log drains: entries shaped like the service's (a feature vector of the
built-in spec's length with values like its counts and amounts, three entities, three reasons) added to the stream of a private key prefix on
the Redis at $REDIS_URL (else 127.0.0.1:6379, else a private server), then moved into one parquet
segment by `drain_decisions`, as the `decision_log` asset does. The prefix's keys are removed
afterwards.

    .venv/bin/python bench/decision_drain.py [--entries 200000]

Prints `RESULT` lines: entries per second of the drain (read, decode, write, trim), the segment's
size, the stream's bytes per entry in Redis (MEMORY USAGE before the drain), and the time Redis
spends on each XRANGE (INFO commandstats; other clients wait behind it).
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
import uuid
from pathlib import Path

import numpy as np
import redis

from fraud_assets.lib.decision_drain import drain_decisions
from fraud_core.decision_log import Decision, encode_decision
from fraud_core.features.spec import DEFAULT_SPEC
from fraud_core.online_keys import OnlineKeys
from fraud_core.redis_server import ensure_redis
from fraud_core.storage import DataLayout


def _features(rng: np.random.Generator, n: int) -> np.ndarray:
    """Values shaped like the spec's: small counts, amounts in cents, shares, some empty."""
    values = np.where(
        np.arange(n) % 3 == 0,
        rng.integers(0, 20, n).astype(float),
        np.round(rng.gamma(1.5, 40.0, n), 2),
    )
    values[rng.random(n) < 0.1] = np.nan
    return values


def _xrange_stats(client: redis.Redis) -> tuple[int, int]:
    """XRANGE calls and microseconds Redis spent in them so far (INFO commandstats)."""
    stats = client.info("commandstats").get("cmdstat_xrange", {})
    return int(stats.get("calls", 0)), int(stats.get("usec", 0))


def _fill(client: redis.Redis, keys: OnlineKeys, n: int) -> None:
    rng = np.random.default_rng(0)
    n_features = len(DEFAULT_SPEC.feature_names)
    started = time.perf_counter()
    with client.pipeline(transaction=False) as pipe:
        for i in range(n):
            entry = Decision(
                order_id=f"bench-{i:09d}",
                t_s=1_790_000_000 + i,
                received_ms=1_790_000_000_000 + i * 1000,
                cents=int(rng.integers(100, 100_000)),
                ids={
                    "customer_id": f"C{i % 50_000}",
                    "email": f"e{i % 60_000}@x.org",
                    "ip_addr": f"10.{i % 250}.{i % 199}.{i % 97}",
                },
                namespace="20261130.20261201T000000.abcdef",
                model_version="0123456789abcdef",
                features=_features(rng, n_features),
                score=float(rng.random()),
                decision="APPROVE",
                reasons=[
                    ("customer_id__first_seen", 1.0, 0.8),
                    ("order_amount", 42.5, 0.3),
                    ("ip_addr__order_count__24h", 3.0, -0.2),
                ],
                latency_us=900,
                key_id="abcdef012345",
            )
            pipe.xadd(keys.decisions, {"d": encode_decision(entry)})
            if i % 5_000 == 4_999:
                pipe.execute()
        pipe.execute()
    print(f"filled {n:,} entries in {time.perf_counter() - started:.1f} s")


def _job(url: str, keys: OnlineKeys, folder: str) -> tuple[float, float]:
    """`feedback_drain_job` as the sensor launches it, on a persistent (SQLite) instance: the run's
    wall time from its start event to its end, and the step's drain rate from its metadata."""
    from dagster import DagsterInstance

    from fraud_assets.definitions import defs

    os.environ.update(FRAUD_DATA_DIR=folder, REDIS_URL=url, FRAUD_REDIS_PREFIX=keys.prefix)
    home = Path(folder) / "dagster_home"
    home.mkdir()
    (home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    instance = DagsterInstance.from_config(str(home))
    try:
        started = time.perf_counter()
        result = defs.resolve_job_def("feedback_drain_job").execute_in_process(instance=instance)
        wall = time.perf_counter() - started
        assert result.success
        (event,) = result.get_asset_materialization_events()
        rate = event.materialization.metadata["drain_rate_per_s"].value
    finally:
        instance.dispose()
    return wall, float(rate)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--entries", type=int, default=200_000)
    args = parser.parse_args()
    handle = ensure_redis()
    keys = OnlineKeys(f"bench-drain:{uuid.uuid4().hex[:8]}:")
    client = redis.Redis.from_url(handle.url)
    try:
        _fill(client, keys, args.entries)
        stream_bytes = client.memory_usage(keys.decisions, samples=0) or 0
        before = _xrange_stats(client)
        with tempfile.TemporaryDirectory() as folder:
            report = drain_decisions(client, keys, DataLayout(folder), limit=args.entries)
            segment_mb = (
                DataLayout(folder).decision_log_segments()[0].stat().st_size / 2**20
                if report.segment
                else 0.0
            )
        calls, usec = (a - b for a, b in zip(_xrange_stats(client), before, strict=True))
        print(f"RESULT drain_entries_per_s={report.rate:,.0f} ({report.drained:,} entries)")
        print(f"RESULT drain_seconds={report.seconds:.2f} s")
        print(f"RESULT segment_mb={segment_mb:.1f} MB")
        print(f"RESULT redis_bytes_per_entry={stream_bytes / args.entries:,.0f} B")
        print(f"RESULT left_in_redis={report.remaining}")
        # what each read costs Redis itself: the longest any other client waits behind it
        print(f"RESULT redis_ms_per_xrange={usec / max(calls, 1) / 1000:.1f} ms ({calls} calls)")

        _fill(client, keys, args.entries)
        with tempfile.TemporaryDirectory() as folder:
            wall, rate = _job(handle.url, keys, folder)
        print(
            f"RESULT feedback_drain_job_seconds={wall:.2f} s "
            f"({args.entries / wall:,.0f} entries/s end to end; the step drained {rate:,.0f}/s)"
        )
    finally:
        found = list(client.scan_iter(match=keys.prefix + "*"))
        if found:
            client.delete(*found)
        client.close()
        handle.stop()


if __name__ == "__main__":
    main()
