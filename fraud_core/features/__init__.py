"""The feature engine: one spec (`spec`), one compiled kernel (`kernel`, numba), and the two paths
that run it: offline over partitions of orders (`offline`), online over one entity's stored state
(`online`, with the state codec in `state`)."""

from fraud_core.features.spec import DEFAULT_SPEC, Feature, FeatureSpec

__all__ = ["DEFAULT_SPEC", "Feature", "FeatureSpec"]
