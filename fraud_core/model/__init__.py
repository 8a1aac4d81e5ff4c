"""The model artifact (XGBoost UBJ + JSON model card, never pickle) and the registry folder that
keeps every version with a `current` pointer."""
