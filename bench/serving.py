"""Scoring-service benchmark: the real service (uvicorn, one process) on a Redis online store of
over 100,000 customers and e-mails (150,000 generated, 45 days of orders), driven by an async load generator on the same machine.

    .venv/bin/python bench/serving.py [--customers 150000] [--seconds 20] [--rate 500] [--workers 1]

1. builds an entity-state snapshot from generated orders and loads it with the `online_store`
   loader (prints its load rate), trains a booster like the production one (depth 6, 200 trees)
   and deploys it to a temporary registry;
2. starts `fraud serve` and waits for /ready;
3. 20 s at a fixed 500 requests/s (open loop: latency counts from the planned send time, so a
   slow server cannot hide its queue), then 20 s at saturation (64 connections back to back);
   every 50th request asks for the features, and the score is recomputed with XGBoost here.

Prints `RESULT p50_ms=`, `RESULT p99_ms=` (at the fixed rate), `RESULT max_rps=` (saturation) and
`RESULT score_max_abs_diff=`. Goals on 2 cores: p99 <= 10 ms at 500/s, >= 2,000 scores/s.

`--policy-rules 50` then activates a 50-rule policy (bench/policy_rules.py) on the same service
and measures again: `RESULT p99_ms_policy50=`, `RESULT max_rps_policy50=` and the overhead.

`--redis single,cluster` measures the same service on a single Redis, then on a 3-master Redis
Cluster started from redis-server on loopback ports (on the same cores), in one run (issue 20).

`--wrk 16,64` then drives the same service with `wrk` (Debian's package: `apt-get install wrk`)
and bench/score.lua, `--seconds` per connection count: `RESULT wrk_<n>_rps=`, p50/p99, the
non-2xx count and the workers' CPU time per scored order (issue 14's measure: `--workers 2 --wrk
16,64`).
Orders are new orders of known customers (70%) and new ones (30%), dated after the snapshot.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from online_store import build_snapshot, delete_prefix, load

API_KEY = "bench-key"
FEATURE_EVERY = 50


def train_and_deploy(registry: Path, orders, features, rounds: int, seed: int = 0) -> object:
    import xgboost as xgb

    from fraud_core.features.spec import DEFAULT_SPEC
    from fraud_core.model.artifact import ModelCard, save_version, set_current

    rng = np.random.default_rng(seed)
    rows = rng.choice(len(features), size=min(len(features), 150_000), replace=False)
    x = features[DEFAULT_SPEC.feature_names].to_numpy()[rows]
    y = orders["is_fraud"].to_numpy()[rows]
    params = {
        "max_depth": 6,
        "eta": 0.1,
        "objective": "binary:logistic",
        "nthread": 2,
        "seed": seed,
    }
    booster = xgb.train(params, xgb.DMatrix(x, y), rounds)
    card = save_version(
        registry,
        booster,
        ModelCard(
            version="",
            feature_names=DEFAULT_SPEC.feature_names,
            thresholds={"review": 0.3, "decline": 0.7},
        ),
    )
    set_current(registry, card.version, reason="bench")
    booster.set_param({"nthread": 1})
    return booster


class OrderMaker:
    """New orders: 70% of known customers (with their usual e-mail and IP), 30% new people."""

    def __init__(self, orders, start_s: int, seed: int = 1) -> None:
        last = orders.drop_duplicates("customer_id", keep="last")
        self.known = list(zip(last["customer_id"], last["email"], last["ip_addr"], strict=True))
        self.rng = random.Random(seed)
        self.t_s = start_s
        self.n = 0
        self.run = uuid.uuid4().hex[:6]

    def next(self) -> dict:
        self.n += 1
        self.t_s += self.rng.choice((0, 1, 1, 2))
        if self.rng.random() < 0.7:
            customer, email, ip = self.rng.choice(self.known)
        else:
            customer, email, ip = (
                f"NEW{self.run}{self.n}",
                f"new{self.run}{self.n}@example.org",
                f"10.{self.n % 250}.{self.n // 250 % 250}.7",
            )
        stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(self.t_s))
        return {
            "order_id": f"B{self.run}-{self.n}",
            "order_date": stamp,
            "customer_id": customer,
            "email": email,
            "ip_addr": ip,
            "order_amount": round(self.rng.lognormvariate(3.5, 1.0), 2),
        }


class Connection:
    """A keep-alive HTTP/1.1 connection that sends one request at a time."""

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def post(self, path: str, body: bytes) -> tuple[int, bytes]:
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        head = (
            f"POST {path} HTTP/1.1\r\nHost: {self.host}\r\nX-API-Key: {API_KEY}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
        ).encode()
        self.writer.write(head + body)
        assert self.reader is not None
        header = await self.reader.readuntil(b"\r\n\r\n")
        status = int(header[9:12])
        length = 0
        for line in header.split(b"\r\n"):
            if line.lower().startswith(b"content-length:"):
                length = int(line.split(b":", 1)[1])
        return status, await self.reader.readexactly(length)


async def _one(conn: Connection, maker: OrderMaker, checks: list, i: int) -> int:
    order = maker.next()
    with_features = i % FEATURE_EVERY == 0
    path = "/v1/score?features=true" if with_features else "/v1/score"
    status, body = await conn.post(path, json.dumps(order).encode())
    if status == 200 and with_features:
        answer = json.loads(body)
        checks.append((answer["score"], answer["features"]))
    return status


async def fixed_rate(
    host, port, maker, rate: float, seconds: float, checks
) -> tuple[list[float], dict]:
    """Open loop: request i is due at start + i / rate; its latency runs from then."""
    pool: asyncio.Queue[Connection] = asyncio.Queue()
    for _ in range(32):
        pool.put_nowait(Connection(host, port))
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    start = time.perf_counter() + 0.05
    total = int(rate * seconds)

    async def fire(i: int) -> None:
        due = start + i / rate
        conn = await pool.get()
        try:
            status = await _one(conn, maker, checks, i)
        finally:
            pool.put_nowait(conn)
        latencies.append(time.perf_counter() - due)
        statuses[status] = statuses.get(status, 0) + 1

    tasks = []
    for i in range(total):
        delay = start + i / rate - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(fire(i)))
    await asyncio.gather(*tasks)
    return latencies, statuses


async def saturation(
    host, port, maker, seconds: float, concurrency: int, checks
) -> tuple[list[float], dict, float]:
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    deadline = time.perf_counter() + seconds
    counter = iter(range(10**9))

    async def worker() -> None:
        conn = Connection(host, port)
        while time.perf_counter() < deadline:
            t = time.perf_counter()
            status = await _one(conn, maker, checks, next(counter))
            latencies.append(time.perf_counter() - t)
            statuses[status] = statuses.get(status, 0) + 1

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return latencies, statuses, time.perf_counter() - started


def _wait_ready(url: str, timeout_s: float = 60.0) -> None:
    import httpx

    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            if httpx.get(url, timeout=1.0).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"the service did not become ready at {url}")


def _pct(values: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(values) * 1000, q)) if values else float("nan")


def _cpu_s(pid: int) -> float:
    """CPU seconds (user + system) used so far by the process `pid`'s children: the service's
    worker processes under `fraud serve --workers N` (the process itself when it has none)."""
    tick = os.sysconf("SC_CLK_TCK")
    children = Path(f"/proc/{pid}/task/{pid}/children")
    pids = [int(p) for p in children.read_text().split()] if children.exists() else []
    total = 0
    for p in pids or [pid]:
        fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
        total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / tick


def run_wrk(
    wrk: str,
    port: int,
    maker: OrderMaker,
    root: Path,
    connections: int,
    seconds: float,
    server_pid: int,
    redis_url: str | None = None,
) -> dict:
    """`wrk` with bench/score.lua against the service: new order ids, 70 % known customers.
    Also reports the service's CPU time per scored order, which on cores shared with other work
    says more than the throughput does."""
    known = root / "known_customers.csv"
    known.write_text("".join(f"{c},{e},{i}\n" for c, e, i in maker.known))
    env = dict(
        os.environ,
        FRAUD_BENCH_KNOWN=str(known),
        FRAUD_BENCH_START_S=str(maker.t_s + 3600),
        FRAUD_BENCH_RUN=f"{uuid.uuid4().hex[:6]}c{connections}",
        FRAUD_BENCH_KEY=API_KEY,
    )
    threads = min(2, connections)
    command = [
        wrk, "-t", str(threads), "-c", str(connections), "-d", f"{seconds:.0f}s",
        "-s", str(Path(__file__).with_name("score.lua")), f"http://127.0.0.1:{port}",
    ]  # fmt: skip
    load = os.getloadavg()[0]
    cpu_before = _cpu_s(server_pid)
    commits_before = _commits(redis_url) if redis_url else 0
    out = subprocess.run(command, env=env, capture_output=True, text=True, check=True).stdout
    cpu_s = _cpu_s(server_pid) - cpu_before
    commits = _commits(redis_url) - commits_before if redis_url else 0
    result = json.loads(out.strip().splitlines()[-1])
    rps = result["requests"] / result["seconds"]
    print(
        f"wrk, {connections} connections, {threads} threads, {result['seconds']:.0f} s: "
        f"{result['requests']:,} requests, {result['non2xx']} non-2xx, "
        f"{result['socket_errors']} socket errors"
    )
    print(f"RESULT wrk_{connections}_rps={rps:.0f} scores/s")
    print(f"RESULT wrk_{connections}_p50_ms={result['p50_ms']:.2f} ms")
    print(f"RESULT wrk_{connections}_p99_ms={result['p99_ms']:.2f} ms")
    print(
        f"RESULT wrk_{connections}_cpu_ms_per_score={1000 * cpu_s / result['requests']:.3f} ms "
        f"(the service's workers; load average {load:.2f} at the start)"
    )
    if commits:
        print(
            f"RESULT wrk_{connections}_orders_per_batch={result['requests'] / commits:.1f} "
            "(requests per commit script call: one per micro-batch)"
        )
    return result


def _commits(redis_url: str) -> int:
    """Script calls the single Redis has answered so far (EVALSHA and EVAL: the service's commit
    is one per micro-batch; nothing else runs scripts during the bench)."""
    import redis

    client = redis.Redis.from_url(redis_url)
    try:
        stats = client.info("commandstats")
    finally:
        client.close()
    return sum(int(stats.get(f"cmdstat_{c}", {}).get("calls", 0)) for c in ("evalsha", "eval"))


def store_memory(url: str, prefix: str, namespace: str, cluster: bool = False) -> None:
    """The figures of the README's sizing rule, after the traffic: bytes per entity state of
    each kind, per stored answer and per order index entry (MEMORY USAGE over a sample, as the
    `online_store` check measures them)."""
    from fraud_assets.lib.online_memory import measure_memory
    from fraud_assets.lib.redis_clients import connect
    from fraud_core.features.spec import DEFAULT_SPEC
    from fraud_core.online_keys import OnlineKeys

    client = connect(url, cluster=cluster)
    try:
        kinds = [e.kind for e in DEFAULT_SPEC.entities]
        memory = measure_memory(client, OnlineKeys(prefix, cluster), namespace, kinds, sample=500)
    finally:
        client.close()
    for kind, size in memory.bytes_per_state.items():
        print(f"RESULT bytes_per_state_{kind}={size or 0:.0f} B")
    print(f"RESULT bytes_per_answer={memory.bytes_per_answer or 0:.0f} B")
    if memory.bytes_per_index_entry is not None:
        print(
            f"RESULT bytes_per_order_index_entry={memory.bytes_per_index_entry:.0f} B "
            f"({memory.order_index_entries:,} entries)"
        )


def measure(args, port: int, maker, checks: list, suffix: str) -> tuple[float, float]:
    """The fixed-rate run and the saturation run; their RESULT lines (named with `suffix`)."""
    lat, statuses = asyncio.run(
        fixed_rate("127.0.0.1", port, maker, args.rate, args.seconds, checks)
    )
    print(
        f"fixed {args.rate:.0f}/s for {args.seconds:.0f} s: {len(lat):,} requests, statuses {statuses}"
    )
    print(f"RESULT p50_ms{suffix}={_pct(lat, 50):.2f} ms")
    print(f"RESULT p99_ms{suffix}={_pct(lat, 99):.2f} ms")
    sat, statuses, elapsed = asyncio.run(
        saturation("127.0.0.1", port, maker, args.seconds, args.concurrency, checks)
    )
    ok = statuses.get(200, 0)
    print(
        f"saturation, {args.concurrency} connections for {elapsed:.1f} s: {len(sat):,} requests, "
        f"statuses {statuses}, p50 {_pct(sat, 50):.1f} ms, p99 {_pct(sat, 99):.1f} ms"
    )
    print(f"RESULT max_rps{suffix}={ok / elapsed:.0f} scores/s")
    return _pct(lat, 99), ok / elapsed


def activate_bench_policy(
    root: Path, url: str, prefix: str, orders, n_rules: int, port: int
) -> str:
    """A policy of `n_rules` rules made active (the service hot-reloads it) and 20 customers on
    the block list; its version, once the service applies it."""
    import redis
    from policy_rules import policy_text

    from fraud_core.contract import builtin_contract
    from fraud_core.online_keys import OnlineKeys
    from fraud_core.policy import PolicyFields, load_policy
    from fraud_core.policy.lists import new_entry
    from fraud_core.policy.registry import ACTIVE, PolicyRegistry
    from fraud_core.storage import DataLayout

    policy = load_policy(
        policy_text(PolicyFields.of(builtin_contract()), n_rules),
        PolicyFields.of(builtin_contract()),
    )
    registry = PolicyRegistry(DataLayout(root))
    registry.save(policy, "cli:bench", "bench")
    registry.point(ACTIVE, policy.version, "cli:bench", "bench")
    keys = OnlineKeys(prefix)
    client = redis.Redis.from_url(url)
    try:
        for customer in orders["customer_id"].drop_duplicates().head(20):
            entry = new_entry("block", "customer_id", str(customer), "bench", "cli:bench")
            client.hset(keys.lists, entry.field, entry.to_json())
        client.incr(keys.lists_version)
    finally:
        client.close()
    _wait_policy(port, lambda v: v == policy.version)
    print(f"policy {policy.version}: {n_rules} rules, 2 segments, 20 blocked customers")
    return policy.version


def _wait_policy(port: int, wanted) -> None:
    import httpx

    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        got = httpx.get(
            f"http://127.0.0.1:{port}/v1/policy", headers={"X-API-Key": API_KEY}, timeout=5
        ).json()
        if wanted(got.get("version")):
            return
        time.sleep(0.2)
    raise SystemExit("the service did not apply the bench policy within 30 s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--customers", type=int, default=150_000, help="generator population (~70%% order)"
    )
    parser.add_argument("--days", type=int, default=45)
    parser.add_argument("--orders-per-day", type=int, default=10_000)
    parser.add_argument("--trees", type=int, default=200)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--rate", type=float, default=500.0)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--workers", type=int, default=1, help="uvicorn worker processes")
    parser.add_argument(
        "--wrk", default="", help="connection counts for a wrk run each, e.g. 16,64 (needs wrk)"
    )
    parser.add_argument(
        "--redis",
        default="single",
        help="Redis configurations to measure one after the other in this run: single, cluster "
        "(a 3-master Redis Cluster started from redis-server on loopback ports) or both: "
        "single,cluster (issue 20)",
    )
    parser.add_argument(
        "--policy-rules",
        type=int,
        default=0,
        help="then activate a policy of this many rules (and 20 blocked customers) and measure "
        "again on the same service (issue 17)",
    )
    args = parser.parse_args()
    wrk = shutil.which("wrk")
    if args.wrk and wrk is None:
        sys.exit("--wrk needs wrk: apt-get install wrk (Debian's package)")

    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    modes = [m.strip() for m in args.redis.split(",") if m.strip()]
    if not modes or set(modes) - {"single", "cluster"}:
        sys.exit(f"--redis: single, cluster or single,cluster, not {args.redis!r}")
    if "cluster" in modes and args.policy_rules:
        sys.exit("--policy-rules is measured on a single Redis only")
    with tempfile.TemporaryDirectory(prefix="fraud-bench-") as tmp:
        root = Path(tmp)
        layout, orders, features = build_snapshot(
            root, args.customers, args.days, args.orders_per_day
        )
        booster = train_and_deploy(layout.models, orders, features, args.trees)
        for mode in modes:
            if len(modes) > 1:
                print(f"--- Redis: {mode}")
            run_service(args, mode, root, layout, orders, booster, wrk)


def run_service(args, mode: str, root: Path, layout, orders, booster, wrk: str | None) -> None:
    """Load the store into a fresh Redis of `mode`, start `fraud serve` on it and measure."""
    from fraud_core.redis_server import ensure_redis, start_local_cluster

    cluster = mode == "cluster"
    handle = start_local_cluster() if cluster else ensure_redis()
    prefix = f"bench:{uuid.uuid4().hex[:8]}:"
    port = 18_000 + os.getpid() % 1000
    report = load(layout, handle.url, prefix, cluster)
    print(
        f"online store: {report.entities} loaded in {report.load_seconds:.2f} s "
        f"({report.entities_per_s:,.0f} entities/s)"
    )
    env = dict(
        os.environ,
        FRAUD_DATA_DIR=str(root),
        REDIS_URL=handle.url,
        FRAUD_REDIS_CLUSTER="1" if cluster else "0",
        FRAUD_REDIS_PREFIX=prefix,
        FRAUD_API_KEYS=API_KEY,
    )
    command = [
        sys.executable, "-m", "fraud_cli.main", "serve", "--port", str(port),
        "--workers", str(args.workers), "--log-level", "warning",
    ]  # fmt: skip
    server = subprocess.Popen(command, env=env, start_new_session=True)
    try:
        _wait_ready(f"http://127.0.0.1:{port}/ready")
        start_s = report.snapshot.end_s + 60
        maker = OrderMaker(orders, start_s)
        checks: list = []
        asyncio.run(fixed_rate("127.0.0.1", port, maker, 50, 2, checks))  # warm-up
        # the generator holds the sample orders and a booster: keep its own GC passes over
        # them out of the measured latencies (the service does the same at start-up)
        gc.collect()
        gc.freeze()
        base_p99, base_rps = measure(args, port, maker, checks, "")
        if args.policy_rules:
            # A, B, A: the states grow with every order scored, so the policy's run is
            # compared with the mean of a run before it and one after it
            policy = activate_bench_policy(
                root, handle.url, prefix, orders, args.policy_rules, port
            )
            p99, rps = measure(args, port, maker, checks, f"_policy{args.policy_rules}")
            (root / "policies" / "active.json").unlink()  # back to the built-in policy
            _wait_policy(port, lambda v: v != policy)
            after_p99, after_rps = measure(args, port, maker, checks, "_after")
            base_p99, base_rps = (base_p99 + after_p99) / 2, (base_rps + after_rps) / 2
            print(
                f"RESULT policy_overhead p99 {p99 / base_p99 - 1:+.1%}, "
                f"saturation {rps / base_rps - 1:+.1%} ({args.policy_rules} rules vs the "
                "built-in policy before and after, same run)"
            )
        x = np.array([[np.nan if v is None else v for v in f.values()] for _, f in checks])
        expected = booster.inplace_predict(x)
        diff = float(np.max(np.abs(expected - np.array([s for s, _ in checks]))))
        print(
            f"RESULT score_max_abs_diff={diff:.2e} ({len(checks)} answers recomputed with XGBoost)"
        )
        for connections in [int(c) for c in args.wrk.split(",") if c.strip()]:
            # the batch size from the single Redis' script calls (on a cluster every entity's
            # write is a script call too)
            single = None if cluster else handle.url
            run_wrk(wrk, port, maker, root, connections, args.seconds, server.pid, single)
        store_memory(handle.url, prefix, report.namespace, cluster)
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=30)
        delete_prefix(handle.url, prefix, cluster)
        handle.stop()


if __name__ == "__main__":
    main()
