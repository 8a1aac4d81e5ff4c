"""Loopback ports for the servers the platform starts itself (a private redis-server, the demo's
code server and scoring service) and the tests start."""

from __future__ import annotations

import random
import socket

_LOWEST = 20_000  # below the OS's ephemeral range (32768-60999 on Linux): fewer collisions


def free_port(offset: int = 0) -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago (the OS picks it). With `offset`, the
    port `offset` above it was free too (a Redis Cluster node listens on its port + 10,000 as
    well, so its port must be at most 55,535): picked at random, tried until both bind."""
    if not offset:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.bind(("127.0.0.1", 0))
            return sock.getsockname()[1]
    for _ in range(1_000):
        port = random.randint(_LOWEST, 65_535 - offset)
        if _bindable(port) and _bindable(port + offset):
            return port
    raise OSError(f"no free pair of loopback ports {offset} apart")


def _bindable(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True
