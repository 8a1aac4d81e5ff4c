"""The served model and its hot reload.

A background task looks at the registry's `current.json` every few seconds. When it names another
version (or the files changed), the version is loaded and verified off the event loop (checksum
in the card, the spec's features, trees readable for reasons) and then swapped in with one
assignment: a batch already running finishes on the model it started with, the next one uses the
new model, no request is dropped. A broken or tampered version (a model file or a card changed
after training) or a `current.json` that does not name a registry version is refused, logged
naming the file and counted once, and the old model keeps serving; it is tried again only when
its files change.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import xgboost as xgb

from fraud_core.contract import Contract, builtin_contract
from fraud_core.model.artifact import (
    CARD_FILE,
    CURRENT_FILE,
    MODEL_FILE,
    ModelIntegrityError,
    current_version,
)
from fraud_core.scoring.scorer import Scorer, load_scorer
from fraud_core.storage import as_path, file_times
from fraud_serving.metrics import ServiceMetrics
from fraud_serving.services.tasks import raise_if_cancelled

log = logging.getLogger(__name__)

FileStat = tuple[int, int]  # (mtime_ns, size); (0, -1) for a missing file
Signature = tuple[str, FileStat, FileStat]  # version, stats of its model and card files


class ModelUnavailableError(RuntimeError):
    """No model is deployed (or none could be loaded): scoring answers 503."""


@dataclass(frozen=True)
class ServedModel:
    scorer: Scorer
    loaded_at: datetime
    signature: Signature

    @property
    def version(self) -> str:
        return self.scorer.version


class ModelHolder:
    def __init__(
        self,
        registry: Path,
        metrics: ServiceMetrics,
        contract: Contract | None = None,
        pointer: str = CURRENT_FILE,
    ) -> None:
        """`pointer`: the served model's (`current.json`) or the shadow model's
        (`challenger.json`: scored beside the served one, never deciding; optional)."""
        self.registry = as_path(registry)
        self.pointer = pointer
        self.shadow = pointer != CURRENT_FILE
        self.metrics = metrics
        # a model trained under another contract, or of other features, is refused
        self.contract = contract or builtin_contract()
        self.current: ServedModel | None = None
        self.last_error = ""
        self._refused: set[Signature] = set()
        self._refused_pointer: FileStat | None = None  # current.json when it named no version

    def require(self) -> ServedModel:
        model = self.current
        if model is None:
            raise ModelUnavailableError(
                f"no model is being served: {self.last_error or 'none deployed'}"
            )
        return model

    def _signature(self) -> Signature | None:
        try:
            # refuses a pointer that is no version name
            version = current_version(self.registry, self.pointer)
        except OSError as exc:
            raise ModelIntegrityError(f"{self.pointer} is unreadable: {exc}") from exc
        if version is None:
            return None
        folder = self.registry / version
        return version, file_stat(folder / MODEL_FILE), file_stat(folder / CARD_FILE)

    async def poll_once(self) -> bool:
        """Load the deployed version if it is new; True when a model was swapped in."""
        try:
            signature = await asyncio.to_thread(self._signature)
        except ModelIntegrityError as exc:
            # once per change of current.json, not at every poll
            pointer = await asyncio.to_thread(file_stat, self.registry / self.pointer)
            if pointer != self._refused_pointer:
                self._refused_pointer = pointer
                self._refuse(None, f"{self.pointer} refused: {exc}")
            return False
        self._refused_pointer = None
        if signature is None:
            if self.current is None:
                self.last_error = f"no {self.pointer} in {self.registry}"
            elif self.shadow:  # the challenger was withdrawn
                log.info("no shadow model any more (was %s)", self.current.version)
                self.current = None
                self.metrics.shadow_model(None)
            return False
        if (self.current and self.current.signature == signature) or signature in self._refused:
            return False
        version = signature[0]
        try:
            scorer = await asyncio.to_thread(load_scorer, self.registry, version, self.contract)
        except (
            ModelIntegrityError,
            OSError,
            ValueError,
            KeyError,
            TypeError,
            xgb.core.XGBoostError,
        ) as exc:
            self._refuse(signature, f"model {version} refused: {exc}")
            return False
        previous = self.current.version if self.current else None
        self.current = ServedModel(scorer, datetime.now(UTC), signature)
        self.last_error = ""
        if self.shadow:
            self.metrics.shadow_model(version)
            log.info("scoring model %s in shadow (was %s)", version, previous)
        else:
            self.metrics.model_loaded(version, previous)
            log.info("serving model %s (was %s)", version, previous)
        return True

    def _refuse(self, signature: Signature | None, message: str) -> None:
        if signature is not None:
            self._refused.add(signature)
        self.last_error = message
        self.metrics.model_refused()
        doing = "scoring in shadow" if self.shadow else "serving"
        log.error(
            "%s; %s",
            message,
            f"still {doing} {self.current.version}" if self.current else f"nothing {doing}",
        )

    async def watch(self, interval_s: float) -> None:
        while True:
            await asyncio.sleep(interval_s)
            try:
                await self.poll_once()
            except Exception:  # the reload loop must survive anything; the old model serves on
                log.exception("model reload failed")
            raise_if_cancelled()


def file_stat(path: Path) -> FileStat:
    try:
        size, mtime_ns, _ = file_times(path)
    except OSError:
        return 0, -1
    return mtime_ns, size
