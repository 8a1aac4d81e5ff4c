"""Who answers for each asset and how the Dagster UI's catalog files it, decided here once for the
whole code location: `definitions.py` maps `catalogued` over every asset.

An asset's group is its layer of the platform (ingest -> features -> model -> serving, with
monitoring beside them). The layer names the team that owns it (the UI's owner filter, alert
routing) and becomes the `layer` tag (`tag:layer=serving` in an asset selection); the storage
among the asset's kinds (or else its layer's) becomes `dagster/storage_kind`, which the UI shows
apart from the compute kinds. What an asset declares itself (its own owners or tags) is kept.
"""

from __future__ import annotations

from dataclasses import dataclass

from dagster import AssetSpec

DATA_TEAM = "team:fraud-data"  # landing files, validation, features
ML_TEAM = "team:fraud-ml"  # training, promotion, serving and monitoring of the model
RISK_TEAM = "team:fraud-risk"  # the analysts who own the decision policy and the lists


@dataclass(frozen=True)
class Layer:
    owner: str
    storage_kind: str | None = None  # where an asset of the layer is kept when its kinds don't say


LAYERS = {
    "ingest": Layer(DATA_TEAM),
    "features": Layer(DATA_TEAM),
    "model": Layer(ML_TEAM, "json"),  # the registry's model and card files, the backtest report
    "serving": Layer(ML_TEAM),
    "monitoring": Layer(ML_TEAM),
    "policy": Layer(RISK_TEAM, "json"),  # the policy pointers and replay reports
}
LAYER_TAG = "layer"
STORAGE_KIND_TAG = "dagster/storage_kind"
STORAGE_KINDS = ("parquet", "redis", "json")  # the kinds that say where an asset is kept


def catalogued(spec: AssetSpec) -> AssetSpec:
    """`spec` with its layer's owner, its `layer` tag and its storage kind (see the module
    docstring). An asset outside the known layers is left as it is; the test of the code
    location names it."""
    name = spec.group_name or ""
    layer = LAYERS.get(name)
    if layer is None:
        return spec
    storage = next((kind for kind in STORAGE_KINDS if kind in spec.kinds), layer.storage_kind)
    tags = {LAYER_TAG: name, **({STORAGE_KIND_TAG: storage} if storage else {})}
    return spec.merge_attributes(
        owners=[] if layer.owner in spec.owners else [layer.owner],
        tags={k: v for k, v in tags.items() if k not in spec.tags},
    )
