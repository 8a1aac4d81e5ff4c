"""The API key check of `/v1/*`: an `X-API-Key` header that is one of the configured keys
(`fraud_core.access`), whose role allows the route. A route states the least role it needs in
its `opt` (`needs(ANALYST)`); without one, any key may call it (scoring)."""

from __future__ import annotations

from litestar.connection import ASGIConnection
from litestar.exceptions import NotAuthorizedException, PermissionDeniedException
from litestar.handlers.base import BaseRouteHandler

from fraud_core.access import SCORING, ApiKey, allows

API_KEY_HEADER = "X-API-Key"
_HEADER_NAME = API_KEY_HEADER.lower().encode()  # as ASGI servers pass header names
SECURITY_SCHEME = "ApiKey"
ROLE_OPT = "role"


def needs(role: str) -> dict[str, str]:
    """A route handler's `opt` for routes that need more than the scoring role."""
    return {ROLE_OPT: role}


async def api_key_guard(connection: ASGIConnection, handler: BaseRouteHandler) -> None:
    # async: Litestar runs a sync guard in a worker thread, which costs more than the check
    # the raw header from the scope: parsing all of them into `connection.headers` cost more
    given = next((v for k, v in connection.scope["headers"] if k == _HEADER_NAME), b"")
    key = connection.app.state.settings.key_ring.match(given)
    if key is None:
        raise NotAuthorizedException(f"missing or unknown {API_KEY_HEADER} header")
    needed = handler.opt.get(ROLE_OPT, SCORING)
    if not allows(key.role, needed):
        raise PermissionDeniedException(
            f"the key {key.id!r} has the role {key.role!r}; this needs {needed!r} or above"
        )
    # who asked, for the decision log and the audit trail: the key's public id, never the key
    connection.state.api_key = key


def request_key(connection: ASGIConnection) -> ApiKey | None:
    """The key that passed `api_key_guard` (None before it ran)."""
    return getattr(connection.state, "api_key", None)


def request_key_id(connection: ASGIConnection) -> str:
    """The public id of the key that passed `api_key_guard` ("" before it ran)."""
    key = request_key(connection)
    return key.id if key is not None else ""
