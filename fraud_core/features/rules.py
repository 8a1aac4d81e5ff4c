"""The rules every computed feature row obeys, over a (features x orders) block in the spec's
feature order: the one definition that `entity_features` verifies its output with before
publishing it and that its checks report on afterwards."""

from __future__ import annotations

import numpy as np

from fraud_core.features.spec import DEFAULT_SPEC, FeatureSpec


def forbidden_nans(block: np.ndarray, spec: FeatureSpec = DEFAULT_SPEC) -> dict[str, int]:
    """Empty values in features the spec declares never empty, per feature (only those with
    any)."""
    rows = [i for i, f in enumerate(spec.features) if not f.nullable]
    counts = np.isnan(block[rows]).sum(axis=1) if block.shape[1] else np.zeros(len(rows))
    return {spec.features[i].name: int(n) for i, n in zip(rows, counts, strict=True) if n}


def out_of_range(block: np.ndarray, spec: FeatureSpec = DEFAULT_SPEC) -> dict[str, int]:
    """Values outside the spec's bounds, per feature (only those with any; empty values are
    not counted here)."""
    lo = np.array([-np.inf if f.bounds[0] is None else f.bounds[0] for f in spec.features])
    hi = np.array([np.inf if f.bounds[1] is None else f.bounds[1] for f in spec.features])
    with np.errstate(invalid="ignore"):
        bad = ((block < lo[:, None]) | (block > hi[:, None])).sum(axis=1)
    return {f.name: int(n) for f, n in zip(spec.features, bad, strict=True) if n}
