"""The demo's last step: one more day arrives through the landing folder and the platform reacts on
its own. The demo starts `dagster-daemon` on its code server, as `make dev` runs it: the daemon
ticks `landing_folder_sensor`, which launches `daily_features_job` for the new day, then
`features_updated_sensor`, which launches `retrain_job` (training set, model, gate, deployment,
online store). The ticks, their cursors and the runs are recorded in the instance.
"""

from __future__ import annotations

import shutil
import time
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from fraud_cli.demo.context import DemoContext
    from fraud_cli.demo.dagster_runs import RunReport

LANDING_SENSOR = "landing_folder_sensor"
RETRAIN_SENSOR = "features_updated_sensor"
SENSOR_TIMEOUT_S = 300  # the daemon's start-up, a tick interval, the run
TICK_S = 3  # the sensors' tick interval in the demo ($FRAUD_SENSOR_TICK_S of its code server)


def _sensor_runs(ctx: DemoContext, sensor: str, since: float) -> list[RunReport]:
    """Wait until the sensor has launched a run since `since` and every run it launched has
    finished; their reports, each printed."""
    from fraud_cli.demo.context import StepFailed

    deadline = time.monotonic() + SENSOR_TIMEOUT_S
    while not (runs := ctx.dagster.runs_launched_by(sensor, since)):
        if time.monotonic() > deadline:
            raise StepFailed(f"{sensor} launched no run in {SENSOR_TIMEOUT_S} s (UI: Automation)")
        ctx.dagster.check_alive()
        time.sleep(0.5)
    return [ctx.dagster.report(run.run_id) for run in runs]


def feed_one_more_day(ctx: DemoContext) -> None:
    from fraud_assets.assets.deployed_model import CANDIDATE_NOT_WORSE
    from fraud_cli.demo.context import StepFailed
    from fraud_cli.demo.loop import LOOP_JOBS, report_loop, serve_the_coming_day
    from fraud_core.model.artifact import current_version

    held = sorted(ctx.layout.held_back.glob("orders_*"))
    if not held:
        print(f"    skipped: no held-back day in {ctx.layout.held_back} (--no-generate)")
        return
    registry = ctx.layout.models
    before = current_version(registry)
    loop = serve_the_coming_day(ctx)
    since = time.time()
    for path in held:  # a copy gets a fresh ctime, as a delivered file has
        shutil.copy(path, ctx.layout.landing / path.name)
        path.unlink()
    ctx.dagster.start_daemon()
    print(
        f"    dropped {', '.join(p.name for p in held)}; dagster-daemon started "
        f"(sensors tick every {TICK_S} s here)"
    )

    landing = _sensor_runs(ctx, LANDING_SENSOR, since)
    if not all(r.success for r in landing):
        raise StepFailed("the landing sensor's run did not compute the new day (see `make dev`)")
    retrain = _sensor_runs(ctx, RETRAIN_SENSOR, since)
    # Whatever else the sensors request meanwhile (drift against a newly deployed model)
    # finishes before the daemon and the code server stop.
    reported = {r.run_id for r in [*landing, *retrain]}
    others = ctx.dagster.finish_runs(since, reported, quiet=LOOP_JOBS)
    if loop is not None:
        report_loop(ctx, loop, since)
    ctx.dagster.stop_daemon()
    if not all(r.success for r in [*retrain, *others]):
        raise StepFailed("a run the sensors requested failed (see `make dev`, Runs)")
    model, store = ({}, {})
    gate = None
    for report in retrain:
        model = report.metadata("fraud_model") or model
        store = report.metadata("online_store") or store
        gate = report.check(CANDIDATE_NOT_WORSE) or gate
    if not store:
        raise StepFailed("the retrain run did not load the online store (see `make dev`)")
    now = current_version(registry)
    if model:
        print(
            f"    retrained model {model['version']}: validation AP "
            f"{model['average_precision']:.3f} (cutoff after the new day)"
        )
    if gate is not None:
        print(f"    promotion gate {'passed' if gate.passed else 'REFUSED'}: {gate.description}")
    if now != before:
        change = f"model deployed: {before} -> {now}"
    else:
        change = f"model unchanged: {now} keeps serving"
    print(
        f"    {change}; online store {store['previous_namespace'] or '-'} -> "
        f"{store['namespace']} (entity state of {store['snapshot_day']})"
    )
