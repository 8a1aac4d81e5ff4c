"""Every asset of the code location has an owner and the catalog tags the UI filters by, from the
one policy in `fraud_assets.lib.catalog`; what an asset declares itself is kept."""

from __future__ import annotations

from dagster import AssetSpec

from fraud_assets.definitions import defs
from fraud_assets.lib.catalog import (
    LAYER_TAG,
    LAYERS,
    ML_TEAM,
    STORAGE_KIND_TAG,
    catalogued,
)


def test_every_asset_has_an_owner_a_layer_and_a_storage_kind():
    specs = defs.resolve_all_asset_specs()
    assert specs
    for spec in specs:
        name = spec.key.to_user_string()
        assert spec.group_name in LAYERS, f"{name}: group {spec.group_name!r} is no layer"
        assert spec.owners == [LAYERS[spec.group_name].owner], name
        assert spec.tags[LAYER_TAG] == spec.group_name, name
        assert spec.tags.get(STORAGE_KIND_TAG) in ("parquet", "redis", "json"), name
    storage = {s.key.to_user_string(): s.tags[STORAGE_KIND_TAG] for s in specs}
    assert storage["raw_orders"] == "parquet" and storage["online_store"] == "redis"


def test_what_an_asset_declares_itself_is_kept():
    own = AssetSpec(
        "scores",
        group_name="model",
        owners=["analyst@example.com"],
        tags={LAYER_TAG: "serving"},
        kinds={"parquet"},
    )
    spec = catalogued(own)
    assert spec.owners == ["analyst@example.com", ML_TEAM]
    assert spec.tags[LAYER_TAG] == "serving" and spec.tags[STORAGE_KIND_TAG] == "parquet"
    assert catalogued(AssetSpec("elsewhere", group_name="scratch")) == AssetSpec(
        "elsewhere", group_name="scratch"
    )
