"""Model artifacts and the model registry.

A version is a folder `<registry>/<version>/` holding `model.ubj` (XGBoost's own binary JSON
format) and `card.json` (the model card: what the model is, how it was trained, how good it is,
its decision thresholds and the SHA-256 of `model.ubj`). The version is a content hash, so the same
model trained twice is the same version. `<registry>/current.json` points at the served version;
promotion and rollback only rewrite that pointer (atomically). Nothing here uses pickle.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import xgboost as xgb

from fraud_core.storage import atomic_path

MODEL_FILE = "model.ubj"
CARD_FILE = "card.json"
CURRENT_FILE = "current.json"


class ModelIntegrityError(ValueError):
    """A model file does not match its card (tampered, truncated or from another version)."""


@dataclass
class ModelCard:
    version: str
    feature_names: list[str]
    thresholds: dict[str, float]  # {"review": score, "decline": score}; approve below review
    model_sha256: str = ""
    created_at: str = field(default_factory=lambda: datetime.now(UTC).isoformat(timespec="seconds"))
    training_window: dict[str, str] = field(default_factory=dict)  # {"start", "end", "cutoff"}
    params: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, Any] = field(default_factory=dict)
    data_versions: dict[str, Any] = field(default_factory=dict)
    notes: str = ""

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2, sort_keys=True, default=_json_default)

    @classmethod
    def from_json(cls, text: str) -> ModelCard:
        data = json.loads(text)
        known = {f for f in cls.__dataclass_fields__}
        return cls(**{k: v for k, v in data.items() if k in known})

    def decision(self, score: float) -> str:
        if score >= self.thresholds["decline"]:
            return "decline"
        if score >= self.thresholds["review"]:
            return "review"
        return "approve"


def _json_default(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    return str(value)


def model_bytes(booster: xgb.Booster) -> bytes:
    return bytes(booster.save_raw(raw_format="ubj"))


def save_version(registry: Path, booster: xgb.Booster, card: ModelCard) -> ModelCard:
    """Write a new version (model + card) into the registry; the version is the first 16 hex
    digits of the model's SHA-256. Does not change `current`. Returns the completed card."""
    raw = model_bytes(booster)
    digest = hashlib.sha256(raw).hexdigest()
    card.model_sha256 = digest
    card.version = card.version or digest[:16]
    folder = Path(registry) / card.version
    folder.mkdir(parents=True, exist_ok=True)
    with atomic_path(folder / MODEL_FILE) as tmp:
        tmp.write_bytes(raw)
    with atomic_path(folder / CARD_FILE) as tmp:
        tmp.write_text(card.to_json())
    return card


def read_card(registry: Path, version: str) -> ModelCard:
    return ModelCard.from_json((Path(registry) / version / CARD_FILE).read_text())


def load_version(registry: Path, version: str) -> tuple[xgb.Booster, ModelCard]:
    """Load and verify a version: the model file must hash to the card's `model_sha256` and have
    the card's features. Raises ModelIntegrityError (or FileNotFoundError) otherwise."""
    folder = Path(registry) / version
    card = read_card(registry, version)
    raw = (folder / MODEL_FILE).read_bytes()
    if hashlib.sha256(raw).hexdigest() != card.model_sha256:
        raise ModelIntegrityError(
            f"model {version}: {MODEL_FILE} does not match the checksum in its card"
        )
    booster = xgb.Booster()
    try:
        booster.load_model(bytearray(raw))
    except xgb.core.XGBoostError as exc:
        raise ModelIntegrityError(
            f"model {version}: XGBoost cannot read {MODEL_FILE}: {exc}"
        ) from exc
    if booster.num_features() != len(card.feature_names):
        raise ModelIntegrityError(
            f"model {version}: {booster.num_features()} features in the model, {len(card.feature_names)} in the card"
        )
    booster.feature_names = list(card.feature_names)
    return booster, card


def list_versions(registry: Path) -> list[ModelCard]:
    """Every version in the registry, oldest first."""
    cards = [ModelCard.from_json(p.read_text()) for p in Path(registry).glob(f"*/{CARD_FILE}")]
    return sorted(cards, key=lambda c: (c.created_at, c.version))


def current_version(registry: Path) -> str | None:
    """The served version, or None when nothing was promoted yet."""
    try:
        return json.loads((Path(registry) / CURRENT_FILE).read_text())["version"]
    except FileNotFoundError:
        return None


def set_current(registry: Path, version: str, reason: str = "") -> None:
    """Point `current` at an existing version (promotion or rollback), atomically."""
    if not (Path(registry) / version / CARD_FILE).exists():
        raise FileNotFoundError(f"no model version {version!r} in {registry}")
    pointer = {
        "version": version,
        "since": datetime.now(UTC).isoformat(timespec="seconds"),
        "reason": reason,
    }
    with atomic_path(Path(registry) / CURRENT_FILE) as tmp:
        tmp.write_text(json.dumps(pointer))
    os.utime(Path(registry) / CURRENT_FILE)
