"""A year of orders from landing files to the online store, as a user runs it, at one or more
volumes side by side (issue 14): on a persistent Dagster instance (SQLite) with a code server,
each job launched as the demo and the Launchpad launch it (its own run worker and local Dask
cluster, threads unless FRAUD_DASK_PROCESSES=1): `daily_features_job` over the year and
`retrain_job` (landing files to the online store), then `feature_drift_job` over the year
against the new model (what `feature_drift_sensor` requests once the store has the features),
then more days delivered to the landing folder one by one, each ingested by the landing sensor
under the daemon (the retrain sensor waits a day between retrains, as a team would set it: the
days measure the daily run alone).

For each volume and run: wall time from run start to end, each step's time (from the event
log) and the checks' share, and peak RSS summed over the run worker and its Dask workers
(every process under the code server, sampled every 0.25 s).

    .venv/bin/python bench/scale.py --orders-per-day 3300 --orders-per-day 33000 [--days 365]
        [--extra-days 2] [--work DIR] [--keep]

Stays out of `make test`: the 12M-order volume takes tens of minutes on 2 cores.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import threading
import time
from collections import defaultdict
from datetime import date, timedelta
from pathlib import Path

import psutil
import pyarrow.parquet as pq

START = date(2025, 1, 1)  # a year that is over


class TreeRss:
    """Peak of the summed RSS of every process under `root` (not `root` itself), sampled."""

    def __init__(self, root: int, every_s: float = 0.25) -> None:
        self.root = psutil.Process(root)
        self.every_s = every_s
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        while not self._stop.is_set():
            total = 0
            try:
                children = self.root.children(recursive=True)
            except psutil.Error:
                children = []
            for child in children:
                try:
                    total += child.memory_info().rss
                except psutil.Error:
                    continue
            self.peak = max(self.peak, total)
            self._stop.wait(self.every_s)

    def __enter__(self) -> TreeRss:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def asset_steps() -> set[str]:
    """Step keys of the code location's assets: every other step is a check's."""
    from fraud_assets.definitions import defs

    return {k.to_python_identifier() for k in defs.resolve_asset_graph().get_all_asset_keys()}


def checks_share(steps: dict[str, float]) -> float:
    assets = asset_steps()
    return round(sum(s for k, s in steps.items() if k not in assets), 1)


def step_times(instance, run_id: str) -> dict[str, float]:
    """Seconds per step of a run, from its STEP_START and STEP_SUCCESS/FAILURE events."""
    from dagster import DagsterEventType

    started: dict[str, float] = {}
    took: dict[str, float] = {}
    for record in instance.all_logs(run_id):
        event = record.dagster_event
        if event is None or event.step_key is None:
            continue
        if event.event_type == DagsterEventType.STEP_START:
            started[event.step_key] = record.timestamp
        elif event.event_type in (DagsterEventType.STEP_SUCCESS, DagsterEventType.STEP_FAILURE):
            took[event.step_key] = record.timestamp - started.get(event.step_key, record.timestamp)
    return took


def run_volume(work: Path, orders_per_day: int, days: int, extra_days: int = 2) -> dict:
    """Everything for one volume in `work`: generate, the year's range run, retrain, then
    `extra_days` more days by the landing sensor, one after the other (the first day after a
    new model bins its training window for the drift; later days read those bins). Returns
    the figures."""
    from fraud_core.calendar import START_ENV
    from fraud_core.generator import GeneratorConfig, write_landing_files
    from fraud_core.redis_server import start_local_redis
    from fraud_core.storage import DataLayout

    home, data = work / "dagster", DataLayout(work / "data")
    home.mkdir(parents=True, exist_ok=True)
    shutil.copy(Path(__file__).parents[1] / "dagster.yaml", home / "dagster.yaml")
    os.environ.update(
        DAGSTER_HOME=str(home),
        FRAUD_DATA_DIR=str(data.root),
        **{START_ENV: START.isoformat()},
        FRAUD_SENSOR_TICK_S="3",
        FRAUD_RETRAIN_MIN_INTERVAL_S="86400",
    )
    figures: dict = {"orders_per_day": orders_per_day, "days": days}
    last = START + timedelta(days=days - 1)
    extras = [last + timedelta(days=i + 1) for i in range(extra_days)]
    held = work / "held"
    if not data.landing.exists():
        t = time.perf_counter()
        config = GeneratorConfig(orders_per_day=orders_per_day, days=days + extra_days, start=START)
        write_landing_files(config, data.landing)
        for extra in extras:
            (held / extra.isoformat()).mkdir(parents=True, exist_ok=True)
            for path in data.landing.glob(f"orders_{extra.isoformat()}*"):
                path.replace(held / extra.isoformat() / path.name)
        figures["generate_s"] = time.perf_counter() - t
    figures["orders"] = sum(pq.read_metadata(p).num_rows for p in data.landing.glob("*.parquet"))

    from dagster import DagsterInstance

    from fraud_assets.partitions import partition_range_tags
    from fraud_cli.demo.dagster_runs import DagsterProcesses

    redis = start_local_redis()
    os.environ["REDIS_URL"] = redis.url
    instance = DagsterInstance.get()
    dagster = DagsterProcesses(instance, work / "dagster.log")
    try:
        dagster.start_code_server()
        server = dagster.processes["code server"].pid
        runs = {}
        year = partition_range_tags(START, last)
        # the path to serving, then the drift of the year against the model it trained, as
        # feature_drift_sensor requests it once the store has the features
        for job, tags in (
            ("daily_features_job", year),
            ("retrain_job", {}),
            ("feature_drift_job", year),
        ):
            with TreeRss(server) as rss:
                report = dagster.wait(dagster.launch(job, tags), timeout_s=4 * 3600)
            steps = step_times(instance, report.run_id)
            runs[job] = {
                "success": report.success,
                "seconds": round(report.seconds, 1),
                "checks_s": checks_share(steps),
                "peak_rss_gb": round(rss.peak / 2**30, 2),
                "steps": {k: round(v, 1) for k, v in steps.items()},
            }
            print(f"  {job}: {json.dumps(runs[job])}", flush=True)
            if not report.success:
                print("    " + "\n    ".join(report.errors[:3]))
                break
        if "feature_drift_job" in runs:
            to_store = runs["daily_features_job"]["seconds"] + runs["retrain_job"]["seconds"]
            figures["landing_to_store_s"] = round(to_store, 1)
            figures["landing_to_drift_s"] = round(
                to_store + runs["feature_drift_job"]["seconds"], 1
            )
            print(
                f"  landing files to online store {to_store:.1f} s; "
                f"to every day's drift {figures['landing_to_drift_s']:.1f} s",
                flush=True,
            )
        if all(r["success"] for r in runs.values()) and held.exists():
            dagster.start_daemon()
            for i, extra in enumerate(extras, start=1):
                name = f"landing_sensor_day_{i}"
                runs[name] = one_more_day(dagster, instance, data, held / extra.isoformat(), server)
                print(f"  day {extra} by the sensor: {json.dumps(runs[name])}", flush=True)
        figures["runs"] = runs
    finally:
        dagster.stop()
        redis.stop()
    return figures


def one_more_day(dagster, instance, data, held: Path, server: int) -> dict:
    """The held-back day delivered to the landing folder with the daemon running: the
    landing sensor's daily_features_job, from run start to success, and its split."""
    from dagster import DagsterRunStatus, RunsFilter

    busy = RunsFilter(
        statuses=[DagsterRunStatus.QUEUED, DagsterRunStatus.STARTING, DagsterRunStatus.STARTED]
    )
    quiet_since = time.monotonic()
    while time.monotonic() - quiet_since < 15:  # the sensors answer the last run within a tick
        if instance.get_runs(busy):
            quiet_since = time.monotonic()
        time.sleep(1)
    since = time.time()
    for path in held.iterdir():
        shutil.copy(path, data.landing / path.name)
    with TreeRss(server) as rss:
        while True:
            runs = dagster.runs_launched_by("landing_folder_sensor", since)
            if runs and runs[0].is_finished:
                break
            dagster.check_alive()
            time.sleep(0.5)
    run = runs[0]
    report = dagster.wait(run.run_id)
    steps = step_times(instance, run.run_id)
    stats = instance.get_run_stats(run.run_id)
    work = sum(steps.values())
    overlapping = []  # runs the sensors launched meanwhile (a drift backfill for a new model)
    for other in instance.get_runs():
        other_stats = instance.get_run_stats(other.run_id)
        if (
            other.run_id != run.run_id
            and (other_stats.start_time or 0) < (stats.end_time or 0)
            and (other_stats.end_time or time.time()) > (stats.start_time or 0)
        ):
            overlapping.append(other.job_name)
    return {
        "success": report.success,
        "seconds": round(report.seconds, 1),
        "steps_s": round(work, 1),
        "dagster_overhead_s": round(report.seconds - work, 1),
        "launch_to_start_s": round((stats.start_time or 0) - (stats.launch_time or 0), 1),
        "checks_s": checks_share(steps),
        "peak_rss_gb": round(rss.peak / 2**30, 2),
        "steps": {k: round(v, 1) for k, v in steps.items()},
        "overlapping_runs": overlapping,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--orders-per-day", type=int, action="append", required=True)
    parser.add_argument("--days", type=int, default=365)
    parser.add_argument("--work", type=Path, default=None, help="folder (default: a temp one)")
    parser.add_argument("--keep", action="store_true", help="keep the work folder")
    parser.add_argument(
        "--extra-days", type=int, default=2, help="days delivered one by one after the year"
    )
    args = parser.parse_args()
    root = args.work or Path(tempfile.mkdtemp(prefix="fraud-scale-"))
    results = []
    try:
        for per_day in args.orders_per_day:
            print(f"{per_day:,} orders a day x {args.days} days", flush=True)
            results.append(run_volume(root / f"v{per_day}", per_day, args.days, args.extra_days))
    finally:
        if not args.keep and args.work is None:
            shutil.rmtree(root, ignore_errors=True)
    print(json.dumps(results, indent=1))
    by = defaultdict(dict)
    for r in results:
        for job, figures in r.get("runs", {}).items():
            by[job][r["orders"]] = figures["seconds"]
    for job, times in by.items():
        print(job, "  ".join(f"{n:,} orders: {s:.0f} s" for n, s in times.items()))
    sys.exit(0 if all(all(x["success"] for x in r["runs"].values()) for r in results) else 1)


if __name__ == "__main__":
    main()
