"""The review console under `/console` (issue 18): server-rendered pages (Jinja templates, plain
forms, one small script for keyboard shortcuts; no front-end build) where analysts work the
review queue, read why an order was flagged, give verdicts and put entities on lists.

Sign-in takes an API key of the analyst role or above (`fraud_core.access`); the session is an
encrypted, HttpOnly, SameSite=Strict cookie holding the key's id and a fingerprint of it (never
the key), checked against the configured keys on every request, so a removed or replaced key
ends its sessions. Every form carries a CSRF token (Litestar's CSRF middleware on this router
only: the `/v1` API uses keys, not cookies). Templates escape every value (autoescape); pages
send a Content-Security-Policy that allows only the console's own script and style.
"""

from __future__ import annotations

import hashlib
import posixpath
import time
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urlsplit

from litestar import Controller, Request, Response, Router, get, post
from litestar.config.csrf import CSRFConfig
from litestar.datastructures import ResponseHeader
from litestar.di import NamedDependency
from litestar.exceptions import (
    MethodNotAllowedException,
    NotAuthorizedException,
    NotFoundException,
    PermissionDeniedException,
    TooManyRequestsException,
)
from litestar.middleware import DefineMiddleware
from litestar.middleware.csrf import CSRFMiddleware
from litestar.middleware.rate_limit import RateLimitConfig
from litestar.middleware.session.base import SessionMiddleware
from litestar.middleware.session.client_side import ClientSideSessionBackend, CookieBackendConfig
from litestar.params import FromQuery
from litestar.response import Redirect, Template
from litestar.static_files import create_static_files_router
from litestar.status_codes import (
    HTTP_303_SEE_OTHER,
    HTTP_400_BAD_REQUEST,
    HTTP_401_UNAUTHORIZED,
    HTTP_403_FORBIDDEN,
    HTTP_404_NOT_FOUND,
    HTTP_405_METHOD_NOT_ALLOWED,
    HTTP_429_TOO_MANY_REQUESTS,
    HTTP_503_SERVICE_UNAVAILABLE,
)
from litestar.types import ASGIApp

from fraud_core.access import ANALYST, ApiKey, allows
from fraud_core.policy.lists import LIST_NAMES
from fraud_core.review import MAX_PER_PAGE, FilterError, QueueFilter
from fraud_serving.lifespan import Services
from fraud_serving.services.scoring import InvalidInputError
from fraud_serving.services.store import StoreUnavailableError
from fraud_serving.settings import Settings

CONSOLE = "/console"
STATIC = Path(__file__).parents[1] / "static"  # console.css, console.js
SESSION_KEY_ID, SESSION_PRINT, SESSION_AT = "key_id", "key_print", "signed_at"
SESSION_FLASH = "flash"  # the outcome of the last action, shown once on the next page
VERDICTS = {"fraud": True, "legitimate": False}
MAX_NOTE = 500
MAX_LIST_DAYS = 3650  # a list entry's expiry, as the API's ttl_s allows (ten years)

# The console's own script and style only; no inline code, no frames, forms post to itself.
SECURITY_HEADERS = [
    ResponseHeader(
        name="Content-Security-Policy",
        value=(
            "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
            "form-action 'self'; frame-ancestors 'none'; base-uri 'none'; object-src 'none'"
        ),
    ),
    ResponseHeader(name="X-Content-Type-Options", value="nosniff"),
    ResponseHeader(name="X-Frame-Options", value="DENY"),
    ResponseHeader(name="Referrer-Policy", value="same-origin"),
    ResponseHeader(name="Cache-Control", value="no-store"),
]


def session_middleware(app: ASGIApp, *, secret: bytes, max_age_s: int, secure: bool) -> ASGIApp:
    """The console's session: an AES-GCM encrypted cookie (Litestar's cookie backend), HttpOnly,
    SameSite=Strict, scoped to /console. Built when the app is (Litestar deep-copies routers, and
    the cookie's cipher cannot be copied)."""
    config = CookieBackendConfig(
        secret=secret,
        key="fraud_console",
        path=CONSOLE,
        max_age=max_age_s,
        httponly=True,
        samesite="strict",
        secure=secure,
    )
    return SessionMiddleware(app, backend=ClientSideSessionBackend(config=config))


class SignInRequired(NotAuthorizedException):
    """No valid console session: the page redirects to the sign-in form."""


def key_print(key: ApiKey) -> str:
    """A fingerprint of the key for the session: a replaced key ends the sessions it opened."""
    return hashlib.sha256(b"console-session:" + key.digest).hexdigest()[:32]


def session_key(request: Request) -> ApiKey | None:
    """The analyst key behind this request's session, if it is still configured."""
    session = request.session if "session" in request.scope else {}
    key_id, printed = session.get(SESSION_KEY_ID), session.get(SESSION_PRINT)
    if not key_id or not printed:
        return None
    # the cookie is renewed with every page; the sign-in itself lasts console_session_s
    signed_at = session.get(SESSION_AT)
    lifetime = request.app.state.settings.console_session_s
    if not isinstance(signed_at, int | float) or not 0 <= time.time() - signed_at <= lifetime:
        return None
    for key in request.app.state.settings.key_ring.keys:
        if key.id == key_id and key_print(key) == printed and allows(key.role, ANALYST):
            return key
    return None


async def console_guard(connection: Any, _: Any) -> None:
    key = session_key(connection)
    if key is None:
        raise SignInRequired("sign in first")
    connection.state.console_key = key


def _safe_next(target: str | None, default: str = f"{CONSOLE}/queue") -> str:
    """Only a page of the console on this host: no scheme or host (`//evil`, `https://`), no
    way out of /console (`/console/../v1`), no backslash (read as a slash by browsers)."""
    if not target or "\\" in target:
        return default
    parts = urlsplit(target)
    path = posixpath.normpath(parts.path) if parts.path else ""
    if parts.scheme or parts.netloc or not (path == CONSOLE or path.startswith(f"{CONSOLE}/")):
        return default
    return path + (f"?{parts.query}" if parts.query else "")


def _page(request: Request, name: str, status: int = 200, **context: Any) -> Template:
    key: ApiKey | None = getattr(request.state, "console_key", None)
    return Template(
        template_name=f"console/{name}",
        context={"key_id": key.id if key else None, "path": request.url.path, **context},
        status_code=status,
        # the router's headers do not reach what its exception handlers answer: given here too
        headers={h.name: h.value for h in SECURITY_HEADERS if h.value is not None},
    )


def _error_page(status: int, title: str):
    def handle(request: Request, exc: Exception) -> Response:
        if isinstance(exc, InvalidInputError):
            detail = f"{exc.field}: {exc.reason}"
        elif isinstance(exc, StoreUnavailableError):
            detail = "The online store (Redis) did not answer; try again in a moment."
        else:
            detail = str(getattr(exc, "detail", "") or exc)
        return _page(request, "error.html", status, title=title, detail=detail)

    return handle


def _sign_in_redirect(request: Request, _: Exception) -> Response:
    # back to the page after signing in; a form posted from an expired session goes back to
    # the queue (the form's route only takes a POST: its action is not repeated)
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    if request.method != "GET":
        target = f"{CONSOLE}/queue"
    query = urlencode({"next": _safe_next(target, CONSOLE)})
    return Redirect(f"{CONSOLE}/login?{query}", status_code=HTTP_303_SEE_OTHER)


CONSOLE_EXCEPTION_HANDLERS = {
    SignInRequired: _sign_in_redirect,
    PermissionDeniedException: _error_page(HTTP_403_FORBIDDEN, "Refused"),  # no CSRF token too
    NotFoundException: _error_page(HTTP_404_NOT_FOUND, "Not found"),
    MethodNotAllowedException: _error_page(HTTP_405_METHOD_NOT_ALLOWED, "Not allowed"),
    TooManyRequestsException: _error_page(HTTP_429_TOO_MANY_REQUESTS, "Too many sign-in tries"),
    InvalidInputError: _error_page(HTTP_400_BAD_REQUEST, "Bad input"),
    StoreUnavailableError: _error_page(HTTP_503_SERVICE_UNAVAILABLE, "Online store unavailable"),
}


def _text(form: Any, name: str, limit: int = MAX_NOTE) -> str:
    value = form.get(name) or ""
    if not isinstance(value, str):
        raise InvalidInputError(name, "must be text")
    value = value.strip()
    if len(value) > limit:
        raise InvalidInputError(name, f"at most {limit} characters")
    return value


def _required(params: Any, name: str) -> str:
    value = _text(params, name, 300)
    if not value:
        raise InvalidInputError(name, "required")
    return value


def _verdict(form: Any) -> bool:
    word = _text(form, "verdict", 20)
    if word not in VERDICTS:
        raise InvalidInputError("verdict", f"must be one of {', '.join(VERDICTS)}; got {word!r}")
    return VERDICTS[word]


def _optional_float(value: str | None, name: str) -> float | None:
    if value is None or not value.strip():
        return None
    try:
        return float(value)
    except ValueError:
        raise InvalidInputError(name, f"not a number: {value!r}") from None


def _filter(params: Any) -> QueueFilter:
    day_text = (params.get("day") or "").strip()
    try:
        day = date.fromisoformat(day_text) if day_text else None
    except ValueError:
        raise InvalidInputError("day", f"not a date (YYYY-MM-DD): {day_text!r}") from None
    page_text = (params.get("page") or "1").strip()
    if not page_text.isdigit():
        raise InvalidInputError("page", f"not a page number: {page_text!r}")
    try:
        return QueueFilter(
            day=day,
            segment=params.get("segment") or None,
            rule=params.get("rule") or None,
            model_version=params.get("model") or None,
            min_amount=_optional_float(params.get("min_amount"), "min_amount"),
            max_amount=_optional_float(params.get("max_amount"), "max_amount"),
            sort=params.get("sort") or "risk",
            page=int(page_text),
        )
    except FilterError as err:
        raise InvalidInputError(err.field, err.reason) from None


def _marked_query(outcomes: list) -> str:
    done = sum(1 for o in outcomes if o.result == "marked")
    same = sum(1 for o in outcomes if o.result == "unchanged")
    refused = [f"{o.order_id}: {o.detail}" for o in outcomes if o.result == "refused"]
    message = f"{done} marked" + (f", {same} unchanged" if same else "")
    if refused:
        message += "; refused " + "; ".join(refused[:5])
    return message


def _back_to(request: Request, target: str, message: str) -> Redirect:
    """To `target`, with a message for that page kept in the session (a link cannot put text
    on a page)."""
    request.session[SESSION_FLASH] = message[:MAX_NOTE]
    return Redirect(target, status_code=HTTP_303_SEE_OTHER)


def _flashed(request: Request) -> str:
    return str(request.session.pop(SESSION_FLASH, "") or "")


def _is_sign_in(request: Request) -> bool:
    return request.method == "POST"


# Guessing keys through the form: at most this many tries a minute from one address (per worker
# process; the keys themselves are long random strings)
SIGN_IN_TRIES_PER_MINUTE = 10


class LoginController(Controller):
    path = f"{CONSOLE}/login"
    include_in_schema = False
    middleware = (
        RateLimitConfig(
            rate_limit=("minute", SIGN_IN_TRIES_PER_MINUTE),
            check_throttle_handler=_is_sign_in,
            store="console_sign_in",
        ).middleware,
    )

    @get("/")
    async def login_form(self, request: Request, next: FromQuery[str | None] = None) -> Template:
        return _page(request, "login.html", next=_safe_next(next, CONSOLE), error="")

    @post("/", status_code=HTTP_303_SEE_OTHER)
    async def login(self, request: Request) -> Response:
        form = await request.form()
        given = form.get("key") or ""
        target = _safe_next(form.get("next"), CONSOLE)
        key = request.app.state.settings.key_ring.match(str(given).strip().encode())
        if key is None or not allows(key.role, ANALYST):
            # one message for both: the page does not tell which keys exist
            return _page(
                request,
                "login.html",
                HTTP_401_UNAUTHORIZED,
                next=target,
                error="Unknown key, or a key without the analyst role.",
            )
        request.set_session(
            {SESSION_KEY_ID: key.id, SESSION_PRINT: key_print(key), SESSION_AT: time.time()}
        )
        return Redirect(target, status_code=HTTP_303_SEE_OTHER)


class ConsoleController(Controller):
    path = CONSOLE
    include_in_schema = False
    guards = (console_guard,)

    @post("/logout", status_code=HTTP_303_SEE_OTHER)
    async def logout(self, request: Request) -> Redirect:
        request.clear_session()
        return Redirect(f"{CONSOLE}/login", status_code=HTTP_303_SEE_OTHER)

    @get("/")
    async def overview(self, request: Request, services: NamedDependency[Services]) -> Template:
        counts, page = await services.review.overview()
        performance = services.review.performance()
        return _page(
            request,
            "overview.html",
            counts=list(counts.items())[:7],
            backlog=page.backlog,
            pending=page.pending,
            performance=performance,
            model=services.models.current.version if services.models.current else "none",
            policy=services.policies.current.version,
        )

    @get("/queue")
    async def queue(self, request: Request, services: NamedDependency[Services]) -> Template:
        wanted = _filter(request.query_params)
        page = await services.review.queue(wanted)
        params = {k: v for k, v in request.query_params.items() if k != "page" and v}
        kept = {k: v for k, v in request.query_params.items() if v}
        return _page(
            request,
            "queue.html",
            page=page,
            wanted=wanted,
            params=params,
            query=urlencode(params),
            # where a verdict returns to: this page without the last verdict's message
            here=f"{request.url.path}?{urlencode(kept)}" if kept else request.url.path,
            message=_flashed(request),
        )

    @post("/queue/verdict", status_code=HTTP_303_SEE_OTHER)
    async def bulk_verdict(self, request: Request, services: NamedDependency[Services]) -> Redirect:
        form = await request.form()
        order_ids = [str(o) for o in form.getall("order_id", [])]
        if not order_ids:
            raise InvalidInputError("order_id", "choose at least one order")
        if len(order_ids) > MAX_PER_PAGE:
            raise InvalidInputError("order_id", f"at most {MAX_PER_PAGE} orders at once")
        outcomes = await services.review.mark(
            order_ids, _verdict(form), _text(form, "note"), request.state.console_key.id
        )
        return _back_to(request, _safe_next(form.get("next")), _marked_query(outcomes))

    @get("/order")
    async def order(self, request: Request, services: NamedDependency[Services]) -> Template:
        order_id = _required(request.query_params, "id")
        view = await services.review.order(order_id)
        if view is None:
            raise NotFoundException(
                f"order {order_id!r} is neither in the review window nor among stored answers"
            )
        return _page(
            request,
            "order.html",
            order=view,
            lists=LIST_NAMES,
            back=_safe_next(request.query_params.get("back")),
            message=_flashed(request),
        )

    @post("/order/verdict", status_code=HTTP_303_SEE_OTHER)
    async def verdict(self, request: Request, services: NamedDependency[Services]) -> Redirect:
        form = await request.form()
        order_id = _required(form, "order_id")
        outcomes = await services.review.mark(
            [order_id], _verdict(form), _text(form, "note"), request.state.console_key.id
        )
        return _back_to(request, _safe_next(form.get("next")), _marked_query(outcomes))

    @post("/order/list", status_code=HTTP_303_SEE_OTHER)
    async def add_to_list(self, request: Request, services: NamedDependency[Services]) -> Redirect:
        form = await request.form()
        order_id = _required(form, "order_id")
        days = _optional_float(form.get("days"), "days")
        if days is not None and not 0 < days <= MAX_LIST_DAYS:
            raise InvalidInputError(
                "days", f"more than 0 and at most {MAX_LIST_DAYS} (or empty: no expiry)"
            )
        list_name = _text(form, "list", 20)
        kind = _text(form, "kind", 100)
        await services.review.add_to_list(
            list_name,
            kind,
            _text(form, "key", 300),
            _text(form, "reason") or f"from the review of order {order_id}",
            request.state.console_key.id,
            None if days is None else days * 86_400,
        )
        target = f"{CONSOLE}/order?{urlencode({'id': order_id})}"
        return _back_to(request, target, f"{kind} added to the {list_name} list")

    @get("/entity")
    async def entity(self, request: Request, services: NamedDependency[Services]) -> Template:
        kind = _required(request.query_params, "kind")
        line = await services.review.timeline(kind, _required(request.query_params, "key"))
        return _page(request, "entity.html", line=line, now=datetime.now(UTC))


def console_router(settings: Settings) -> Router:
    """The console's pages, its static files, and what only they need: the session and CSRF
    middleware (the scoring API neither reads cookies nor pays for them), HTML error pages and
    the security headers."""
    return Router(
        path="/",
        route_handlers=[
            LoginController,
            ConsoleController,
            create_static_files_router(
                path=f"{CONSOLE}/static", directories=[STATIC], include_in_schema=False
            ),
        ],
        middleware=[
            DefineMiddleware(
                session_middleware,
                secret=settings.console_secret,
                max_age_s=settings.console_session_s,
                secure=settings.console_secure_cookie,
            ),
            DefineMiddleware(
                CSRFMiddleware,
                config=CSRFConfig(
                    secret=settings.console_secret.hex(),
                    cookie_name="fraud_console_csrf",
                    cookie_path=CONSOLE,
                    cookie_httponly=True,
                    cookie_samesite="strict",
                    cookie_secure=settings.console_secure_cookie,
                ),
            ),
        ],
        exception_handlers=CONSOLE_EXCEPTION_HANDLERS,
        response_headers=SECURITY_HEADERS,
        include_in_schema=False,
    )
