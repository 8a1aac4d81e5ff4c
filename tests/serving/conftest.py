"""Fixtures of the serving tests: the real Redis (127.0.0.1:6379, else a private redis-server)
under a unique key prefix per test, a registry with a small deployed model, and the app over
HTTP through Litestar's TestClient (lifespan included)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from litestar.testing import TestClient

from fraud_core.model.artifact import ModelCard
from fraud_core.redis_server import ensure_redis
from fraud_serving.app import create_app
from fraud_serving.settings import Settings

from .support import delete_prefix, deploy, trained_booster

API_KEY = "test-key"
REDIS_MODES = ["single", "cluster"]


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    handle = ensure_redis()
    yield handle.url
    handle.stop()


@pytest.fixture
def redis_mode(request: pytest.FixtureRequest) -> str:
    """`single` (the default) or `cluster`: a test runs in both with
    `@pytest.mark.parametrize("redis_mode", REDIS_MODES, indirect=True)`."""
    return getattr(request, "param", "single")


@pytest.fixture
def store_url(redis_mode: str, request: pytest.FixtureRequest) -> str:
    """The Redis the service uses: the single one, or a node of the session's cluster."""
    if redis_mode == "cluster":
        return request.getfixturevalue("redis_cluster").url
    return request.getfixturevalue("redis_url")


@pytest.fixture
def prefix(store_url: str, redis_mode: str) -> Iterator[str]:
    value = f"test:{uuid.uuid4().hex}:"
    yield value
    delete_prefix(store_url, value, cluster=redis_mode == "cluster")


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    return tmp_path


@pytest.fixture
def model(data_dir: Path) -> ModelCard:
    return deploy(data_dir / "models", trained_booster())


@pytest.fixture
def settings(
    data_dir: Path, store_url: str, redis_mode: str, prefix: str, model: ModelCard
) -> Settings:
    return Settings(
        api_keys=frozenset({API_KEY}),
        redis_url=store_url,
        redis_cluster=redis_mode == "cluster",
        key_prefix=prefix,
        data_dir=data_dir,
        model_poll_s=0.1,
    )


@pytest.fixture
def client(settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(settings)) as test_client:
        test_client.headers["X-API-Key"] = API_KEY
        yield test_client
