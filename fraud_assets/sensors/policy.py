"""`policy_candidate_sensor`: a submitted policy (the registry's candidate pointer moved) is
replayed next to the active one, and activated when its guardrails hold (`policy_job`).

Cursor: the candidate version and the time it was submitted, so submitting the same text again
(a new `since`) replays it again, with the newer traffic.
"""

from __future__ import annotations

import json

from dagster import DefaultSensorStatus, RunRequest, SensorEvaluationContext, SkipReason, sensor

from fraud_assets.assets.policy import LATEST_REPLAY
from fraud_assets.jobs import policy_job
from fraud_assets.sensors.ticks import tick_interval_s
from fraud_core.policy import PolicyError
from fraud_core.policy.registry import CANDIDATE, PolicyRegistry
from fraud_core.storage import DataLayout, as_path


def _judged(layout: DataLayout) -> str | None:
    """The submission the latest replay judged (run by this sensor or by hand)."""
    try:
        report = json.loads((as_path(layout.policy_replays) / LATEST_REPLAY).read_text())
        return f"{report['candidate']['version']}@{report['candidate_since']}"
    except (OSError, ValueError, KeyError, TypeError):
        return None


@sensor(
    job=policy_job,
    minimum_interval_seconds=tick_interval_s(30),
    default_status=DefaultSensorStatus.RUNNING,
    description="Replays a newly submitted candidate policy (fraud policy submit, POST "
    "/v1/policy) next to the active one; policy_job activates it when its guardrails hold.",
)
def policy_candidate_sensor(context: SensorEvaluationContext):
    layout = DataLayout.from_env()
    try:
        pointer = PolicyRegistry(layout).pointer(CANDIDATE)
    except PolicyError as err:
        return SkipReason(f"the candidate pointer is unreadable: {err}")
    if pointer is None:
        return SkipReason("no candidate policy")
    seen = f"{pointer.version}@{pointer.since}"
    if context.cursor == seen or _judged(layout) == seen:
        return SkipReason(f"{pointer.version} was replayed already")
    context.update_cursor(seen)
    return RunRequest(run_key=seen, tags={"fraud/policy": pointer.version})
