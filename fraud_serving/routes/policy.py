"""The fraud team's controls: `/v1/lists` (block, allow and watch lists), `/v1/policy` (the
applied policy; submit a candidate; activate one by override) and `/v1/audit` (who changed what).

Analysts manage lists and read the audit; only admins change the policy. Every change is audited
with the key's id (never the key)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Annotated

from litestar import Controller, Request, delete, get, post
from litestar.di import NamedDependency
from litestar.exceptions import NotFoundException
from litestar.params import FromPath, FromQuery, JSONBody, QueryParameter
from litestar.status_codes import HTTP_204_NO_CONTENT

from fraud_core import audit
from fraud_core.access import ADMIN, ANALYST
from fraud_core.policy import PolicyError, load_policy
from fraud_core.policy.lists import ListEntry
from fraud_core.policy.registry import ACTIVE, CANDIDATE
from fraud_core.storage import DataLayout
from fraud_serving.guards import needs, request_key_id
from fraud_serving.routes.responses import (
    BAD_INPUT,
    FORBIDDEN,
    UNAUTHORIZED,
    UNAVAILABLE,
    problem,
)
from fraud_serving.schemas import (
    AuditEntry,
    ListEntryIn,
    ListEntryOut,
    ListName,
    ListPage,
    PolicyActivation,
    PolicyRuleView,
    PolicySaved,
    PolicySegmentView,
    PolicySubmission,
    PolicyView,
)
from fraud_serving.services.lists import ListService
from fraud_serving.services.policies import PolicyHolder
from fraud_serving.services.scoring import InvalidInputError
from fraud_serving.settings import Settings

_GUARDED = {**UNAUTHORIZED, **FORBIDDEN}


def _actor(request: Request) -> str:
    return f"key:{request_key_id(request)}"


def _when(epoch_s: float | None) -> datetime | None:
    return None if epoch_s is None else datetime.fromtimestamp(epoch_s, UTC)


def _view(entry: ListEntry) -> ListEntryOut:
    return ListEntryOut(
        list=entry.list,
        kind=entry.kind,
        key=entry.key,
        reason=entry.reason,
        author=entry.author,
        added_at=_when(entry.added_at),  # type: ignore[arg-type]
        expires_at=_when(entry.expires_at),
    )


class ListController(Controller):
    path = "/lists"
    tags = ("policy",)
    opt = needs(ANALYST)

    @get(
        "/",
        summary="List entries, oldest first, paginated",
        responses={**BAD_INPUT, **_GUARDED, **UNAVAILABLE},
    )
    async def list_entries(
        self,
        list_service: NamedDependency[ListService],
        list_name: Annotated[ListName | None, QueryParameter(name="list")] = None,
        kind: FromQuery[str | None] = None,
        offset: Annotated[int, QueryParameter(ge=0)] = 0,
        limit: Annotated[int, QueryParameter(ge=1, le=1_000)] = 100,
    ) -> ListPage:
        entries = await list_service.entries(list_name, kind)
        page = entries[offset : offset + limit]
        return ListPage([_view(e) for e in page], len(entries), offset, limit)

    @post(
        "/",
        status_code=201,
        summary="Put an entity on a list",
        description=(
            "Takes effect with the next batch every service process scores; shows in the "
            "answers' `list_hits` and the rules that read the list. Adding an entity again "
            "replaces its entry (new reason, new expiry). Audited."
        ),
        responses={**BAD_INPUT, **_GUARDED, **UNAVAILABLE},
    )
    async def add_entry(
        self,
        request: Request,
        data: JSONBody[ListEntryIn],
        list_service: NamedDependency[ListService],
    ) -> ListEntryOut:
        try:
            entry = await list_service.add(
                data.list, data.kind, data.value, data.reason, _actor(request), data.ttl_s
            )
        except ValueError as err:
            field, _, reason = str(err).partition(": ")
            raise InvalidInputError(field if reason else "value", reason or str(err)) from None
        return _view(entry)

    @delete(
        "/{list_name:str}/{kind:str}",
        status_code=HTTP_204_NO_CONTENT,
        summary="Take an entity off a list",
        description="`value` as an order sends it, or `key` as the list shows it. Audited.",
        responses={**BAD_INPUT, **_GUARDED, 404: problem("No such entry"), **UNAVAILABLE},
    )
    async def remove_entry(
        self,
        request: Request,
        list_name: FromPath[ListName],
        kind: FromPath[str],
        reason: Annotated[str, QueryParameter(min_length=1, max_length=500)],
        list_service: NamedDependency[ListService],
        value: FromQuery[str | None] = None,
        key: FromQuery[str | None] = None,
    ) -> None:
        if (value is None) == (key is None):
            raise InvalidInputError("value", "give either value or key")
        try:
            removed = await list_service.remove(
                list_name, kind, value if key is None else key, reason, _actor(request),
                keyed=key is not None,
            )  # fmt: skip
        except ValueError as err:
            raise InvalidInputError("kind" if "kind" in str(err) else "value", str(err)) from None
        if not removed:
            raise NotFoundException(f"no {list_name} list entry for that {kind}")


class PolicyController(Controller):
    path = "/policy"
    tags = ("policy",)

    @get(
        "/",
        summary="The policy the service applies",
        responses=_GUARDED,
        opt=needs(ANALYST),
    )
    async def get_policy(self, policies: NamedDependency[PolicyHolder]) -> PolicyView:
        p = policies.current
        return PolicyView(
            version=p.version,
            name=p.name,
            description=p.description,
            default=p is policies.default,
            loaded_at=policies.loaded_at,
            rules=[PolicyRuleView(r.name, r.when, r.action, list(r.tags)) for r in p.rules],
            segments=[
                PolicySegmentView(s.name, s.when, dict(s.thresholds) if s.thresholds else None)
                for s in p.segments
            ],
            thresholds=dict(p.thresholds) if p.thresholds else None,
        )

    @post(
        "/",
        status_code=201,
        summary="Submit a candidate policy",
        description=(
            "Checked (every condition parsed and type-checked; an error names the rule) and kept "
            "as the candidate. The `policy_replay` asset replays it next to the active policy and "
            "activates it when its guardrails hold. Audited."
        ),
        responses={**BAD_INPUT, **_GUARDED},
        opt=needs(ADMIN),
    )
    async def submit_policy(
        self,
        request: Request,
        data: JSONBody[PolicySubmission],
        policies: NamedDependency[PolicyHolder],
    ) -> PolicySaved:
        try:
            policy = load_policy(data.text, policies.fields)
        except PolicyError as err:
            raise InvalidInputError("text", str(err)) from None
        # the registry and the audit trail may be objects in a bucket: off the event loop
        await asyncio.to_thread(policies.registry.save, policy, _actor(request), data.reason)
        return PolicySaved(policy.version, policy.name, CANDIDATE)

    @post(
        "/active",
        status_code=200,
        summary="Apply a kept policy version now (an override of the replay)",
        responses={**BAD_INPUT, **_GUARDED, 404: problem("No such version")},
        opt=needs(ADMIN),
    )
    async def activate_policy(
        self,
        request: Request,
        data: JSONBody[PolicyActivation],
        policies: NamedDependency[PolicyHolder],
    ) -> PolicySaved:
        try:
            policy = await asyncio.to_thread(policies.registry.read, data.version, policies.fields)
        except PolicyError as err:
            if "no policy version" in str(err):
                raise NotFoundException(str(err)) from None
            raise InvalidInputError("version", str(err)) from None
        await asyncio.to_thread(
            policies.registry.point,
            ACTIVE,
            policy.version,
            _actor(request),
            f"override: {data.reason}",
        )
        await policies.poll_once()  # this process at once; the others at their next poll
        return PolicySaved(policy.version, policy.name, ACTIVE)


class AuditController(Controller):
    path = "/audit"
    tags = ("policy",)
    opt = needs(ANALYST)

    @get("/", summary="Changes of policies, lists and models, newest first", responses=_GUARDED)
    async def read_audit(
        self,
        settings: NamedDependency[Settings],
        action: FromQuery[str | None] = None,
        since: FromQuery[str | None] = None,
        limit: Annotated[int, QueryParameter(ge=1, le=1_000)] = 100,
    ) -> list[AuditEntry]:
        try:
            records = await asyncio.to_thread(
                audit.read,
                DataLayout(settings.data_dir).audit,
                action=action,
                since=since,
                limit=limit,
            )
        except ValueError as err:
            raise InvalidInputError("action", str(err)) from None
        return [
            AuditEntry(
                at=str(r.get("at", "")),
                action=str(r.get("action", "")),
                actor=str(r.get("actor", "")),
                target=str(r.get("target", "")),
                reason=str(r.get("reason", "")),
                before=r.get("before"),
                after=r.get("after"),
            )
            for r in records
        ]
