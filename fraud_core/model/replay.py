"""Features for a whole order history in memory, with the production feature code: validated
orders day by day through `offline.advance`, carrying the entity state across chunks of days, so
the rows are the same as the `entity_features` files hold (ids and labels first, then the spec's
features). The backtest command, the training benchmark and the tests use it when there is no
Dagster run to write the files.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd

from fraud_core.features.offline import advance, canonical_order
from fraud_core.features.pipeline import day_end_s, label_columns
from fraud_core.features.spec import DEFAULT_SPEC, FeatureSpec
from fraud_core.storage import as_path
from fraud_core.validation import landing_files_for_day, validate_landing_day

# Advancing the state costs about as much as a day of orders, so a few weeks per call is
# several times faster than day by day, and the result is the same.
DEFAULT_CHUNK_DAYS = 30


def _flush(
    states: dict[str, pd.DataFrame | None],
    buffer: list[tuple[date, pd.DataFrame]],
    spec: FeatureSpec,
    dtype: type,
) -> Iterator[tuple[date, pd.DataFrame]]:
    orders = pd.concat([canonical_order(o) for _, o in buffer], ignore_index=True)
    features, new_states = advance(states, orders, day_end_s(buffer[-1][0]), spec)
    states.clear()
    states.update(new_states)
    names = spec.feature_names
    block = features[names].to_numpy(dtype=dtype)
    ident = orders[[c for c in label_columns(spec) if c in orders.columns]]
    start = 0
    for day, day_orders in buffer:
        stop = start + len(day_orders)
        frame = ident.iloc[start:stop].reset_index(drop=True)
        frame = pd.concat([frame, pd.DataFrame(block[start:stop], columns=names)], axis=1)
        yield day, frame
        start = stop


def feature_days(
    days: Iterable[tuple[date, pd.DataFrame]],
    spec: FeatureSpec = DEFAULT_SPEC,
    chunk_days: int = DEFAULT_CHUNK_DAYS,
    dtype: type = np.float32,
) -> Iterator[tuple[date, pd.DataFrame]]:
    """(day, validated orders) in day order -> (day, feature rows) in day order.

    Days must be consecutive history from the first day the features should know about; a day
    with no orders yields an empty frame. Features are stored as `dtype` (float32 halves the
    memory of a year of features; XGBoost works in float32 anyway)."""
    states: dict[str, pd.DataFrame | None] = {}
    buffer: list[tuple[date, pd.DataFrame]] = []
    for day, orders in days:
        buffer.append((day, orders))
        if len(buffer) >= chunk_days:
            yield from _flush(states, buffer, spec, dtype)
            buffer = []
    if buffer:
        yield from _flush(states, buffer, spec, dtype)


def landing_days(landing_dir: Path) -> list[date]:
    """Days that have at least one landing file, oldest first."""
    from fraud_core.validation import day_of_landing_file

    landing_dir = as_path(landing_dir)
    if not landing_dir.is_dir():
        return []
    days = {day_of_landing_file(p) for p in landing_dir.iterdir() if not p.name.startswith(".")}
    return sorted(d for d in days if d is not None and landing_files_for_day(landing_dir, d))


def validated_days(
    landing_dir: Path, first: date, last: date, stats: dict[str, int] | None = None
) -> Iterator[tuple[date, pd.DataFrame]]:
    """Each day first..last validated as `raw_orders` does; quarantined rows are counted in
    `stats` (keys `orders`, `quarantined`) and left out."""
    day = first
    while day <= last:
        result, _ = validate_landing_day(as_path(landing_dir), day)
        if stats is not None:
            stats["orders"] = stats.get("orders", 0) + len(result.valid)
            stats["quarantined"] = stats.get("quarantined", 0) + len(result.quarantine)
        yield day, result.valid
        day = date.fromordinal(day.toordinal() + 1)
