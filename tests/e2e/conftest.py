"""Real engines for whole-system tests: a Dask cluster started with the `dask` CLI (one
scheduler, two single-threaded workers on loopback), shared by every test of the session.

Use it as `dask_cluster` (the scheduler address): set `DASK_SCHEDULER_ADDRESS` to it, or pass it
to `DaskResource(scheduler_address=...)`, and the assets' Dask work runs on those workers.

`store` is the real Redis under a key prefix of the test's own, its keys removed afterwards;
parametrised indirectly with `cluster` (`REDIS_MODES`), the session's 3-master Redis Cluster with
$FRAUD_REDIS_CLUSTER set, as a deployment sets it.

`remote_dask_cluster` is a second Dask cluster whose workers share no folder and no settings with
the test process, only the object store's endpoint. `pg_instance` is a Dagster instance on the
local PostgreSQL (the block documented in the project's dagster.yaml), in a schema of its own
that is dropped afterwards; the test is skipped, with the reason printed, when PostgreSQL does
not answer.
"""

from __future__ import annotations

import contextlib
import getpass
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import psycopg2
import pytest
import yaml
from dagster import DagsterInstance

from fraud_assets.lib.redis_clients import AnyRedis, connect
from fraud_core.net import free_port
from fraud_core.online_keys import CLUSTER_ENV, OnlineKeys
from fraud_core.redis_server import ensure_redis

from ..objectstore import s3_env
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


def _start(
    args: list[str], log: Path, env: dict[str, str] | None = None, cwd: Path | None = None
) -> subprocess.Popen:
    # Own process group: stopping it reaches the nanny's worker process too.
    with log.open("wb") as out:
        return subprocess.Popen(
            [str(DASK_CLI), *args],
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            env=env,
            cwd=cwd,
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


@contextlib.contextmanager
def running_dask_cluster(
    logs: Path, env: dict[str, str] | None = None, homes: list[Path] | None = None
) -> Iterator[str]:
    """`tcp://127.0.0.1:PORT` of a scheduler with two 1-thread workers (real `dask` processes),
    stopped at the end. `env`: the processes' whole environment (default: this process's);
    `homes`: each worker's working and spill directory (default: inherited, Dask's own)."""
    from distributed import Client

    port = free_port()
    address = f"tcp://127.0.0.1:{port}"
    processes = [
        _start(
            ["scheduler", "--host", "127.0.0.1", "--port", str(port), "--no-dashboard"],
            logs / "scheduler.log",
            env=env,
        )
    ]
    try:
        for i in range(N_WORKERS):
            home = homes[i] if homes else None
            args = [
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
            ]
            if home is not None:
                args += ["--local-directory", str(home)]
            processes.append(_start(args, logs / f"worker-{i}.log", env=env, cwd=home))
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


@pytest.fixture(scope="session")
def dask_cluster(tmp_path_factory) -> Iterator[str]:
    """The session's Dask cluster: its processes inherit this one's environment and folder."""
    with running_dask_cluster(tmp_path_factory.mktemp("dask_cluster")) as address:
        yield address


@pytest.fixture(scope="session")
def remote_dask_cluster(tmp_path_factory, s3_endpoint: str) -> Iterator[str]:
    """A Dask cluster as on other machines: each worker in a directory of its own, with no
    FRAUD_* or DAGSTER_* variable of this process (so no data folder or instance to share), and
    the object store's endpoint and credentials, as a deployment gives them."""
    env = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(("FRAUD_", "DAGSTER_", "DASK_SCHEDULER"))
    }
    env.update(s3_env(s3_endpoint))
    homes = [tmp_path_factory.mktemp(f"worker-{i}-home") for i in range(N_WORKERS)]
    with running_dask_cluster(tmp_path_factory.mktemp("remote_dask"), env, homes) as address:
        yield address


PROJECT_YAML = Path(__file__).resolve().parents[2] / "dagster.yaml"


def documented_postgres_block() -> dict:
    """The commented `storage: postgres:` block of dagster.yaml, uncommented and parsed."""
    lines, inside = [], False
    for line in PROJECT_YAML.read_text().splitlines():
        if line.strip() == "# storage:":
            inside = True
        if inside:
            if not line.startswith("#"):
                break
            lines.append(line[2:])
    assert lines, "dagster.yaml no longer documents a PostgreSQL storage block"
    return yaml.safe_load("\n".join(lines))


def _connection_settings() -> dict[str, str]:
    return {
        "DAGSTER_PG_HOST": os.environ.get("DAGSTER_PG_HOST", "127.0.0.1"),
        "DAGSTER_PG_PORT": os.environ.get("DAGSTER_PG_PORT", "5432"),
        "DAGSTER_PG_DB": os.environ.get("DAGSTER_PG_DB", "test"),
        "DAGSTER_PG_PASSWORD": os.environ.get("DAGSTER_PG_PASSWORD", ""),
    }


def _connect(settings: dict[str, str]):
    """A connection as the configured user, else `postgres`, else the current user."""
    users = [os.environ.get("DAGSTER_PG_USER"), "postgres", getpass.getuser()]
    errors = []
    for user in dict.fromkeys(u for u in users if u):
        try:
            conn = psycopg2.connect(
                host=settings["DAGSTER_PG_HOST"],
                port=int(settings["DAGSTER_PG_PORT"]),
                dbname=settings["DAGSTER_PG_DB"],
                user=user,
                password=settings["DAGSTER_PG_PASSWORD"] or None,
                connect_timeout=3,
            )
            return conn, user
        except psycopg2.OperationalError as err:
            errors.append(f"{user}: {str(err).strip()}")
    reason = (
        f"PostgreSQL at {settings['DAGSTER_PG_HOST']}:{settings['DAGSTER_PG_PORT']}/"
        f"{settings['DAGSTER_PG_DB']} is not reachable ({'; '.join(errors)})"
    )
    print(f"SKIPPED: {reason}", file=sys.stderr)
    pytest.skip(reason)


@pytest.fixture
def pg_instance(tmp_path, monkeypatch):
    """A DagsterInstance whose run, event-log and schedule storage live in a fresh schema."""
    settings = _connection_settings()
    conn, user = _connect(settings)
    conn.autocommit = True
    schema = f"dagster_test_{uuid.uuid4().hex[:12]}"
    with conn.cursor() as cur:
        cur.execute(f'CREATE SCHEMA "{schema}"')
    instance = None
    try:
        for key, value in {**settings, "DAGSTER_PG_USER": user}.items():
            monkeypatch.setenv(key, value)
        config = dict(yaml.safe_load(PROJECT_YAML.read_text()))
        config.update(documented_postgres_block())
        db = config["storage"]["postgres"]["postgres_db"]
        db["port"] = int(settings["DAGSTER_PG_PORT"])
        db["params"] = {"options": f"-csearch_path={schema}"}  # isolation for the test only
        home = tmp_path / "dagster_home"
        home.mkdir()
        (home / "dagster.yaml").write_text(yaml.safe_dump(config))
        instance = DagsterInstance.from_config(str(home))
        yield instance, conn, schema
    finally:
        if instance is not None:
            instance.dispose()
        with conn.cursor() as cur:
            cur.execute(f'DROP SCHEMA "{schema}" CASCADE')
        conn.close()
