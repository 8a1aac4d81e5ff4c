"""The code location's sensors, one module each: `landing` turns landing files into daily
feature runs, `retrain` turns new features into a retrained model and a fresh online store,
`drift` computes the drift of new features and again against a newly deployed model, `decisions` drains the service's
decision log and brings `scored_orders` up to date, `labels` keeps the label feed and
`model_performance` up to date, `skew` compares served days with their offline features, `policy` replays a submitted policy. `keys` holds the asset keys they share,
`ticks` their tick interval.

The sensors are imported on first use (`from fraud_assets.sensors import landing_folder_sensor`
works), so that `fraud_assets.sensors.ticks` stays light for the CLI."""

from __future__ import annotations

import importlib
from typing import Any

_WHERE = {
    "landing_folder_sensor": "fraud_assets.sensors.landing",
    "features_updated_sensor": "fraud_assets.sensors.retrain",
    "feature_drift_sensor": "fraud_assets.sensors.drift",
    "decision_log_sensor": "fraud_assets.sensors.decisions",
    "label_feed_sensor": "fraud_assets.sensors.labels",
    "serving_skew_sensor": "fraud_assets.sensors.skew",
    "policy_candidate_sensor": "fraud_assets.sensors.policy",
}

__all__ = sorted(_WHERE)


def __getattr__(name: str) -> Any:
    if name in _WHERE:
        return getattr(importlib.import_module(_WHERE[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
