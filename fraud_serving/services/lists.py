"""Block, allow and watch lists in the service: the in-memory index the policy reads, kept in step
with Redis by the change counter each batch reads, and the changes `/v1/lists` makes (each one
audited). Layout and entries: `fraud_core.policy.lists`."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from fraud_core import audit
from fraud_core.contract.request import RequestShape, RequestValueError
from fraud_core.policy.lists import (
    ListEntry,
    ListIndex,
    check_list,
    decode_all,
    entry_field,
    new_entry,
)
from fraud_core.storage import as_path
from fraud_serving.services.store import OnlineStore


class ListService:
    def __init__(self, store: OnlineStore, shape: RequestShape, audit_folder: Path) -> None:
        self.store = store
        self.shape = shape
        self.audit_folder = as_path(audit_folder)
        self.index = ListIndex()
        self._loading = asyncio.Lock()

    async def current(self, version: int) -> ListIndex:
        """The index as of change counter `version` (reloaded when it moved since)."""
        if version != self.index.version:
            async with self._loading:  # one reload for every batch that noticed the change
                if version != self.index.version:
                    counter, fields = await self.store.list_fields()
                    self.index = ListIndex(decode_all(fields), counter)
        return self.index

    def key_of(self, kind: str, value: str) -> str:
        """The key the store uses for an entity value; ValueError naming the field."""
        if kind not in self.shape.kinds:
            raise ValueError(f"kind must be one of {', '.join(self.shape.kinds)}; got {kind!r}")
        try:
            return self.shape.key_of(kind, value)
        except RequestValueError as err:
            raise ValueError(f"value: {err.reason}") from None

    async def entries(
        self, list_name: str | None = None, kind: str | None = None, live_only: bool = True
    ) -> list[ListEntry]:
        if list_name is not None:
            check_list(list_name)
        _, fields = await self.store.list_fields()
        now = time.time()
        return [
            e
            for e in decode_all(fields)
            if (list_name is None or e.list == list_name)
            and (kind is None or e.kind == kind)
            and (not live_only or e.live(now))
        ]

    async def add(
        self,
        list_name: str,
        kind: str,
        value: str,
        reason: str,
        actor: str,
        ttl_s: float | None = None,
        keyed: bool = False,
    ) -> ListEntry:
        """Put an entity on a list by its value (or by its stored key: `keyed`; `new_entry`
        checks the kind)."""
        key = value if keyed else self.key_of(kind, value)
        entry = new_entry(list_name, kind, key, reason, actor, ttl_s, self.shape.kinds)
        # expired entries leave the hash with the next change, so it does not grow for ever
        stale = [e.field for e in await self.entries(live_only=False) if not e.live(time.time())]
        await self.store.change_list(put=[(entry.field, entry.to_json())], drop=stale)
        await asyncio.to_thread(  # the audit trail may be in a bucket: off the event loop
            audit.append,
            self.audit_folder,
            audit.AuditRecord(
                action="list.add",
                actor=actor,
                target=f"list:{entry.field}",
                reason=entry.reason,
                after=entry.to_dict(),
            ),
        )
        return entry

    async def remove(
        self, list_name: str, kind: str, value: str, reason: str, actor: str, keyed: bool = False
    ) -> bool:
        """Remove an entry by its value (or by its stored key: `keyed`); False when absent."""
        check_list(list_name)
        key = value if keyed else self.key_of(kind, value)
        field = entry_field(list_name, kind, key)
        (removed,) = await self.store.change_list(drop=[field])
        if removed:
            await asyncio.to_thread(
                audit.append,
                self.audit_folder,
                audit.AuditRecord(
                    action="list.remove", actor=actor, target=f"list:{field}", reason=reason
                ),
            )
        return bool(removed)
