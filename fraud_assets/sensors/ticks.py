"""The sensors' timing settings, in a module light enough for the CLI to import.

How often the daemon evaluates the sensors: each sensor's own interval, or
`FRAUD_SENSOR_TICK_S` for all of them (read when the code location loads). `fraud demo` sets it
to a few seconds so its last step does not wait a minute for a tick; a deployment may lower it
to react sooner (every tick reads the landing folder and a few event-log records)."""

from __future__ import annotations

from fraud_core.env import env_number

TICK_ENV = "FRAUD_SENSOR_TICK_S"
# How often features_updated_sensor may retrain at most (read on every tick; `sensors.retrain`).
MIN_INTERVAL_ENV = "FRAUD_RETRAIN_MIN_INTERVAL_S"
# How old the latest model selection may be before a retrain selects again (days; 0: never).
SELECTION_EVERY_ENV = "FRAUD_SELECTION_EVERY_DAYS"
DEFAULT_SELECTION_EVERY_DAYS = 7.0


def tick_interval_s(default: int) -> int:
    """The sensor's minimum interval between ticks: $FRAUD_SENSOR_TICK_S, else `default`."""
    return env_number(TICK_ENV, default, int, low=1)
