"""How errors become responses. Every body is a `Problem` (status code, detail, and for bad input
the list of fields with the reason); nothing the client sends can cause a 500.
"""

from __future__ import annotations

import logging
import re

from litestar import MediaType, Request, Response
from litestar.exceptions import HTTPException, ValidationException
from litestar.status_codes import (
    HTTP_400_BAD_REQUEST,
    HTTP_404_NOT_FOUND,
    HTTP_409_CONFLICT,
    HTTP_500_INTERNAL_SERVER_ERROR,
    HTTP_503_SERVICE_UNAVAILABLE,
    HTTP_504_GATEWAY_TIMEOUT,
)

from fraud_serving.schemas import Problem
from fraud_serving.services.entities import EntityNotFoundError
from fraud_serving.services.labels import OrderNotFoundError
from fraud_serving.services.models import ModelUnavailableError
from fraud_serving.services.scoring import InvalidInputError, OrderConflictError
from fraud_serving.services.store import CommitUnknownError, StoreUnavailableError

log = logging.getLogger(__name__)

_AT_PATH = re.compile(r"\s*-\s*at\s*`\$\.?(?P<path>[^`]*)`\s*$")
_NAMED_FIELD = re.compile(r"(?:missing required|unknown) field `(?P<name>[^`]+)`")
_CHECKED_FIELD = re.compile(r"^(?P<name>[a-z_]+) must ")  # a struct's own check names its field


def _problem(
    status: int, detail: str, errors: list[dict[str, str]] | None = None, headers=None
) -> Response:
    return Response(
        Problem(status_code=status, detail=detail, errors=errors or []),
        status_code=status,
        media_type=MediaType.JSON,
        headers=headers,
    )


def _field_errors(exc: ValidationException) -> list[dict[str, str]]:
    """[{field, reason}] from Litestar's `extra` ({message, key, source}) or a bare message."""
    items = exc.extra if isinstance(exc.extra, list) else []
    out = []
    for item in items:
        if not isinstance(item, dict):
            continue
        message = str(item.get("message", ""))
        field = str(item.get("key", "")) or "body"
        match = _AT_PATH.search(message)
        if match:  # msgspec names the exact place inside the body
            message = message[: match.start()]
            field = match.group("path") or field
        named = _NAMED_FIELD.search(message) or _CHECKED_FIELD.search(message)
        if named:  # the field is the missing or unknown one, inside the object at `field`
            inner = named.group("name")
            field = inner if field in ("data", "body", "") else f"{field}.{inner}"
        source = item.get("source", "body")
        out.append(
            {"field": field, "reason": message, "source": str(getattr(source, "value", source))}
        )
    if not out:
        message = str(exc.detail)
        match = _AT_PATH.search(message)
        field = (match.group("path") or "body") if match else "body"
        out.append(
            {
                "field": field,
                "reason": message[: match.start()] if match else message,
                "source": "body",
            }
        )
    return out


def validation_error(_: Request, exc: ValidationException) -> Response:
    return _problem(HTTP_400_BAD_REQUEST, "invalid request", _field_errors(exc))


def invalid_input(_: Request, exc: InvalidInputError) -> Response:
    return _problem(
        HTTP_400_BAD_REQUEST,
        "invalid request",
        [{"field": exc.field, "reason": exc.reason, "source": "body"}],
    )


def store_unavailable(_: Request, exc: StoreUnavailableError) -> Response:
    return _problem(HTTP_503_SERVICE_UNAVAILABLE, str(exc), headers={"Retry-After": "1"})


def commit_unknown(_: Request, exc: CommitUnknownError) -> Response:
    return _problem(HTTP_504_GATEWAY_TIMEOUT, str(exc), headers={"Retry-After": "1"})


def model_unavailable(_: Request, exc: ModelUnavailableError) -> Response:
    return _problem(HTTP_503_SERVICE_UNAVAILABLE, str(exc), headers={"Retry-After": "5"})


def conflict(_: Request, exc: OrderConflictError) -> Response:
    return _problem(
        HTTP_409_CONFLICT, str(exc), [{"field": "order_id", "reason": str(exc), "source": "body"}]
    )


def not_found(_: Request, exc: LookupError) -> Response:
    return _problem(HTTP_404_NOT_FOUND, str(exc.args[0]) if exc.args else "not found")


def http_error(_: Request, exc: HTTPException) -> Response:
    return _problem(exc.status_code, str(exc.detail), headers=exc.headers)


def internal_error(request: Request, exc: Exception) -> Response:
    log.exception("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    return _problem(HTTP_500_INTERNAL_SERVER_ERROR, "internal error")


EXCEPTION_HANDLERS = {
    ValidationException: validation_error,
    InvalidInputError: invalid_input,
    StoreUnavailableError: store_unavailable,
    CommitUnknownError: commit_unknown,
    ModelUnavailableError: model_unavailable,
    OrderConflictError: conflict,
    OrderNotFoundError: not_found,
    EntityNotFoundError: not_found,
    HTTPException: http_error,
    Exception: internal_error,
}
