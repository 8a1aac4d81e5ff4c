"""Markers by folder: every test under tests/e2e is `e2e` (whole-system, slow), so a quick
local run can leave them out with `pytest -m 'not e2e'`; `make test` and CI run everything.

`redis_cluster` starts a 3-master Redis Cluster on loopback ports once per session (for the tests
that run in both Redis configurations), stopped by PID at the end.

`small_demo` runs `fraud demo` once per test session, for the tests that check the demo itself
(tests/e2e/test_demo.py) and the UI pages it fills (tests/browser).

The tests' data start on 2026-01-01, the first daily partition they are written for: pinned here,
before any test imports the code location, so a demo's `data/calendar.json` (`make test` exports
FRAUD_DATA_DIR=./data) cannot move the partitions under them.
"""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import redis

from fraud_core.redis_server import ClusterHandle, start_local_cluster

from .objectstore import moto_server, s3_env

os.environ["FRAUD_START_DATE"] = "2026-01-01"

PROJECT = Path(__file__).resolve().parents[1]
# A small demo whose first model passes the gate: 62 days (training then starts inside the
# features' warm-up, which is cut short on short data), ~50 frauds to validate on.
SMALL_DEMO_ARGS = ["--days", "62", "--orders-per-day", "400", "--seed", "3"]
SMALL_DEMO_TIMEOUT_S = 900


@pytest.fixture(scope="session")
def redis_cluster() -> Iterator[ClusterHandle]:
    with start_local_cluster() as handle:
        yield handle


@pytest.fixture(scope="session")
def s3_endpoint() -> Iterator[str]:
    """A moto S3 server for the session, and the AWS variables that point every client of this
    process (s3fs, universal-pathlib, pyarrow) at it; both undone at the end."""
    with moto_server() as endpoint:
        saved = {name: os.environ.get(name) for name in s3_env(endpoint)}
        os.environ.update(s3_env(endpoint))
        try:
            yield endpoint
        finally:
            for name, value in saved.items():
                if value is None:
                    os.environ.pop(name, None)
                else:
                    os.environ[name] = value


@pytest.fixture
def s3_root(s3_endpoint: str) -> Iterator[str]:
    """`s3://<a new bucket>/data` on the session's moto server; the bucket goes afterwards."""
    import s3fs

    fs = s3fs.S3FileSystem(skip_instance_cache=True)
    bucket = f"fraud-{uuid.uuid4().hex[:12]}"
    fs.mkdir(bucket)
    yield f"s3://{bucket}/data"
    fs.rm(bucket, recursive=True)


@dataclass(frozen=True)
class SmallDemo:
    stdout: str
    stderr: str
    dagster_home: Path
    data_dir: Path


@pytest.fixture(scope="session")
def small_demo(tmp_path_factory: pytest.TempPathFactory) -> SmallDemo:
    """`fraud demo` on a small sample, as `make demo` runs it (the project's dagster.yaml, its
    own code server and daemon, the Redis at $REDIS_URL or 127.0.0.1:6379 under a key prefix of
    its own, removed afterwards), once per session; fails with the demo's output and log."""
    root = tmp_path_factory.mktemp("demo")
    home, data = root / "dagster_home", root / "data"
    home.mkdir()
    (home / "dagster.yaml").write_text((PROJECT / "dagster.yaml").read_text())
    prefix = f"test-demo-{uuid.uuid4().hex[:8]}:"
    env = dict(os.environ, DAGSTER_HOME=str(home), FRAUD_DATA_DIR=str(data))
    env["FRAUD_REDIS_PREFIX"] = prefix
    env.pop("FRAUD_START_DATE")  # the demo records its own first day
    try:
        done = subprocess.run(
            [sys.executable, "-m", "fraud_cli.main", "demo", *SMALL_DEMO_ARGS],
            env=env,
            cwd=root,
            capture_output=True,
            text=True,
            timeout=SMALL_DEMO_TIMEOUT_S,
        )
    finally:
        client = redis.Redis.from_url(os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0"))
        keys = list(client.scan_iter(match=f"{prefix}*", count=1000))
        if keys:
            client.delete(*keys)
    log = home / "demo.log"
    assert done.returncode == 0, (
        f"{done.stdout}\n{done.stderr}\n{log.read_text()[-4000:] if log.exists() else ''}"
    )
    return SmallDemo(done.stdout, done.stderr, home, data)


E2E = Path(__file__).parent / "e2e"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if E2E in Path(item.path).parents:
            item.add_marker(pytest.mark.e2e)
