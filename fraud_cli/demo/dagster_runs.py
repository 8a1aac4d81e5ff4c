"""The demo's runs are real runs of the code location, as `make dev` launches them.

`DagsterProcesses` starts a code server of `fraud_assets.definitions` (under the location name
that workspace.yaml gives it, so the UI files the runs under the same jobs) and, for the steps
that show the sensors at work, `dagster-daemon`. Runs are launched through the code server, each
in its own run worker process, so they carry the code location's tags: the job pages, the
Overview timeline and the asset pages of `make dev` show them, and the sensors' runs show which
sensor launched them. What a run did is read back from the instance's event log (`RunReport`).

The servers and their run workers write Dagster's own logs (hundreds of lines a run) to one
file, named at the end of the demo; the terminal keeps the demo's step lines.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import socket
import subprocess
import sys
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fraud_cli.demo.context import StepFailed
from fraud_core.net import free_port

if TYPE_CHECKING:
    from dagster import AssetCheckEvaluation, DagsterInstance, DagsterRun

# workspace.yaml loads the module under its own name: the demo's code server uses the same, so
# the runs belong to the location that `make dev` shows.
LOCATION = "fraud_assets.definitions"
STARTUP_TIMEOUT_S = 180  # a code server imports the project: slow on a busy 2-core machine
STOP_TIMEOUT_S = 20
BIN = Path(sys.executable).parent


def _listening(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


@dataclass
class RunReport:
    """A finished run as the demo reports it, read from the instance's event log."""

    run_id: str
    job_name: str
    success: bool
    seconds: float
    materializations: list[tuple[str, str | None, dict[str, Any]]]  # asset, partition, metadata
    checks: list[AssetCheckEvaluation]
    warnings: list[str]
    errors: list[str]
    tags: dict[str, str] = field(default_factory=dict)

    def metadata(self, asset: str) -> dict[str, Any]:
        """The newest materialization's metadata values of `asset` in this run, {} if none."""
        found = [meta for key, _, meta in self.materializations if key == asset]
        return found[-1] if found else {}

    def check(self, name: str) -> AssetCheckEvaluation | None:
        found = [c for c in self.checks if c.check_name == name]
        return found[-1] if found else None

    @classmethod
    def read(cls, instance: DagsterInstance, run: DagsterRun) -> RunReport:
        from dagster import DagsterEventType, DagsterRunStatus

        materializations: list[tuple[str, str | None, dict[str, Any]]] = []
        checks: list[AssetCheckEvaluation] = []
        warnings: list[str] = []
        errors: list[str] = []
        for record in instance.all_logs(run.run_id):
            event = record.dagster_event
            if event is None:  # a message the run's code logged
                if record.level >= logging.WARNING:
                    warnings.append(record.user_message)
                continue
            if event.event_type == DagsterEventType.ASSET_MATERIALIZATION:
                m = event.event_specific_data.materialization
                values = {k: v.value for k, v in m.metadata.items()}
                materializations.append((m.asset_key.to_user_string(), m.partition, values))
            elif event.event_type == DagsterEventType.ASSET_CHECK_EVALUATION:
                checks.append(event.event_specific_data)
            elif event.event_type in (DagsterEventType.STEP_FAILURE, DagsterEventType.RUN_FAILURE):
                error = getattr(event.event_specific_data, "error", None)
                errors.append(error.message.strip() if error else event.message or "failed")
        stats = instance.get_run_stats(run.run_id)
        seconds = (stats.end_time or time.time()) - (stats.start_time or time.time())
        return cls(
            run_id=run.run_id,
            job_name=run.job_name,
            success=run.status == DagsterRunStatus.SUCCESS,
            seconds=seconds,
            materializations=materializations,
            checks=checks,
            warnings=warnings,
            errors=errors,
            tags=dict(run.tags),
        )


def _days(partitions: set[str]) -> str:
    if partitions == {None}:
        return ""
    keys = sorted(p for p in partitions if p)
    return f"{len(keys)} day{'s' if len(keys) != 1 else ''} " + (
        f"{keys[0]}..{keys[-1]}" if len(keys) > 1 else keys[0]
    )


def print_run_summary(report: RunReport, max_warnings: int = 2) -> None:
    """Three to six lines: the run, what it wrote, its checks, its first warnings or errors."""
    from dagster import AssetCheckSeverity

    from fraud_assets.lib.range_checks import day_verdicts

    launched = report.tags.get("dagster/sensor_name")
    by = f", launched by {launched}" if launched else ""
    verdict = "succeeded" if report.success else "FAILED"
    print(
        f"    run {report.run_id[:8]} of {report.job_name}{by}: {verdict} in {report.seconds:.1f} s"
    )
    partitions: dict[str, set] = defaultdict(set)
    rows: Counter[str] = Counter()
    quarantined: Counter[str] = Counter()
    for asset, partition, meta in report.materializations:
        partitions[asset].add(partition)
        rows[asset] += int(meta.get("dagster/row_count", 0) or 0)
        quarantined[asset] += int(meta.get("quarantined_count", 0) or 0)
    parts = []
    for asset in partitions:  # in the order they were materialized
        what = ", ".join(
            x
            for x in (
                _days(partitions[asset]),
                f"{rows[asset]:,} rows" if rows[asset] else "",
                f"{quarantined[asset]:,} quarantined" if quarantined[asset] else "",
            )
            if x
        )
        parts.append(f"{asset} ({what})" if what else asset)
    if parts:
        print(f"    wrote {'; '.join(parts)}")
    passed, warned, failed = Counter(), Counter(), Counter()
    for check in report.checks:
        name = f"{check.asset_key.to_user_string()}.{check.check_name}"
        for verdict in day_verdicts(check).values():  # a check of a range: one per day
            if verdict.passed:
                passed[name] += 1
            elif check.severity == AssetCheckSeverity.WARN:
                warned[name] += 1  # reported, does not stop anything
            else:
                failed[name] += 1
    if report.checks:
        names = len(passed.keys() | warned.keys() | failed.keys())
        total = sum((passed + warned + failed).values())
        line = f"    checks: {sum(passed.values()):,} of {total:,} passed ({names} checks)"
        for label, counts in (("warned", warned), ("FAILED", failed)):
            if counts:
                line += f"; {label}: " + ", ".join(f"{n} x{c}" for n, c in counts.most_common(3))
        print(line)
    messages = report.errors if not report.success else report.warnings
    for message in messages[:max_warnings]:
        first = message.splitlines()[0] if message else ""
        print(f"    {'error' if not report.success else 'warning'}: {first[:150]}")
    if len(messages) > max_warnings:
        print(f"    ... {len(messages) - max_warnings} more in the run's log (UI: Runs)")


class DagsterProcesses:
    """The code server (and the daemon, when started) of the demo, writing to `log_path`."""

    def __init__(self, instance: DagsterInstance, log_path: Path) -> None:
        self.instance = instance
        self.log_path = log_path
        self.port = free_port()
        self.processes: dict[str, subprocess.Popen] = {}
        self._workspace = None
        self._deadline = 0.0

    # -- processes ------------------------------------------------------------------------

    def _start(self, name: str, args: list[str]) -> subprocess.Popen:
        with self.log_path.open("ab") as log:
            log.write(f"\n===== {name}: {' '.join(args)}\n".encode())
            log.flush()
            process = subprocess.Popen(
                [str(BIN / args[0]), *args[1:]],
                env=dict(os.environ),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own group: stopping it stops its run workers too
            )
        self.processes[name] = process
        return process

    def start_code_server(self) -> None:
        """Start it and return at once: it imports the project while the demo generates data;
        the first launch waits until it listens."""
        self._start(
            "code server",
            [
                "dagster",
                *("api", "grpc", "-m", LOCATION, "--location-name", LOCATION),
                *("-h", "127.0.0.1", "-p", str(self.port)),
            ],
        )
        self._deadline = time.monotonic() + STARTUP_TIMEOUT_S

    def _code_server_ready(self) -> None:
        while not _listening(self.port):
            self._alive("code server")
            if time.monotonic() > self._deadline:
                raise StepFailed(f"the code server did not start (see {self.log_path})")
            time.sleep(0.2)

    def start_daemon(self) -> None:
        """`dagster-daemon run` on the demo's code server: it ticks the sensors (ticks and
        cursors are recorded in the instance) and launches the runs they queue."""
        self._code_server_ready()
        workspace = Path(os.environ["DAGSTER_HOME"]) / "demo_workspace.yaml"
        workspace.write_text(
            "# Written by `fraud demo`: its daemon loads the demo's code server.\n"
            "load_from:\n  - grpc_server:\n      host: 127.0.0.1\n"
            f"      port: {self.port}\n      location_name: {LOCATION}\n"
        )
        self._start("daemon", ["dagster-daemon", "run", "-w", str(workspace)])

    def check_alive(self) -> None:
        """StepFailed when a process the demo started has exited."""
        for name in self.processes:
            self._alive(name)

    def _alive(self, name: str) -> None:
        process = self.processes.get(name)
        if process is not None and process.poll() is not None:
            raise StepFailed(
                f"the {name} exited with code {process.returncode} (see {self.log_path})"
            )

    def _stop_process(self, process: subprocess.Popen) -> None:
        """SIGTERM to its process group (the run workers a code server started are in it, even
        when the server itself is gone), SIGKILL after STOP_TIMEOUT_S."""
        for sig, timeout_s in ((signal.SIGTERM, STOP_TIMEOUT_S), (signal.SIGKILL, 5)):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, sig)
            try:
                process.wait(timeout=timeout_s)
                return
            except subprocess.TimeoutExpired:
                continue

    def stop(self, since: float | None = None) -> None:
        """Stop every process the demo started (the daemon first). With `since`, the runs
        created since then that have not finished (the demo stopped early: an error, Ctrl-C) are
        marked failed, so that no run stays STARTED and holds its lane in `make dev`."""
        if self._workspace is not None:
            self._workspace.__exit__(None, None, None)
            self._workspace = None
        for name in reversed(list(self.processes)):
            self._stop_process(self.processes.pop(name))
        if since is not None:
            for run in self.runs_since(since):
                if not run.is_finished:
                    self.instance.report_run_failed(run, "fraud demo stopped before it finished")

    # -- runs -------------------------------------------------------------------------------

    def _request_context(self):
        from dagster._core.workspace.context import WorkspaceProcessContext
        from dagster._core.workspace.load_target import GrpcServerTarget

        if self._workspace is None:
            self._code_server_ready()
            target = GrpcServerTarget(
                host="127.0.0.1", port=self.port, socket=None, location_name=LOCATION
            )
            self._workspace = WorkspaceProcessContext(self.instance, target)
            self._workspace.__enter__()
        return self._workspace.create_request_context()

    def launch(self, job_name: str, tags: dict[str, str]) -> str:
        """Launch a run of the job through the code server, as the UI's Launchpad does (its own
        run worker, the job's tags plus `tags`); returns the run id."""
        # Dagster has no public Python call for "launch a run of a code location" (the GraphQL
        # API needs a webserver): this is what `dagster job launch` does, minus the queue.
        from dagster._cli.job import _create_run

        workspace = self._request_context()
        location = workspace.get_code_location(LOCATION)
        (repository,) = location.get_repositories().values()
        job = repository.get_full_job(job_name)
        run = _create_run(
            instance=self.instance,
            code_location=location,
            remote_repo=repository,
            remote_job=job,
            run_config={},
            tags=tags,
            op_selection=None,
            run_id=None,
        )
        self.instance.launch_run(run.run_id, workspace)
        return run.run_id

    def wait(self, run_id: str, timeout_s: float = 1800) -> RunReport:
        """Wait for the run to finish, with a progress line on a terminal; its report."""
        started = time.monotonic()
        tty = sys.stdout.isatty()
        while True:
            run = self.instance.get_run_by_id(run_id)
            if run is not None and run.is_finished:
                break
            self.check_alive()
            elapsed = time.monotonic() - started
            if elapsed > timeout_s:
                raise StepFailed(f"run {run_id} did not finish in {timeout_s:.0f} s")
            if tty:
                status = run.status.value.lower() if run else "starting"
                print(f"\r    run {run_id[:8]}: {status}, {elapsed:.0f} s ", end="", flush=True)
            time.sleep(0.5)
        if tty:
            print("\r" + " " * 60 + "\r", end="", flush=True)
        return RunReport.read(self.instance, run)

    def report(self, run_id: str) -> RunReport:
        """Wait for the run, print its summary, return its report."""
        report = self.wait(run_id)
        print_run_summary(report)
        return report

    def run(self, job_name: str, tags: dict[str, str]) -> RunReport:
        return self.report(self.launch(job_name, tags))

    def finish_runs(
        self, since: float, reported: set[str], quiet: tuple[str, ...] = ()
    ) -> list[RunReport]:
        """Wait until every run created since `since` (epoch seconds) has finished and every
        running sensor has completed a tick that began after the last of them finished (so no
        sensor is about to request another); the reports of the runs not in `reported`, each
        printed (but those of the jobs in `quiet`, which the caller sums up), oldest first."""
        reports: list[RunReport] = []
        settled_at = time.time()
        while True:
            new = [r for r in self.runs_since(since) if r.run_id not in reported]
            for run in new:
                wait = self.wait if run.job_name in quiet else self.report
                reports.append(wait(run.run_id))
                reported.add(run.run_id)
                settled_at = time.time()
            if not new and self._sensors_ticked_since(settled_at):
                return reports
            self.check_alive()
            time.sleep(0.5)

    def _sensors_ticked_since(self, moment: float) -> bool:
        from dagster._core.scheduler.instigation import InstigatorType, TickStatus

        for state in self.instance.all_instigator_state(instigator_type=InstigatorType.SENSOR):
            if not state.is_running:
                continue
            ticks = self.instance.get_ticks(
                state.instigator_origin_id, state.selector_id, after=moment, limit=1
            )
            if not ticks or ticks[0].status == TickStatus.STARTED:
                return False
        return True

    def stop_daemon(self) -> None:
        if "daemon" in self.processes:
            self._stop_process(self.processes["daemon"])
            del self.processes["daemon"]

    def runs_since(self, since: float) -> list[DagsterRun]:
        """Runs created since `since` (epoch seconds), oldest first. The instance stores
        creation times in whole seconds: a second of margin, runs created just before are few
        and the callers ignore the ones they know."""
        from datetime import UTC, datetime

        from dagster import RunsFilter

        after = datetime.fromtimestamp(int(since) - 1, tz=UTC)
        return list(reversed(self.instance.get_runs(RunsFilter(created_after=after))))

    def runs_launched_by(self, sensor: str, after: float) -> list[DagsterRun]:
        """Runs the sensor requested since `after` (epoch seconds), oldest first."""
        return [r for r in self.runs_since(after) if r.tags.get("dagster/sensor_name") == sensor]
