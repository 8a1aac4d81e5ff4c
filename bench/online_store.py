"""Online-store load benchmark: an end-of-day entity-state snapshot of generated orders (100,000
customers and e-mails by default) loaded into Redis by the `online_store` asset's loader, the way
the asset does it (new namespace, pipelined bulk writes, sample read back, pointer switch).

    .venv/bin/python bench/online_store.py [--customers 100000] [--days 30] [--orders-per-day 10000]

Prints `RESULT online_store_entities_per_s=...` (goal >= 200,000). Uses $REDIS_URL, else
127.0.0.1:6379, else a private redis-server; writes only under a `bench:<random>:` prefix and
deletes it afterwards.
"""

from __future__ import annotations

import argparse
import tempfile
import time
import uuid
from datetime import timedelta
from pathlib import Path

import pandas as pd


def build_snapshot(root: Path, customers: int, days: int, orders_per_day: int, seed: int = 3):
    """Generated orders, their features and the end-of-range state snapshot under `root` (the
    files `entity_features` writes). Returns (layout, orders in accepted order, features)."""
    from fraud_core.features.offline import advance, canonical_order
    from fraud_core.features.pipeline import day_end_s, mark_snapshots, state_file
    from fraud_core.generator import GeneratorConfig, generate_orders
    from fraud_core.storage import DataLayout, write_parquet

    config = GeneratorConfig(
        n_customers=customers,
        n_emails=customers,
        n_ips=customers,
        orders_per_day=orders_per_day,
        days=days,
        seed=seed,
    )
    started = time.perf_counter()
    orders = canonical_order(generate_orders(config))
    last_day = config.start + timedelta(days=days - 1)
    features, states = advance({}, orders, day_end_s(last_day))
    layout = DataLayout(root)
    n_buckets = 8
    for kind, state in states.items():
        bucket = pd.util.hash_array(state["entity"].to_numpy(dtype=object)) % n_buckets
        for b in range(n_buckets):
            write_parquet(
                state[bucket == b].reset_index(drop=True), state_file(layout, kind, last_day, b)
            )
    mark_snapshots(layout, last_day, n_buckets)
    print(
        f"snapshot: {len(orders):,} orders over {days} days -> "
        + ", ".join(f"{k} {s['entity'].nunique():,}" for k, s in states.items())
        + f" entities ({time.perf_counter() - started:.1f} s)"
    )
    return layout, orders, features


def load(layout, redis_url: str, prefix: str, cluster: bool = False):
    from fraud_assets.lib.online_loader import load_online_store
    from fraud_assets.lib.redis_clients import connect
    from fraud_core.online_keys import OnlineKeys

    client = connect(redis_url, cluster=cluster)
    try:
        return load_online_store(client, layout, OnlineKeys(prefix, cluster))
    finally:
        client.close()


def delete_prefix(redis_url: str, prefix: str, cluster: bool = False) -> None:
    from fraud_assets.lib.redis_clients import connect

    client = connect(redis_url, cluster=cluster)
    try:
        batch = []
        for key in client.scan_iter(match=prefix + "*", count=10_000):
            batch.append(key)
            if len(batch) == 5_000:
                client.unlink(*batch)
                batch = []
        if batch:
            client.unlink(*batch)
    finally:
        client.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=100_000)
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--orders-per-day", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()

    from fraud_core.redis_server import ensure_redis

    handle = ensure_redis()
    prefix = f"bench:{uuid.uuid4().hex[:8]}:"
    with tempfile.TemporaryDirectory(prefix="fraud-bench-") as tmp:
        layout, _, _ = build_snapshot(Path(tmp), args.customers, args.days, args.orders_per_day)
        try:
            best = None
            for _ in range(args.repeat):  # each load replaces the previous namespace
                report = load(layout, handle.url, prefix)
                print(
                    f"load: {report.entities_total:,} entities in {report.load_seconds:.2f} s "
                    f"({report.entities_per_s:,.0f}/s), sample {report.sample_checked} checked, "
                    f"{len(report.sample_mismatches)} mismatches"
                )
                if best is None or report.entities_per_s > best.entities_per_s:
                    best = report
        finally:
            delete_prefix(handle.url, prefix)
            handle.stop()
    print(
        f"RESULT online_store_entities_per_s={best.entities_per_s:.0f} entities/s (best of {args.repeat})"
    )


if __name__ == "__main__":
    main()
