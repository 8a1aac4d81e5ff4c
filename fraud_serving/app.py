"""The scoring service's app factory: `fraud_serving.app:create_app`.

    uvicorn --factory fraud_serving.app:create_app      (or: fraud serve)

It only assembles: settings (read once from the environment unless given), routes, the API key
check on `/v1`, strict request bodies, error handlers, metrics middleware, OpenAPI at `/schema`,
the review console's router (`routes/console.py`) and its templates, and the lifespan that owns the Redis client, the model and the background tasks.
"""

from __future__ import annotations

import importlib.util
import logging
from pathlib import Path

from litestar import Litestar, Router
from litestar.datastructures import State
from litestar.openapi import OpenAPIConfig
from litestar.openapi.plugins import SwaggerRenderPlugin
from litestar.openapi.spec import Components, SecurityScheme
from litestar.plugins.jinja import JinjaTemplateEngine
from litestar.static_files import create_static_files_router
from litestar.template import TemplateConfig

from fraud_serving.auth import api_key_middleware
from fraud_serving.bodies import StrictJSONRequest
from fraud_serving.deps import DEPENDENCIES
from fraud_serving.errors import EXCEPTION_HANDLERS
from fraud_serving.guards import API_KEY_HEADER, SECURITY_SCHEME
from fraud_serving.lifespan import lifespan
from fraud_serving.metrics import ServiceMetrics, metrics_middleware
from fraud_serving.routes.console import console_router
from fraud_serving.routes.entities import entity_controller
from fraud_serving.routes.labels import LabelController
from fraud_serving.routes.model import ModelController
from fraud_serving.routes.ops import OpsController
from fraud_serving.routes.policy import AuditController, ListController, PolicyController
from fraud_serving.routes.review import ReviewController
from fraud_serving.routes.score import score_controller
from fraud_serving.schemas import order_types
from fraud_serving.settings import Settings

log = logging.getLogger("fraud_serving")

HERE = Path(__file__).parent
DOCS_ASSETS = "/schema/assets"  # Swagger UI's scripts and styles, served by the app itself


def swagger_ui_dir() -> Path:
    """Swagger UI 5's files as the `swagger-ui-py` package installs them (found, not imported:
    the package's own module pulls in Jinja and YAML, which the service does not need)."""
    spec = importlib.util.find_spec("swagger_ui")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("swagger-ui-py is not installed: pip install the project again")
    return Path(next(iter(spec.submodule_search_locations))) / "static"


def create_app(settings: Settings | None = None) -> Litestar:
    settings = settings or Settings.from_env()
    log.setLevel(settings.log_level)
    logging.getLogger("fraud_core").setLevel(settings.log_level)  # the audit's lines, say
    if settings.generated_api_key:
        log.warning(
            "FRAUD_API_KEYS is not set: generated the admin API key %s for this run",
            next(iter(settings.api_keys)).rpartition(":")[2],
        )
    elif settings.key_ring.has_legacy:
        log.warning(
            "FRAUD_API_KEYS holds keys without a role: they act as admin keys; "
            "write role:id:key entries (roles: scoring, analyst, admin) to narrow them"
        )
    if settings.console_secret_generated:
        log.warning(
            "FRAUD_CONSOLE_SECRET is not set: review console sign-ins hold in this process only "
            "(`fraud serve` shares one secret among its workers)"
        )
    metrics = ServiceMetrics()
    # Swagger UI 5 (it reads OpenAPI 3.1, which Litestar writes) from an installed package, not
    # from a CDN, favicon included, so /schema renders on a machine without internet; the other
    # viewers need a CDN: not served.
    docs_assets = create_static_files_router(
        path=DOCS_ASSETS, directories=[swagger_ui_dir()], include_in_schema=False
    )
    types = order_types(settings.contract)  # the order's fields and the kinds: the contract's
    v1 = Router(
        path="/v1",
        route_handlers=[
            score_controller(types),
            LabelController,
            entity_controller(types),
            ModelController,
            ListController,
            PolicyController,
            AuditController,
            ReviewController,
        ],
        middleware=[api_key_middleware],  # the API key check (not a guard: see auth.py)
        security=[{SECURITY_SCHEME: []}],
    )
    openapi = OpenAPIConfig(
        render_plugins=[
            SwaggerRenderPlugin(
                js_url=f"{DOCS_ASSETS}/swagger-ui-bundle.js",
                css_url=f"{DOCS_ASSETS}/swagger-ui.css",
                standalone_preset_js_url=f"{DOCS_ASSETS}/swagger-ui-standalone-preset.js",
                favicon=f"<link rel='icon' type='image/png' href='{DOCS_ASSETS}/favicon-32x32.png'>",
            )
        ],
        title="Fraud scoring service",
        version="1.0.0",
        description=(
            "Scores orders for fraud with behavioural features kept fresh in Redis. Orders have "
            f"the fields of the data contract {settings.contract.name!r}. Every /v1 route needs "
            f"the `{API_KEY_HEADER}` header."
        ),
        path="/schema",
        components=Components(
            security_schemes={
                SECURITY_SCHEME: SecurityScheme(
                    type="apiKey", name=API_KEY_HEADER, security_scheme_in="header"
                )
            }
        ),
    )
    return Litestar(
        route_handlers=[v1, OpsController, docs_assets, console_router(settings)],
        template_config=TemplateConfig(directory=HERE / "templates", engine=JinjaTemplateEngine),
        dependencies=DEPENDENCIES,
        exception_handlers=EXCEPTION_HANDLERS,
        middleware=[metrics_middleware(metrics)],
        lifespan=[lifespan],
        state=State({"settings": settings, "metrics": metrics}),
        openapi_config=openapi,
        request_max_body_size=settings.max_body_bytes,
        request_class=StrictJSONRequest,
        debug=False,
    )
