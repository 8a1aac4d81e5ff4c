"""The API key guard of `/v1/*`: an `X-API-Key` header equal to one of `FRAUD_API_KEYS`."""

from __future__ import annotations

import hmac

from litestar.connection import ASGIConnection
from litestar.exceptions import NotAuthorizedException
from litestar.handlers.base import BaseRouteHandler

API_KEY_HEADER = "X-API-Key"
SECURITY_SCHEME = "ApiKey"


async def api_key_guard(connection: ASGIConnection, _: BaseRouteHandler) -> None:
    # async: Litestar runs a sync guard in a worker thread, which costs more than the check
    given = connection.headers.get(API_KEY_HEADER, "").encode("utf-8", "replace")
    keys = connection.app.state.settings.api_keys
    # compare with every key, in constant time, so timing tells nothing about a key
    if not given or not any([hmac.compare_digest(given, key.encode()) for key in keys]):
        raise NotAuthorizedException(f"missing or unknown {API_KEY_HEADER} header")
