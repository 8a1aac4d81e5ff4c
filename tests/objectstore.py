"""A local S3-compatible server for the tests: moto in server mode (`moto_server`) on a free
loopback port, started once per session and stopped by its PID. Clients find it through the
standard AWS variables (`AWS_ENDPOINT_URL`, test credentials), as s3fs, universal-pathlib and
pyarrow all read them: nothing in the project names the endpoint."""

from __future__ import annotations

import contextlib
import shutil
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

from fraud_core.net import free_port

MOTO = Path(sys.executable).with_name("moto_server")


def s3_env(endpoint: str) -> dict[str, str]:
    """What a process needs to reach the server (test credentials: moto accepts any)."""
    return {
        "AWS_ENDPOINT_URL": endpoint,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
    }


@contextlib.contextmanager
def moto_server(timeout_s: float = 30.0) -> Iterator[str]:
    """`moto_server` on 127.0.0.1, its endpoint URL once it answers; stopped afterwards."""
    binary = str(MOTO) if MOTO.exists() else shutil.which("moto_server")
    if binary is None:
        raise RuntimeError("moto_server not found: install the project's dev extra")
    port = free_port()
    endpoint = f"http://127.0.0.1:{port}"
    process = subprocess.Popen(
        [binary, "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                with urllib.request.urlopen(f"{endpoint}/moto-api/", timeout=1):
                    break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"moto_server on {endpoint} did not start") from None
                time.sleep(0.1)
        yield endpoint
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)
