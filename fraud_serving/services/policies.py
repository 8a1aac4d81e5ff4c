"""The applied policy and its hot reload, as the model's (`services.models`).

A background task looks at the registry's `active.json` every few seconds; a new version is read
and checked off the event loop (its checksum, every condition parsed and type-checked against
the contract's fields) and swapped in with one assignment. An invalid or tampered version is
refused, logged once, and the policy in use keeps deciding. With no active policy the built-in
default applies: the lists' rules and the model card's thresholds.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime

from fraud_core.policy.policy import Policy, PolicyError, PolicyFields, default_policy
from fraud_core.policy.registry import ACTIVE, PolicyRegistry
from fraud_serving.metrics import ServiceMetrics
from fraud_serving.services.models import FileStat, file_stat
from fraud_serving.services.tasks import raise_if_cancelled

log = logging.getLogger(__name__)


class PolicyHolder:
    def __init__(
        self, registry: PolicyRegistry, fields: PolicyFields, metrics: ServiceMetrics
    ) -> None:
        self.registry = registry
        self.fields = fields
        self.metrics = metrics
        self.default = default_policy(fields)
        self.current: Policy = self.default
        self.loaded_at = datetime.now(UTC)
        self.last_error = ""
        self._seen: FileStat | None = None  # active.json when last looked at

    async def poll_once(self) -> bool:
        """Apply the active version if `active.json` changed; True when a policy was swapped."""
        path = self.registry.pointer_path(ACTIVE)
        stat = await asyncio.to_thread(file_stat, path)
        if stat == self._seen:
            return False
        self._seen = stat
        try:
            policy = await asyncio.to_thread(self.registry.active, self.fields)
        except (PolicyError, OSError) as exc:
            self.last_error = f"policy refused: {exc}"
            self.metrics.policy_refused()
            log.error("%s; still applying %s", self.last_error, self.current.version)
            return False
        policy = policy or self.default
        if policy.version == self.current.version:
            return False
        previous, self.current = self.current.version, policy
        self.loaded_at = datetime.now(UTC)
        self.last_error = ""
        self.metrics.policy_loaded(policy.version)
        log.info("applying policy %s %r (was %s)", policy.version, policy.name, previous)
        return True

    async def watch(self, interval_s: float) -> None:
        while True:
            await asyncio.sleep(interval_s)
            try:
                await self.poll_once()
            except Exception:  # the reload loop must survive anything; the old policy decides
                log.exception("policy reload failed")
            raise_if_cancelled()
