"""`fraud demo` on a small sample, as `make demo` runs it: a code server and a daemon of its own,
real runs of the code location in a persistent instance, the service over HTTP at the end.

Checks the demo's budget (README, Development: at most 60 lines of output), that every step line
says how long it took, that it ends with the service scoring orders, and that its runs are real
runs of the code location: the job pages of the UI find them by the repository tag, and the
sensors' runs name the sensor that launched them.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
import redis
from dagster import DagsterInstance, DagsterRunStatus, RunsFilter

from fraud_core.calendar import START_ENV, first_day
from fraud_core.storage import DataLayout

MAX_LINES = 60
TIMEOUT_S = 900
# The smallest demo whose first model passes the gate: 62 days (37 of features' warm-up before
# training starts is cut short on short data), enough orders for ~30 validation frauds.
ARGS = ["--days", "62", "--orders-per-day", "400", "--seed", "3"]
LOCATION_TAG = "__repository__@fraud_assets.definitions"
SENSORS = ("landing_folder_sensor", "features_updated_sensor")


@pytest.fixture(scope="module")
def demo(tmp_path_factory) -> tuple[subprocess.CompletedProcess, Path, Path]:
    root = tmp_path_factory.mktemp("demo")
    home, data = root / "dagster_home", root / "data"
    home.mkdir()
    project = Path(__file__).resolve().parents[2]
    (home / "dagster.yaml").write_text((project / "dagster.yaml").read_text())
    prefix = f"test-demo-{uuid.uuid4().hex[:8]}:"
    env = dict(os.environ, DAGSTER_HOME=str(home), FRAUD_DATA_DIR=str(data))
    env["FRAUD_REDIS_PREFIX"] = prefix
    env.pop(START_ENV, None)  # the demo records its own first day
    try:
        done = subprocess.run(
            [sys.executable, "-m", "fraud_cli.main", "demo", *ARGS],
            env=env,
            cwd=root,
            capture_output=True,
            text=True,
            timeout=TIMEOUT_S,
        )
    finally:
        client = redis.Redis.from_url(os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0"))
        keys = list(client.scan_iter(match=f"{prefix}*", count=1000))
        if keys:
            client.delete(*keys)
    assert done.returncode == 0, (
        f"{done.stdout}\n{done.stderr}\n{(home / 'demo.log').read_text()[-4000:]}"
    )
    return done, home, data


def test_the_demo_keeps_its_budget_and_ends_scoring_orders(demo) -> None:
    done, home, _ = demo
    lines = done.stdout.splitlines()
    assert len(lines) <= MAX_LINES, done.stdout
    steps = [line for line in lines if re.match(r"\[\d+/\d+\] ", line)]
    assert len(steps) == 7
    assert len(re.findall(r"^    done in \d+\.\d s$", done.stdout, re.M)) == len(steps)
    last_step = done.stdout.split(steps[-1])[1]
    assert "scoring service" in steps[-1]
    decisions = re.findall(r"-> score (\d\.\d{3}) (APPROVE|REVIEW|DECLINE)", last_step)
    assert len(decisions) == 3, last_step
    assert decisions[-1][1] != "APPROVE"  # the account takeover is not waved through
    assert str(home / "demo.log") in lines[-1]
    assert "Traceback" not in done.stdout + done.stderr


def test_the_demo_runs_are_runs_of_the_code_location(demo, monkeypatch) -> None:
    _, home, data = demo
    instance = DagsterInstance.from_config(str(home))
    try:
        runs = instance.get_runs()
        assert runs and all(r.status == DagsterRunStatus.SUCCESS for r in runs)
        # What a job page of the UI asks for: the job's runs in this repository and location.
        for job in ("ingest_orders_job", "entity_features_job", "train_model_job"):
            found = instance.get_runs(
                RunsFilter(job_name=job, tags={".dagster/repository": LOCATION_TAG})
            )
            assert len(found) == 1, job
        by_sensor = {r.tags.get("dagster/sensor_name") for r in runs} - {None}
        assert set(SENSORS) <= by_sensor  # and model_deployed_sensor's drift runs
        # The daemon ticked the sensors: their ticks and the runs they requested are recorded.
        states = {s.instigator_name: s for s in instance.all_instigator_state()}
        for sensor in SENSORS:
            ticks = instance.get_ticks(
                states[sensor].instigator_origin_id, states[sensor].selector_id
            )
            assert any(t.run_ids for t in ticks), sensor
    finally:
        instance.dispose()
    # The daily partitions start on the demo's first day: nothing before the data.
    monkeypatch.delenv(START_ENV)
    landing_days = sorted(p.name[7:17] for p in DataLayout(data).landing.glob("orders_*"))
    assert first_day(DataLayout(data)).isoformat() == landing_days[0]
