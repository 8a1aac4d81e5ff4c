"""`policy_candidate_sensor`: a submitted policy requests one `policy_job` run; the same submission
is not replayed twice (by its cursor, or because a replay already judged it), a new submission of
the same text is."""

from __future__ import annotations

import json

from dagster import RunRequest, SkipReason, build_sensor_context

from fraud_assets.assets.policy import LATEST_REPLAY
from fraud_assets.sensors.policy import policy_candidate_sensor
from fraud_core.contract import builtin_contract
from fraud_core.policy import PolicyFields, load_policy
from fraud_core.policy.registry import CANDIDATE, PolicyRegistry
from fraud_core.storage import DataLayout

TEXT = "name: s\nrules:\n  - name: big\n    when: amount > 900\n    action: review\n"


def _tick(cursor: str | None = None):
    context = build_sensor_context(cursor=cursor)
    return policy_candidate_sensor(context), context.cursor


def test_a_submitted_policy_is_replayed_once(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("FRAUD_DATA_DIR", str(tmp_path))
    layout = DataLayout(tmp_path)
    result, _ = _tick()
    assert isinstance(result, SkipReason) and "no candidate" in result.skip_message
    registry = PolicyRegistry(layout)
    policy = load_policy(TEXT, PolicyFields.of(builtin_contract()))
    registry.save(policy, "cli:t", "first")
    result, cursor = _tick()
    assert isinstance(result, RunRequest) and result.tags["fraud/policy"] == policy.version
    result, _ = _tick(cursor)
    assert isinstance(result, SkipReason)
    # a replay run by hand judged this submission already: not again
    since = registry.pointer(CANDIDATE).since
    layout.policy_replays.mkdir(parents=True)
    (layout.policy_replays / LATEST_REPLAY).write_text(
        json.dumps({"candidate": {"version": policy.version}, "candidate_since": since})
    )
    result, _ = _tick(None)
    assert isinstance(result, SkipReason)
    # submitted again later: replayed again (on newer traffic)
    registry.point(CANDIDATE, policy.version, "cli:t", "again", action="policy.submit")
    if registry.pointer(CANDIDATE).since == since:  # the same second: make it differ
        pointer = json.loads(registry.pointer_path(CANDIDATE).read_text())
        pointer["since"] = "2099-01-01T00:00:00+00:00"
        registry.pointer_path(CANDIDATE).write_text(json.dumps(pointer))
    result, _ = _tick(cursor)
    assert isinstance(result, RunRequest)
