"""The demo's last step: one more day arrives through the landing folder and the platform reacts on
its own. The two sensors of the code location are ticked here, in process, against the demo's
Dagster instance (what the daemon does every 30-60 s under `make dev`), and the runs they request
are executed: `landing_folder_sensor` -> `daily_features_job` for the new day, then
`features_updated_sensor` -> `retrain_job` (training set, model, gate, deployment, online store).
"""

from __future__ import annotations

import shutil
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from dagster import ExecuteInProcessResult, SensorDefinition, SensorResult

    from fraud_cli.demo import DemoContext

# Where the generate step keeps the day after the demo days until this step delivers it.
HELD_BACK_DIR = "incoming"


def _tick(ctx: DemoContext, sensor: SensorDefinition) -> SensorResult:
    from dagster import SensorResult, build_sensor_context

    from fraud_assets.resources import DataLayoutResource

    # No cursor: what the demo's earlier runs already did is read from the instance.
    context = build_sensor_context(
        instance=ctx.instance, resources={"layout": DataLayoutResource()}
    )
    result = sensor(context)
    assert isinstance(result, SensorResult)
    return result


def _execute(ctx: DemoContext, result: SensorResult, sensor_name: str) -> list:
    from fraud_assets.definitions import defs
    from fraud_cli.demo import QUIET_CONSOLE, print_run_summary

    if not result.run_requests:
        reason = result.skip_reason.skip_message if result.skip_reason else "nothing to do"
        print(f"    {sensor_name}: skipped ({reason})")
        return []
    runs: list[ExecuteInProcessResult] = []
    for request in result.run_requests:
        job = defs.resolve_job_def(request.job_name or "daily_features_job")
        print(f"    {sensor_name} requested {job.name} ({request.run_key})")
        run = job.execute_in_process(
            instance=ctx.instance,
            tags={**request.tags, "fraud/source": f"demo:{sensor_name}"},
            run_config=QUIET_CONSOLE,
            raise_on_error=False,
        )
        print_run_summary(run)
        runs.append(run)
    return runs


def _metadata(runs: list, asset: str) -> dict:
    for run in runs:
        for event in run.get_asset_materialization_events():
            if event.asset_key.path == [asset]:
                return {k: v.value for k, v in event.materialization.metadata.items()}
    return {}


def feed_one_more_day(ctx: DemoContext) -> None:
    from fraud_assets.retrain_sensor import features_updated_sensor
    from fraud_assets.sensors import landing_folder_sensor
    from fraud_cli.demo import StepFailed
    from fraud_core.model.artifact import current_version

    held = sorted((ctx.layout.root / HELD_BACK_DIR).glob("orders_*"))
    if not held:
        print(f"    skipped: no held-back day in {ctx.layout.root / HELD_BACK_DIR} (--no-generate)")
        return
    registry = ctx.layout.models
    before = current_version(registry)
    for path in held:  # a copy gets a fresh ctime, as a delivered file has
        shutil.copy(path, ctx.layout.landing / path.name)
        path.unlink()
    print(f"    dropped {', '.join(p.name for p in held)} into {ctx.layout.landing}")

    landing_runs = _execute(ctx, _tick(ctx, landing_folder_sensor), "landing_folder_sensor")
    if not landing_runs or not all(r.success for r in landing_runs):
        raise StepFailed("the landing sensor's run did not compute the new day (see `make dev`)")
    retrain_runs = _execute(ctx, _tick(ctx, features_updated_sensor), "features_updated_sensor")
    if not retrain_runs:
        raise StepFailed("features_updated_sensor requested no run for the new day")

    model = _metadata(retrain_runs, "fraud_model")
    store = _metadata(retrain_runs, "online_store")
    deployed = _metadata(retrain_runs, "deployed_model")
    if not store:
        raise StepFailed("the retrain run did not load the online store (see `make dev`)")
    gate = [
        c
        for run in retrain_runs
        for c in run.get_asset_check_evaluations()
        if c.check_name == "fraud_model_not_worse_than_champion"
    ]
    now = current_version(registry)
    if model:
        print(
            f"    retrained model {model['version']}: validation AP "
            f"{model['average_precision']:.3f} (cutoff after the new day)"
        )
    if gate:
        verdict = "passed" if gate[0].passed else "REFUSED"
        print(f"    promotion gate {verdict}: {gate[0].description}")
    if deployed and now != before:
        print(f"    model deployed: {before} -> {now}")
    else:
        print(f"    model unchanged: {now} keeps serving")
    print(
        f"    online store switched: {store['previous_namespace'] or '-'} -> "
        f"{store['namespace']} (entity state of {store['snapshot_day']})"
    )
    print(
        "    a running `fraud serve` picks up both without a restart (it polls current.json "
        "every $FRAUD_MODEL_POLL_S and reads the active namespace on every order)"
    )
