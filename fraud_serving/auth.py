"""The API key check of `/v1/*` as router middleware rather than a Litestar guard.

Litestar calls every guard with a fresh `copy()` of the route handler, which cost a fifth of
the framework's time per scoring request; a middleware on the `/v1` router runs at the same
point (after routing, before the body is read) and raises the same 401 (`guards.api_key_guard`
is the check), which the app's exception handlers turn into the same `Problem` body.
"""

from __future__ import annotations

from litestar.connection import ASGIConnection
from litestar.types import ASGIApp, Receive, Scope, Send

from fraud_serving.guards import api_key_guard


def api_key_middleware(app: ASGIApp) -> ASGIApp:
    async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
        await api_key_guard(ASGIConnection(scope), scope["route_handler"])
        await app(scope, receive, send)

    return middleware
