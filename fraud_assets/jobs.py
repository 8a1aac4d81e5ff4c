"""Jobs of the code location: named selections that the CLI, schedules and sensors launch."""

from __future__ import annotations

from dagster import AssetSelection, define_asset_job

from fraud_assets.assets.entity_features import entity_features
from fraud_assets.assets.orders_by_entity import orders_by_entity
from fraud_assets.assets.raw_orders import raw_orders

# Landing files in, validated and bucketed orders out, with their checks (partitioning is
# inferred from the assets: daily).
ingest_orders_job = define_asset_job(
    "ingest_orders_job",
    selection=AssetSelection.assets(raw_orders, orders_by_entity),
    description="Validate the landing files of the selected days and bucket them by entity.",
)

# Behavioural features of the selected days, carried over from the day before.
entity_features_job = define_asset_job(
    "entity_features_job",
    selection=AssetSelection.assets(entity_features),
    description="Compute every order's point-in-time features for the selected days (one pass).",
)
