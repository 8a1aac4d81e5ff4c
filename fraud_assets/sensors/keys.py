"""The asset keys the sensors read, taken from the asset definitions so that no sensor spells
one itself (a renamed asset cannot leave a sensor watching a key that no longer exists)."""

from __future__ import annotations

from fraud_assets.assets.entity_features import entity_features
from fraud_assets.assets.fraud_model import fraud_model
from fraud_assets.assets.model_selection import model_selection
from fraud_assets.assets.online_store import online_store
from fraud_assets.assets.raw_orders import raw_orders

RAW_ORDERS = raw_orders.key
ENTITY_FEATURES = entity_features.key
FRAUD_MODEL = fraud_model.key
MODEL_SELECTION = model_selection.key
ONLINE_STORE = online_store.key
