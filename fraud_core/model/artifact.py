"""Model artifacts and the model registry.

A version is a folder `<registry>/<version>/` holding `model.ubj` (XGBoost's own binary JSON
format) and `card.json` (the model card: what the model is, how it was trained, how good it is,
its decision thresholds, the SHA-256 of `model.ubj` and the SHA-256 of the card itself). The version
is a content hash, so the same model trained twice is the same version. `<registry>/current.json`
points at the served version; promotion and rollback only rewrite that pointer (atomically).
Nothing here uses pickle.

Integrity rules, checked wherever a version is read (load, card, `current`, rollback):
- a version is a name matching `VERSION_PATTERN` (what `save_version` generates), never a path;
- the card's `card_sha256` covers every other field of the card, `model_sha256` included, so a
  card edited after training (thresholds, features...) is refused like a changed model file;
- thresholds are probabilities with 0 <= review <= decline <= 1, checked when a card is written
  and when it is read.
"""

from __future__ import annotations

import hashlib
import json
import numbers
import os
import re
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from fraud_core.contract import Contract, applied_contract
from fraud_core.contract.model import differing_terms
from fraud_core.model.calibration import Calibration
from fraud_core.storage import as_path, atomic_path, is_remote

if TYPE_CHECKING:  # xgboost (and the sklearn it pulls in) loads where a model is used
    import xgboost as xgb

MODEL_FILE = "model.ubj"
CARD_FILE = "card.json"
CURRENT_FILE = "current.json"
# the model the service scores in shadow beside the served one (never deciding); no file: none
CHALLENGER_FILE = "challenger.json"
POINTER_FILES = (CURRENT_FILE, CHALLENGER_FILE)
VERSION_PATTERN = re.compile(r"[0-9a-f]{16}")
"""A registry version: the first 16 hex digits of the model's SHA-256, as `save_version` names it."""
THRESHOLD_NAMES = frozenset({"review", "decline"})


class ModelIntegrityError(ValueError):
    """A registry file does not verify: a model file that does not match its card, a card edited
    after training or from another version, or a version that is not a registry name."""


@dataclass
class ModelCard:
    version: str
    feature_names: list[str]
    thresholds: dict[str, float]  # {"review": score, "decline": score}; approve below review
    model_sha256: str = ""
    card_sha256: str = ""  # of every other field: see `card_sha256`
    created_at: str = field(default_factory=lambda: datetime.now(UTC).isoformat(timespec="seconds"))
    training_window: dict[str, str] = field(default_factory=dict)  # {"start", "end", "cutoff"}
    params: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, Any] = field(default_factory=dict)
    data_versions: dict[str, Any] = field(default_factory=dict)
    notes: str = ""
    # The data contract it was trained under (`Contract.record()`); empty on older cards
    contract: dict[str, Any] = field(default_factory=dict)
    # Platt scaling of the margin (`fraud_core.model.calibration`); empty: the raw probability
    calibration: dict[str, Any] = field(default_factory=dict)

    def calibrator(self) -> Calibration:
        """The score's calibration (ValueError when the card's is malformed)."""
        return Calibration.from_dict(self.calibration)

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2, sort_keys=True, default=_json_default)

    @classmethod
    def from_json(cls, text: str) -> ModelCard:
        """The card in `text`, unverified (`read_card` verifies)."""
        return cls.from_dict(json.loads(text))

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ModelCard:
        known = {f for f in cls.__dataclass_fields__}
        return cls(**{k: v for k, v in data.items() if k in known})

    def decision(self, score: float) -> str:
        return decision_for(score, self.thresholds)


def decision_for(score: float, thresholds: Mapping[str, float]) -> str:
    """approve, review or decline for `score` under {"review": r, "decline": d}: decline first,
    each threshold inclusive. A NaN score reaches neither threshold: approve. The card's and a
    policy's thresholds both decide through this."""
    if score >= thresholds["decline"]:
        return "decline"
    if score >= thresholds["review"]:
        return "review"
    return "approve"


def _json_default(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    return str(value)


def check_version(version: object) -> str:
    """`version` if it is a registry version name; ModelIntegrityError otherwise (a path such as
    `../elsewhere` or `a/b` is refused before it touches the file system)."""
    if not isinstance(version, str) or VERSION_PATTERN.fullmatch(version) is None:
        raise ModelIntegrityError(
            f"{version!r} is not a registry version (16 lower-case hex digits, "
            "a folder name in the registry, never a path)"
        )
    return version


def check_thresholds(thresholds: object) -> None:
    """ValueError unless `thresholds` is {"review": r, "decline": d} with 0 <= r <= d <= 1."""
    if not isinstance(thresholds, dict) or set(thresholds) != THRESHOLD_NAMES:
        raise ValueError(f"thresholds must be {{'review', 'decline'}}, got {thresholds!r}")
    for name in sorted(THRESHOLD_NAMES):
        value = thresholds[name]
        if (
            isinstance(value, bool)
            or not isinstance(value, numbers.Real)
            or not 0.0 <= float(value) <= 1.0  # False for NaN too
        ):
            raise ValueError(f"the {name} threshold must be a probability in [0, 1], got {value!r}")
    if thresholds["review"] > thresholds["decline"]:
        raise ValueError(
            f"the review threshold ({thresholds['review']}) is above the decline threshold "
            f"({thresholds['decline']})"
        )


def card_sha256(data: dict[str, Any]) -> str:
    """SHA-256 of a card as read from its JSON, every field but `card_sha256` itself, in a
    canonical form (sorted keys, no whitespace): independent of the file's layout, changed by
    any edit of a value or any added or removed field. It includes `model_sha256`, so it
    covers the model file too."""
    body = {k: v for k, v in data.items() if k != "card_sha256"}
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return hashlib.sha256(canonical.encode()).hexdigest()


def model_bytes(booster: xgb.Booster) -> bytes:
    return bytes(booster.save_raw(raw_format="ubj"))


def save_version(registry: Path, booster: xgb.Booster, card: ModelCard) -> ModelCard:
    """Write a new version (model + card) into the registry; the version is the first 16 hex
    digits of the model's SHA-256 unless the card names a valid one. Does not change `current`.
    Returns the completed card (checksums filled in). ValueError for bad thresholds and
    ModelIntegrityError for a version that is not a name, before anything is written."""
    check_thresholds(card.thresholds)
    card.calibrator()
    if card.version:
        check_version(card.version)
    raw = model_bytes(booster)
    digest = hashlib.sha256(raw).hexdigest()
    card.model_sha256 = digest
    card.version = card.version or digest[:16]
    # the checksum of the card as it will be read back (numpy values become JSON numbers)
    card.card_sha256 = card_sha256(json.loads(card.to_json()))
    folder = as_path(registry) / card.version
    with atomic_path(folder / MODEL_FILE) as tmp:
        tmp.write_bytes(raw)
    with atomic_path(folder / CARD_FILE) as tmp:
        tmp.write_text(card.to_json())
    return card


def read_card(registry: Path, version: str) -> ModelCard:
    """The verified card of a version: a registry name, the card's own checksum, its version
    and its thresholds. Raises ModelIntegrityError naming the file (or FileNotFoundError)."""
    path = as_path(registry) / check_version(version) / CARD_FILE
    try:
        data = json.loads(path.read_bytes())
    except ValueError as exc:  # not UTF-8 (UnicodeDecodeError) or not JSON
        raise ModelIntegrityError(f"{path} is not JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise ModelIntegrityError(f"{path} is not a model card")
    stored = data.get("card_sha256")
    if not stored:
        raise ModelIntegrityError(
            f"{path} has no card checksum (written before cards were checksummed): "
            "train the model again (materialize fraud_model) to register a verifiable version"
        )
    if stored != card_sha256(data):
        raise ModelIntegrityError(
            f"{path} was edited after training: it does not match its card_sha256 "
            "(a card is part of the trained model: train again instead of editing it)"
        )
    if data.get("version") != version:
        raise ModelIntegrityError(f"{path} is the card of {data.get('version')}, not of {version}")
    try:
        check_thresholds(data.get("thresholds"))
        card = ModelCard.from_dict(data)
        card.calibrator()
        return card
    except (ValueError, TypeError, KeyError) as exc:
        raise ModelIntegrityError(f"{path}: {exc}") from exc


def check_contract(card: ModelCard, contract: Contract) -> None:
    """ModelIntegrityError when `card`'s model was trained under a contract whose entities,
    attributes or features differ from `contract`'s, naming what differs. A card from before
    contracts were recorded says nothing here (its features are still checked by name)."""
    terms = card.contract.get("terms") if isinstance(card.contract, dict) else None
    if terms is None:
        return
    differs = differing_terms(terms, contract.model_terms())
    if differs:
        raise ModelIntegrityError(
            f"model {card.version} was trained under contract {card.contract.get('name')!r}, "
            f"this platform runs {contract.name!r}: they differ in {', '.join(differs[:5])}"
        )


def load_version(
    registry: Path, version: str, contract: Contract | None = None
) -> tuple[xgb.Booster, ModelCard]:
    """Load and verify a version: its card (see `read_card`), trained under the contract in use
    (`contract`, default the applied one: see `check_contract`), then the model file, which
    must hash to the card's `model_sha256` and have the card's features. Raises
    ModelIntegrityError (or FileNotFoundError) otherwise."""
    card = read_card(registry, version)
    check_contract(card, contract or applied_contract())
    path = as_path(registry) / version / MODEL_FILE
    raw = path.read_bytes()
    if hashlib.sha256(raw).hexdigest() != card.model_sha256:
        raise ModelIntegrityError(
            f"model {version}: {path} does not match the checksum in its card"
        )
    import xgboost as xgb

    booster = xgb.Booster()
    try:
        booster.load_model(bytearray(raw))
    except xgb.core.XGBoostError as exc:
        raise ModelIntegrityError(f"model {version}: XGBoost cannot read {path}: {exc}") from exc
    if booster.num_features() != len(card.feature_names):
        raise ModelIntegrityError(
            f"model {version}: {booster.num_features()} features in the model, {len(card.feature_names)} in the card"
        )
    booster.feature_names = list(card.feature_names)
    return booster, card


def list_versions(registry: Path) -> list[ModelCard]:
    """Every version in the registry, oldest first (cards as written, unverified: for listing)."""
    cards = [
        ModelCard.from_json(p.read_text())
        for p in as_path(registry).glob(f"*/{CARD_FILE}")
        if VERSION_PATTERN.fullmatch(p.parent.name)
    ]
    return sorted(cards, key=lambda c: (c.created_at, c.version))


def current_version(registry: Path, pointer: str = CURRENT_FILE) -> str | None:
    """The served version (or the challenger's, `pointer=CHALLENGER_FILE`), None when there is
    none. ModelIntegrityError when the pointer is unreadable or names no registry version."""
    if pointer not in POINTER_FILES:
        raise ValueError(f"no model pointer {pointer!r}")
    path = as_path(registry) / pointer
    try:
        text = path.read_bytes()
    except FileNotFoundError:
        return None
    try:
        version = json.loads(text)["version"]  # ValueError too when not UTF-8
    except (ValueError, KeyError, TypeError) as exc:
        raise ModelIntegrityError(f"{path} is unreadable: {exc!r}") from exc
    try:
        return check_version(version)
    except ModelIntegrityError as exc:
        raise ModelIntegrityError(f"{path}: {exc}") from exc


def set_current(registry: Path, version: str, reason: str = "") -> None:
    """Point `current` at an existing version (promotion or rollback), atomically. The version
    must be a registry name (ModelIntegrityError otherwise); callers verify it with
    `load_version` first, the service verifies it again before serving it."""
    _point(registry, CURRENT_FILE, version, reason)
    pointer = as_path(registry) / CURRENT_FILE
    if not is_remote(pointer):  # a new object has a new time and ETag of its own
        os.utime(pointer)


def _point(registry: Path, pointer: str, version: str, reason: str) -> None:
    """Write pointer file `pointer` naming an existing `version`, atomically."""
    if not (as_path(registry) / check_version(version) / CARD_FILE).exists():
        raise FileNotFoundError(f"no model version {version!r} in {registry}")
    record = {
        "version": version,
        "since": datetime.now(UTC).isoformat(timespec="seconds"),
        "reason": reason,
    }
    with atomic_path(as_path(registry) / pointer) as tmp:
        tmp.write_text(json.dumps(record))


def set_challenger(registry: Path, version: str | None, reason: str = "") -> None:
    """Point `challenger` at an existing version (the service scores it in shadow), or remove
    the pointer (`None`: no shadow model)."""
    if version is None:
        (as_path(registry) / CHALLENGER_FILE).unlink(missing_ok=True)
        return
    _point(registry, CHALLENGER_FILE, version, reason)
