"""The scoring service's `/schema` page in a real Chromium, truly offline: the app runs under
uvicorn over real HTTP, every request to a host other than loopback is aborted, and Swagger UI
(served by the app from swagger-ui-bundle) must still render every operation of the service's
OpenAPI document, with no console error."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator

import httpx
import pytest
from playwright.sync_api import expect

from fraud_core.redis_server import ensure_redis
from fraud_serving.settings import Settings

from ..serving.support import app_in_thread, delete_prefix
from .support import OfflinePage

RENDER_TIMEOUT_MS = 15_000
METHODS = ("get", "put", "post", "delete", "patch", "head", "options")
METHOD_CLASS = re.compile(r"\bopblock-({})\b".format("|".join(METHODS)))


@pytest.fixture(scope="module")
def service_url(tmp_path_factory) -> Iterator[str]:
    """The app under uvicorn in a thread on the real Redis (own key prefix, empty registry)."""
    redis = ensure_redis()
    prefix = f"test:browser:{uuid.uuid4().hex}:"
    settings = Settings(
        api_keys=frozenset({"test-key"}),
        redis_url=redis.url,
        key_prefix=prefix,
        data_dir=tmp_path_factory.mktemp("schema_page"),
    )
    try:
        with app_in_thread(settings) as url:
            yield url
    finally:
        delete_prefix(redis.url, prefix)
        redis.stop()


def _documented_operations(base_url: str) -> set[tuple[str, str]]:
    spec = httpx.get(f"{base_url}/schema/openapi.json", timeout=10).json()
    return {
        (method, path)
        for path, item in spec["paths"].items()
        for method in item
        if method in METHODS
    }


def test_schema_page_renders_every_operation_offline(
    offline_page: OfflinePage, service_url: str
) -> None:
    page = offline_page.page
    page.goto(f"{service_url}/schema")
    title = page.locator(".swagger-ui .info .title")
    refused = page.get_by_text("Unable to render this definition")
    expect(title.or_(refused)).to_be_visible(timeout=RENDER_TIMEOUT_MS)
    expect(title).to_contain_text("Fraud scoring service", timeout=1_000)
    score = page.locator('.opblock-post .opblock-summary-path[data-path="/v1/score"]')
    expect(score).to_be_visible(timeout=RENDER_TIMEOUT_MS)

    shown = {
        (
            METHOD_CLASS.search(block.get_attribute("class") or "").group(1),
            block.locator(".opblock-summary-path").get_attribute("data-path"),
        )
        for block in page.locator(".opblock").all()
        if block.is_visible()
    }
    assert shown == _documented_operations(service_url)
    guard = offline_page.guard
    assert (guard.left_loopback, guard.console_errors) == ([], []), "requests left loopback, errors"
