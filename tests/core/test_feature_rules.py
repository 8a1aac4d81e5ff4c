"""The feature rules on a (features x orders) block: empty values where the spec forbids them
and values outside the spec's bounds, counted per feature."""

from __future__ import annotations

import numpy as np

from fraud_core.features.rules import forbidden_nans, out_of_range
from fraud_core.features.spec import DEFAULT_SPEC


def test_rules_count_what_breaks_the_spec_and_nothing_else():
    features = DEFAULT_SPEC.features
    block = np.zeros((len(features), 5))
    assert forbidden_nans(block) == {} and out_of_range(block) == {}

    strict = next(i for i, f in enumerate(features) if not f.nullable)
    loose = next(i for i, f in enumerate(features) if f.nullable)
    bounded = next(i for i, f in enumerate(features) if f.bounds[1] is not None)
    block[strict, [0, 3]] = np.nan
    block[loose, 1] = np.nan  # allowed
    block[bounded, 2] = features[bounded].bounds[1] + 1
    block[bounded, 4] = features[bounded].bounds[1]  # inclusive

    assert forbidden_nans(block) == {features[strict].name: 2}
    assert out_of_range(block) == {features[bounded].name: 1}
    assert forbidden_nans(np.zeros((len(features), 0))) == {}
