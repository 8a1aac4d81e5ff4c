"""Real engines for whole-system tests: a Dask cluster started with the `dask` CLI (one
scheduler, two single-threaded workers on loopback), shared by every test of the session.

Use it as `dask_cluster` (the scheduler address): set `DASK_SCHEDULER_ADDRESS` to it, or pass it
to `DaskResource(scheduler_address=...)`, and the assets' Dask work runs on those workers.

`store` is the real Redis under a key prefix of the test's own, its keys removed afterwards;
parametrised indirectly with `cluster` (`REDIS_MODES`), the session's 3-master Redis Cluster with
$FRAUD_REDIS_CLUSTER set, as a deployment sets it.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from fraud_assets.lib.redis_clients import AnyRedis, connect
from fraud_core.net import free_port
from fraud_core.online_keys import CLUSTER_ENV, OnlineKeys
from fraud_core.redis_server import ensure_redis

from ..serving.support import delete_prefix

DASK_CLI = Path(sys.executable).with_name("dask")
N_WORKERS = 2
START_TIMEOUT_S = 60


REDIS_MODES = ["single", "cluster"]


@pytest.fixture
def store(request, monkeypatch) -> Iterator[tuple[str, OnlineKeys, AnyRedis]]:
    """(Redis URL, the keys under a prefix of this test's module, a client)."""
    cluster = getattr(request, "param", "single") == "cluster"
    monkeypatch.setenv(CLUSTER_ENV, "1" if cluster else "0")
    url = request.getfixturevalue("redis_cluster").url if cluster else ensure_redis().url
    module = request.node.module.__name__.rsplit(".", 1)[-1].removeprefix("test_")
    keys = OnlineKeys(f"test-{module}:{uuid.uuid4().hex[:8]}:", cluster)
    client = connect(url, cluster=cluster)
    yield url, keys, client
    client.close()
    delete_prefix(url, keys.prefix, cluster=cluster)


def poll(predicate: Callable[[], object], timeout_s: float, step_s: float = 0.1) -> object:
    """`predicate()`'s first truthy value within `timeout_s`, else None (the caller says what
    did not happen)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(step_s)
    return None


def _start(args: list[str], log: Path) -> subprocess.Popen:
    # Own process group: stopping it reaches the nanny's worker process too.
    with log.open("wb") as out:
        return subprocess.Popen(
            [str(DASK_CLI), *args],
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def _stop(processes: list[subprocess.Popen]) -> None:
    for p in reversed(processes):  # workers first, then the scheduler
        if p.poll() is None:
            os.killpg(p.pid, signal.SIGTERM)
    for p in processes:
        try:
            p.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(p.pid, signal.SIGKILL)
            p.wait(timeout=5)


@pytest.fixture(scope="session")
def dask_cluster(tmp_path_factory) -> Iterator[str]:
    """`tcp://127.0.0.1:PORT` of a scheduler with two 1-thread workers (real `dask` processes)."""
    from distributed import Client

    logs = tmp_path_factory.mktemp("dask_cluster")
    port = free_port()
    address = f"tcp://127.0.0.1:{port}"
    processes = [
        _start(
            ["scheduler", "--host", "127.0.0.1", "--port", str(port), "--no-dashboard"],
            logs / "scheduler.log",
        )
    ]
    try:
        for i in range(N_WORKERS):
            processes.append(
                _start(
                    [
                        "worker",
                        address,
                        "--nthreads",
                        "1",
                        "--host",
                        "127.0.0.1",
                        "--no-dashboard",
                        "--memory-limit",
                        "1GiB",
                        "--name",
                        f"test-worker-{i}",
                        "--death-timeout",
                        "60",
                    ],
                    logs / f"worker-{i}.log",
                )
            )
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:  # the scheduler may not listen yet
            try:
                with Client(address, timeout=5) as client:
                    client.wait_for_workers(N_WORKERS, timeout=max(1, deadline - time.monotonic()))
                break
            except (OSError, TimeoutError):
                if time.monotonic() > deadline or any(p.poll() is not None for p in processes):
                    raise RuntimeError(
                        f"the dask cluster did not start; logs in {logs}: "
                        + "; ".join(f.read_text()[-500:] for f in logs.iterdir())
                    ) from None
                time.sleep(0.5)
        yield address
    finally:
        _stop(processes)
