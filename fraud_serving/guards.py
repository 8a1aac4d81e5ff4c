"""The API key guard of `/v1/*`: an `X-API-Key` header equal to one of `FRAUD_API_KEYS`."""

from __future__ import annotations

import hmac

from litestar.connection import ASGIConnection
from litestar.exceptions import NotAuthorizedException
from litestar.handlers.base import BaseRouteHandler

from fraud_core.decision_log import key_id

API_KEY_HEADER = "X-API-Key"
SECURITY_SCHEME = "ApiKey"


async def api_key_guard(connection: ASGIConnection, _: BaseRouteHandler) -> None:
    # async: Litestar runs a sync guard in a worker thread, which costs more than the check
    given = connection.headers.get(API_KEY_HEADER, "").encode("utf-8", "replace")
    keys = connection.app.state.settings.api_keys
    # compare with every key, in constant time, so timing tells nothing about a key
    matched = [key for key in keys if hmac.compare_digest(given, key.encode())]
    if not given or not matched:
        raise NotAuthorizedException(f"missing or unknown {API_KEY_HEADER} header")
    # who asked, for the decision log: the key's public id, never the key
    connection.state.api_key_id = key_id(matched[0])


def request_key_id(connection: ASGIConnection) -> str:
    """The public id of the API key that passed `api_key_guard` ("" before it ran)."""
    return getattr(connection.state, "api_key_id", "")
