"""A run whose process dies is failed by the daemon, and nothing waits on it afterwards.

A temporary DAGSTER_HOME holds the project's `dagster.yaml` (with a 1 s monitoring poll and a
1 s dequeue interval, to keep the test short) and a workspace with one code location,
`fraud_assets.definitions`, served by a code server (`dagster api grpc`). `dagster-daemon run`
launches a `daily_features_job` run from the queue through that code server, with the default run
launcher, as in a deployment. While the run is STARTED, its run worker, the code server that
launched it and the daemon are killed with SIGKILL (as by a machine restart or a `kill -9` of
`dagster dev`'s process group), and the code server and the daemon are started again. Nothing is left that
could report the run's end, so without run monitoring it stays STARTED forever and holds the
daily-features lane's only slot in the queue. Here the new daemon fails it once it exceeds its
maximum runtime (a 10 s `dagster/max_runtime` tag instead of the instance's 2 h),
`features_updated_sensor` does not wait on it, a rerun of the same days goes through the queue
and succeeds, and the sensor then asks for a retrain.

(Killing only the run worker is not tested here: the code server that launched it notices and
fails the run within a second, with or without run monitoring.)
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from datetime import date, timedelta
from pathlib import Path

import pytest
import yaml
from dagster import (
    DagsterEventType,
    DagsterInstance,
    DagsterRun,
    DagsterRunStatus,
    SensorResult,
    build_sensor_context,
)
from dagster._core.utils import make_new_run_id

from fraud_assets.jobs import DAILY_FEATURES_LANE, daily_features_job
from fraud_assets.partitions import partition_range_tags
from fraud_assets.sensors.retrain import (
    MIN_INTERVAL_ENV,
    features_updated_sensor,
    plan_retrain,
    runs_in_flight,
)
from fraud_assets.sensors.ticks import SELECTION_EVERY_ENV
from fraud_core.generator import GeneratorConfig, write_landing_files
from fraud_core.net import free_port
from fraud_core.storage import DataLayout

from .conftest import poll

PROJECT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
LOCATION = "fraud_assets.definitions"
START = date(2026, 1, 1)
DATA = GeneratorConfig(
    n_customers=300, n_emails=300, n_ips=300, orders_per_day=200, days=3, start=START, seed=7
)
LAST = START + timedelta(days=DATA.days - 1)
POLL_S = 1
MAX_RUNTIME_S = 10  # of the run that gets killed; other runs keep dagster.yaml's
STARTUP_TIMEOUT_S = 120  # code server, daemon and run workers import the project: slow, 2 cores
HOUR = 3600.0


class Deployment:
    """A code server and a daemon on a temporary instance, each in its own process group."""

    def __init__(self, home: Path, env: dict[str, str]) -> None:
        self.home, self.env = home, env
        self.port = free_port()
        self.processes: dict[str, subprocess.Popen] = {}

    def start(self, name: str, args: list[str]) -> subprocess.Popen:
        with (self.home / f"{name}.log").open("ab") as log:
            process = subprocess.Popen(
                [str(BIN / args[0]), *args[1:]],
                env=self.env,
                cwd=self.home,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.processes[name] = process
        return process

    def start_code_server(self) -> None:
        target = ["-m", LOCATION, "-d", str(PROJECT), "--location-name", LOCATION]
        self.start("code_server", ["dagster", "api", "grpc", *target, "-p", str(self.port)])

        def listening() -> bool:
            with socket.socket() as s:
                return s.connect_ex(("127.0.0.1", self.port)) == 0

        self.wait_for("the code server listens", listening, STARTUP_TIMEOUT_S)

    def start_daemon(self) -> None:
        self.start("daemon", ["dagster-daemon", "run", "-w", "workspace.yaml"])

    def cli(self, name: str, args: list[str]) -> subprocess.Popen:
        return self.start(name, ["dagster", *args, "-w", "workspace.yaml"])

    def kill(self, name: str) -> None:
        """SIGKILL to the process group: the process and whatever it started."""
        process = self.processes.pop(name)
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=10)

    def stop_all(self) -> None:
        for process in self.processes.values():
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
        for process in self.processes.values():
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=5)

    def wait_for(self, what: str, condition: Callable[[], object], timeout_s: float) -> object:
        value = poll(condition, timeout_s, step_s=0.2)
        if value:
            return value
        logs = "\n".join(
            f"--- {p.name}\n{p.read_text()[-3000:]}" for p in sorted(self.home.glob("*.log"))
        )
        raise AssertionError(f"{what}: not within {timeout_s:.0f} s\n{logs}")

    def succeeds(self, process: subprocess.Popen) -> None:
        name = next(k for k, v in self.processes.items() if v is process)
        code = process.wait(timeout=STARTUP_TIMEOUT_S)
        assert code == 0, (self.home / f"{name}.log").read_text()[-3000:]


def _instance_home(root: Path, port: int) -> Path:
    """DAGSTER_HOME with the project's dagster.yaml, polled fast, and a workspace of the code
    server on `port`."""
    config = yaml.safe_load((PROJECT / "dagster.yaml").read_text())
    monitoring = config.get("run_monitoring") or {}
    assert monitoring.get("enabled"), "dagster.yaml: run monitoring is off"
    config["run_monitoring"] = {**monitoring, "poll_interval_seconds": POLL_S}
    config["run_coordinator"]["config"]["dequeue_interval_seconds"] = POLL_S
    home = root / "dagster_home"
    home.mkdir()
    (home / "dagster.yaml").write_text(yaml.safe_dump(config))
    server = {"host": "127.0.0.1", "port": port, "location_name": LOCATION}
    (home / "workspace.yaml").write_text(yaml.safe_dump({"load_from": [{"grpc_server": server}]}))
    return home


@pytest.fixture
def deployment(tmp_path: Path, monkeypatch) -> Iterator[tuple[Deployment, DagsterInstance]]:
    """The deployment (nothing started yet) and its instance, whose storage is created here,
    before any other process opens it (SQLite storage created by two processes at once breaks)."""
    layout = DataLayout(tmp_path / "data")
    write_landing_files(DATA, layout.landing)
    for name in ("DASK_SCHEDULER_ADDRESS", "FRAUD_MAX_QUARANTINE_SHARE", MIN_INTERVAL_ENV):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("FRAUD_DATA_DIR", str(layout.root))
    # the retrain without a model selection first (tests/assets/test_retrain_sensor.py covers it)
    monkeypatch.setenv(SELECTION_EVERY_ENV, "0")
    deployment = Deployment(tmp_path, {})
    home = _instance_home(tmp_path, deployment.port)
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    deployment.home, deployment.env = home, dict(os.environ)
    instance = DagsterInstance.from_config(str(home))
    try:
        yield deployment, instance
    finally:
        deployment.stop_all()
        instance.dispose()


def _run(instance: DagsterInstance, run_id: str) -> DagsterRun | None:
    return instance.get_run_by_id(run_id)


def _worker_pid(instance: DagsterInstance, run_id: str) -> int | None:
    """The run worker's pid, from the engine event of its launch."""
    for record in instance.all_logs(run_id, of_type=DagsterEventType.ENGINE_EVENT):
        event = record.dagster_event
        pid = event.engine_event_data.metadata.get("pid") if event else None
        if pid is not None:
            return int(pid.value)
    return None


def _launch_args(run_id: str, tags: dict[str, str]) -> list[str]:
    args = ["job", "launch", "-j", daily_features_job.name, "--run-id", run_id]
    return [*args, "--tags", json.dumps(tags)]


def test_a_killed_run_is_failed_and_does_not_hold_back_retraining(deployment) -> None:
    platform, instance = deployment
    days = partition_range_tags(START, LAST)
    victim_id, rerun_id = make_new_run_id(), make_new_run_id()

    platform.start_code_server()
    # The sensors are stopped before the daemon starts: the test submits the runs and evaluates
    # the retrain sensor itself.
    stops = [
        platform.cli(f"stop-{name}", ["sensor", "stop", name])
        for name in ("landing_folder_sensor", features_updated_sensor.name)
    ]
    for process in stops:
        platform.succeeds(process)
    platform.start_daemon()
    tags = {**days, "dagster/max_runtime": str(MAX_RUNTIME_S)}
    platform.succeeds(platform.cli("launch-victim", _launch_args(victim_id, tags)))
    platform.wait_for(
        "the daemon launches the run",
        lambda: (
            (run := _run(instance, victim_id)) is not None
            and run.status == DagsterRunStatus.STARTED
            and _worker_pid(instance, victim_id)
        ),
        STARTUP_TIMEOUT_S,
    )
    worker = _worker_pid(instance, victim_id)
    assert os.getpgid(worker) == platform.processes["code_server"].pid  # launched by the server

    # Freeze the worker, so that the run cannot end on its own meanwhile, then kill everything.
    os.kill(worker, signal.SIGSTOP)
    assert _run(instance, victim_id).status == DagsterRunStatus.STARTED
    platform.kill("daemon")
    platform.kill("code_server")  # and the run worker, in its process group
    killed_at = time.monotonic()
    assert _run(instance, victim_id).status == DagsterRunStatus.STARTED  # nothing said otherwise

    platform.start_code_server()
    platform.start_daemon()
    rerun = platform.cli("launch-rerun", _launch_args(rerun_id, days))  # queued behind, same lane
    platform.wait_for(
        "the daemon marks the killed run finished",
        lambda: _run(instance, victim_id).is_finished,
        STARTUP_TIMEOUT_S,
    )
    failed_after_s = time.monotonic() - killed_at
    assert _run(instance, victim_id).status == DagsterRunStatus.FAILURE
    plan = plan_retrain(instance, None, now=time.time(), min_interval_s=HOUR)
    assert victim_id not in (plan.skip or "")
    assert victim_id not in runs_in_flight(instance, DAILY_FEATURES_LANE, time.time())

    platform.succeeds(rerun)
    platform.wait_for(
        "the rerun finishes",
        lambda: (run := _run(instance, rerun_id)) is not None and run.is_finished,
        STARTUP_TIMEOUT_S,
    )
    assert _run(instance, rerun_id).status == DagsterRunStatus.SUCCESS
    print(f"the killed run was failed {failed_after_s:.1f} s after the kill")

    result = features_updated_sensor(build_sensor_context(instance=instance))
    assert isinstance(result, SensorResult)
    assert [r.job_name for r in result.run_requests] == ["retrain_job"], result.skip_reason
