"""What the decision log costs the service's latency: two services side by side, the code of an
earlier commit (before the log: f2f6c1f) and this checkout's, each on its own copy of the same
online store, the same model and the same sequence of orders, measured in alternating rounds at a
fixed rate in one run (issue 16: at most 1 ms at p99 at 500 orders/s).

    .venv/bin/python bench/decision_log_ab.py [--against f2f6c1f] [--rounds 8] [--seconds 10]

The earlier commit runs from a temporary `git worktree` (its packages first on PYTHONPATH); the
load generator is bench/serving.py's open loop (latency from each request's planned send time).
Rounds alternate the order (AB, BA, ...), so a drift of the machine over the run falls on both.
Prints each round's p50/p99 and `RESULT` lines: the medians of both and of the paired p99
differences (this checkout minus the earlier commit).
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from online_store import build_snapshot, delete_prefix, load
from serving import API_KEY, OrderMaker, _pct, _wait_ready, fixed_rate, train_and_deploy

ROOT = Path(__file__).resolve().parents[1]


def _serve(root: Path, url: str, prefix: str, port: int, pythonpath: str | None):
    env = dict(
        os.environ,
        FRAUD_DATA_DIR=str(root),
        REDIS_URL=url,
        FRAUD_REDIS_PREFIX=prefix,
        FRAUD_API_KEYS=API_KEY,
    )
    if pythonpath:
        env["PYTHONPATH"] = pythonpath
    command = [
        sys.executable, "-m", "fraud_cli.main", "serve", "--port", str(port),
        "--log-level", "warning",
    ]  # fmt: skip
    return subprocess.Popen(command, env=env, start_new_session=True, cwd=pythonpath or ROOT)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--against", default="f2f6c1f", help="the commit before the change")
    parser.add_argument("--customers", type=int, default=60_000)
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--orders-per-day", type=int, default=5_000)
    parser.add_argument("--trees", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--rate", type=float, default=500.0)
    args = parser.parse_args()
    from fraud_core.redis_server import ensure_redis

    handle = ensure_redis()
    worktree = Path(tempfile.mkdtemp(prefix="fraud-before-"))
    subprocess.run(
        ["git", "-C", str(ROOT), "worktree", "add", "-q", "--detach", str(worktree), args.against],
        check=True,
    )
    prefixes = {name: f"bench-ab:{uuid.uuid4().hex[:8]}:{name}:" for name in ("before", "after")}
    servers: dict[str, subprocess.Popen] = {}
    try:
        with tempfile.TemporaryDirectory(prefix="fraud-ab-") as tmp:
            root = Path(tmp)
            layout, orders, features = build_snapshot(
                root, args.customers, args.days, args.orders_per_day
            )
            reports = {name: load(layout, handle.url, p) for name, p in prefixes.items()}
            train_and_deploy(layout.models, orders, features, args.trees)
            ports = {"before": 18_500 + os.getpid() % 500, "after": 19_100 + os.getpid() % 500}
            for name, prefix in prefixes.items():
                path = str(worktree) if name == "before" else None
                servers[name] = _serve(root, handle.url, prefix, ports[name], path)
            for name in servers:
                _wait_ready(f"http://127.0.0.1:{ports[name]}/ready")
            start_s = reports["after"].snapshot.end_s + 60
            makers = {name: OrderMaker(orders, start_s) for name in servers}  # same sequence
            for name in servers:  # warm-up
                asyncio.run(fixed_rate("127.0.0.1", ports[name], makers[name], 50, 2, []))
            gc.collect()
            gc.freeze()
            p99: dict[str, list[float]] = {name: [] for name in servers}
            p50: dict[str, list[float]] = {name: [] for name in servers}
            for r in range(args.rounds):
                order = ("before", "after") if r % 2 == 0 else ("after", "before")
                for name in order:
                    lat, statuses = asyncio.run(
                        fixed_rate(
                            "127.0.0.1", ports[name], makers[name], args.rate, args.seconds, []
                        )
                    )
                    if set(statuses) != {200}:
                        sys.exit(f"{name}: statuses {statuses}")
                    p50[name].append(_pct(lat, 50))
                    p99[name].append(_pct(lat, 99))
                print(
                    f"round {r + 1}: before p50 {p50['before'][-1]:.2f} p99 "
                    f"{p99['before'][-1]:.2f} ms | after p50 {p50['after'][-1]:.2f} p99 "
                    f"{p99['after'][-1]:.2f} ms"
                )
            diffs = [a - b for a, b in zip(p99["after"], p99["before"], strict=True)]
            for name in servers:
                print(
                    f"RESULT {name}_p50_ms={statistics.median(p50[name]):.2f} "
                    f"{name}_p99_ms={statistics.median(p99[name]):.2f} (medians of "
                    f"{args.rounds} rounds of {args.seconds:.0f} s at {args.rate:.0f}/s)"
                )
            print(
                f"RESULT p99_diff_ms={statistics.median(diffs):+.2f} (median of paired rounds; "
                f"min {min(diffs):+.2f}, max {max(diffs):+.2f})"
            )
    finally:
        for server in servers.values():
            os.killpg(server.pid, signal.SIGTERM)
            server.wait(timeout=30)
        for prefix in prefixes.values():
            delete_prefix(handle.url, prefix)
        subprocess.run(
            ["git", "-C", str(ROOT), "worktree", "remove", "--force", str(worktree)], check=False
        )
        handle.stop()


if __name__ == "__main__":
    main()
