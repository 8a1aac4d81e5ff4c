"""The code location's sensors, one module each: `landing` turns landing files into daily
feature runs, `retrain` turns new features into a retrained model and a fresh online store.
`keys` holds the asset keys they share."""

from __future__ import annotations

from fraud_assets.sensors.landing import landing_folder_sensor
from fraud_assets.sensors.retrain import features_updated_sensor

__all__ = ["features_updated_sensor", "landing_folder_sensor"]
