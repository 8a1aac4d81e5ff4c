"""`fraud demo` on a small sample, as `make demo` runs it: a code server and a daemon of its own,
real runs of the code location in a persistent instance, the service over HTTP at the end.

Checks the demo's budget (README, Development: at most 60 lines of output), that every step line
says how long it took, that it ends with the service scoring orders, and that its runs are real
runs of the code location: the job pages of the UI find them by the repository tag, and the
sensors' runs name the sensor that launched them.
"""

from __future__ import annotations

import re

from dagster import AssetCheckKey, AssetKey, DagsterInstance, DagsterRunStatus, RunsFilter

from fraud_assets.assets.policy import POLICY_WITHIN_GUARDRAILS
from fraud_cli.demo import DEFAULT_DAYS
from fraud_cli.demo.model import days_for_a_full_window
from fraud_core.calendar import START_ENV, first_day
from fraud_core.storage import DataLayout

MAX_LINES = 60
LOCATION_TAG = "__repository__@fraud_assets.definitions"
SENSORS = ("landing_folder_sensor", "features_updated_sensor")


def test_the_demo_keeps_its_budget_and_ends_scoring_orders(small_demo) -> None:
    stdout, home = small_demo.stdout, small_demo.dagster_home
    lines = stdout.splitlines()
    assert len(lines) <= MAX_LINES, stdout
    steps = [line for line in lines if re.match(r"\[\d+/\d+\] ", line)]
    assert len(steps) == 5
    assert len(re.findall(r"^    done in \d+\.\d s$", stdout, re.M)) == len(steps)
    last_step = stdout.split(steps[-1])[1]
    assert "scoring service" in steps[-1]
    decisions = re.findall(r"-> score (\d\.\d{3}) (APPROVE|REVIEW|DECLINE)", last_step)
    assert len(decisions) == 3, last_step
    assert decisions[-1][1] != "APPROVE"  # the account takeover is not waved through
    # the fraud team's controls (issue 17): a list entry and a rule change decisions, a greedy
    # policy is refused by its replay's guardrails
    assert re.search(
        r"block list \+ customer_id \S+: their next order -> DECLINE \(by block_listed\)", last_step
    ), last_step
    assert re.search(
        r"rule big_first_order\): a first order of [\d,.]+ APPROVE \(by score\) -> REVIEW \(by big_first_order\)",
        last_step,
    ), last_step
    assert re.search(r"replayed by policy_job: REFUSED: decline rate \+", last_step), last_step
    # the review console (issue 18): the rule's first orders wait for an analyst, with the key
    waiting = re.search(
        r"review console: (\d+) orders waiting for review\. Open it with "
        r"FRAUD_API_KEYS=analyst:you:(\S+) make serve\n\s+then http://127\.0\.0\.1:8000/console "
        r"and sign in with the key (\S+)",
        last_step,
    )
    assert waiting and int(waiting.group(1)) >= 4, last_step
    assert waiting.group(2) == waiting.group(3)
    assert str(home / "demo.log") in lines[-1]
    assert "Traceback" not in stdout + small_demo.stderr
    # the feedback loop (issue 16): the day the service scored before its file landed is in
    # scored_orders whole, its served features match the offline ones, the analyst's labels count
    scored = re.search(r"the service scored the ([\d,]+) orders of (\S+) as they came", stdout)
    loop = re.search(
        r"loop \(\d+ runs\): ([\d,]+) scored orders of (\S+); serving skew 0\.0% of ([\d,]+) "
        r"compared; (\d+) frauds known",
        stdout,
    )
    assert scored and loop, stdout
    assert loop.group(2) == scored.group(2) and int(loop.group(4)) > 0
    assert loop.group(1) == loop.group(3)  # every served order compared


def test_the_default_demo_trains_after_the_features_warm_up() -> None:
    assert days_for_a_full_window() <= DEFAULT_DAYS


def test_the_demo_runs_are_runs_of_the_code_location(small_demo, monkeypatch) -> None:
    home, data = small_demo.dagster_home, small_demo.data_dir
    instance = DagsterInstance.from_config(str(home))
    try:
        runs = instance.get_runs()
        # every run succeeds but the demo's greedy policy's replay: refused by its blocking check
        (refused,) = [r for r in runs if r.job_name == "policy_job"]
        assert refused.status == DagsterRunStatus.FAILURE
        (check,) = instance.event_log_storage.get_latest_asset_check_execution_by_key(
            [AssetCheckKey(AssetKey("policy_replay"), POLICY_WITHIN_GUARDRAILS)]
        ).values()
        assert check.run_id == refused.run_id
        runs = [r for r in runs if r.job_name != "policy_job"]
        assert runs and all(r.status == DagsterRunStatus.SUCCESS for r in runs)
        # What a job page of the UI asks for: the job's runs in this repository and location.
        for job, count in (("daily_features_job", 2), ("retrain_job", 2)):  # demo's, sensor's
            found = instance.get_runs(
                RunsFilter(job_name=job, tags={".dagster/repository": LOCATION_TAG})
            )
            assert len(found) == count, job
        by_sensor = {r.tags.get("dagster/sensor_name") for r in runs} - {None}
        assert set(SENSORS) <= by_sensor  # and feature_drift_sensor's drift runs
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
