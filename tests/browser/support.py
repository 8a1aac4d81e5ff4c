"""Real servers and an offline Chromium for the browser tests and `docs/screenshots.py`: where
the browser is, the Dagster webserver for a given DAGSTER_HOME (its own process group, stopped
by PID), the scoring service, and a guard that aborts every request leaving loopback and records
it with the pages' console errors.

Chromium is Debian's package (`apt-get install chromium`), or the binary in `$FRAUD_CHROMIUM`:
Playwright's own browser download needs hosts this project's machines cannot reach.
"""

from __future__ import annotations

import contextlib
import ipaddress
import os
import shutil
import signal
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

import httpx

from fraud_core.net import free_port

from ..serving.support import wait_for

if TYPE_CHECKING:  # Playwright is imported where a browser is started
    from playwright.sync_api import Browser, BrowserContext, Page, Playwright, Request, Route

PROJECT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
CHROMIUM_ENV = "FRAUD_CHROMIUM"
DEFAULT_CHROMIUM = "/usr/bin/chromium"
INSTALL_HINT = f"`apt-get install chromium` (Debian), or set {CHROMIUM_ENV} to a Chromium binary"
WEBSERVER_START_TIMEOUT_S = 120  # the code server imports the project: 10-20 s on 2 busy cores


def chromium_path() -> Path:
    return Path(os.environ.get(CHROMIUM_ENV) or DEFAULT_CHROMIUM)


def missing_chromium() -> str | None:
    """Why no browser test can run here, or None when the Chromium binary is there."""
    path = chromium_path()
    if path.is_file() and os.access(path, os.X_OK):
        return None
    return f"no Chromium at {path}: install it with {INSTALL_HINT}"


class Chromium:
    """One headless Chromium through Playwright's sync API, started on first use and closed
    on `close()` (which a later `get()` undoes by starting a new one)."""

    def __init__(self) -> None:
        self._playwright: Playwright | None = None
        self._browser: Browser | None = None

    def get(self) -> Browser:
        if self._browser is None:
            from playwright.sync_api import sync_playwright

            self._playwright = sync_playwright().start()
            try:
                self._browser = self._playwright.chromium.launch(
                    executable_path=str(chromium_path())
                )
            except BaseException:
                self.close()
                raise
        return self._browser

    def close(self) -> None:
        browser, playwright = self._browser, self._playwright
        self._browser = self._playwright = None
        try:
            if browser is not None:
                browser.close()
        finally:
            if playwright is not None:
                playwright.stop()


def in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


def _poll(predicate, timeout_s: float) -> object:
    """`predicate()`'s first truthy value within `timeout_s`, else False."""
    try:
        return wait_for(predicate, timeout_s, step_s=0.2)
    except AssertionError:
        return False


def is_loopback(url: str) -> bool:
    """True for URLs that stay on this machine: loopback hosts, and data:/blob:/about: URLs."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https", "ws", "wss"):
        return parts.scheme in ("data", "blob", "about")
    host = (parts.hostname or "").lower()
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@dataclass
class OfflineGuard:
    """What the pages of one browser context tried that an offline machine cannot do."""

    left_loopback: list[str] = field(default_factory=list)  # requests aborted
    console_errors: list[str] = field(default_factory=list)  # console.error and uncaught errors


def guard_offline(context: BrowserContext) -> OfflineGuard:
    """Abort every request of `context` to a host other than loopback, and record it together
    with the console errors and uncaught page errors, so a test can assert none happened."""
    guard = OfflineGuard()

    def route(route: Route) -> None:
        request: Request = route.request
        if is_loopback(request.url):
            route.continue_()
        else:
            guard.left_loopback.append(request.url)
            route.abort("internetdisconnected")

    context.route("**/*", route)
    context.on(
        "console",
        lambda message: (
            guard.console_errors.append(f"{message.text} ({message.location.get('url')})")
            if message.type == "error"
            else None
        ),
    )
    context.on("weberror", lambda error: guard.console_errors.append(str(error.error)))
    return guard


@dataclass
class OfflinePage:
    page: Page
    guard: OfflineGuard  # what the page tried outside loopback, and its console errors


# The Dagster UI's first-load "Join the Dagster community" dialog is shown while this key of the
# page's localStorage is unset (its own "Skip" button sets it, and also marks the instance).
NO_COMMUNITY_DIALOG = """
try { window.localStorage.setItem("communityNux", JSON.stringify("1")); } catch (e) {}
"""
VIEWPORT = {"width": 1600, "height": 1000}


def offline_context(browser: Browser) -> tuple[BrowserContext, OfflineGuard]:
    """A new browser context whose pages cannot leave loopback (see `guard_offline`) and never
    show Dagster's community dialog."""
    context = browser.new_context(viewport=VIEWPORT)
    context.add_init_script(NO_COMMUNITY_DIALOG)
    return context, guard_offline(context)


@dataclass
class Process:
    """A server started in its own process group; `stop()` ends the group by the PID."""

    name: str
    popen: subprocess.Popen
    url: str
    log: Path

    def stop(self, timeout_s: float = 20) -> None:
        if self.popen.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.popen.pid, signal.SIGTERM)
        try:
            self.popen.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.popen.pid, signal.SIGKILL)
            self.popen.wait(timeout=5)

    def tail(self, chars: int = 3000) -> str:
        return self.log.read_text(errors="replace")[-chars:] if self.log.exists() else ""


def _spawn(name: str, command: list[str], env: dict[str, str], log: Path, url: str) -> Process:
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("ab") as out:
        popen = subprocess.Popen(
            command,
            cwd=PROJECT,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # own process group: the code server goes with it
        )
    return Process(name, popen, url, log)


LOCATIONS_QUERY = """
{ workspaceOrError { __typename ... on Workspace { locationEntries {
    name loadStatus
    locationOrLoadError { __typename ... on PythonError { message } }
} } } }
"""


def _locations_loaded(url: str) -> bool | str:
    """True when every code location is loaded, an error text when one failed to load, False
    while the webserver does not answer or still loads."""
    try:
        answer = httpx.post(f"{url}/graphql", json={"query": LOCATIONS_QUERY}, timeout=5)
        entries = answer.json()["data"]["workspaceOrError"]["locationEntries"]
    except (httpx.HTTPError, ValueError, KeyError, TypeError):
        return False
    if not entries or any(e["loadStatus"] != "LOADED" for e in entries):
        return False
    errors = [
        f"{e['name']}: {e['locationOrLoadError'].get('message', '')}"
        for e in entries
        if (e["locationOrLoadError"] or {}).get("__typename") == "PythonError"
    ]
    return "; ".join(errors) or True


def start_dagster_webserver(
    dagster_home: Path,
    data_dir: Path,
    log: Path,
    workspace: Path = PROJECT / "workspace.yaml",
    timeout_s: float = WEBSERVER_START_TIMEOUT_S,
) -> Process:
    """`dagster-webserver` on a free loopback port for the instance in `dagster_home` and the
    project's code location, returned once the location is loaded (else stopped and raised)."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = dict(os.environ, DAGSTER_HOME=str(dagster_home), FRAUD_DATA_DIR=str(data_dir))
    command = [str(BIN / "dagster-webserver"), "-h", "127.0.0.1", "-p", str(port)]
    server = _spawn("dagster-webserver", [*command, "-w", str(workspace)], env, log, url)
    loaded = _poll(lambda: server.popen.poll() is not None or _locations_loaded(url), timeout_s)
    exited = server.popen.poll()
    if loaded is True and exited is None:
        return server
    server.stop()
    if isinstance(loaded, str):
        problem = f"the code location failed to load: {loaded}"
    elif exited is not None:
        problem = f"exited with code {exited}"
    else:
        problem = f"the code location was not loaded within {timeout_s:.0f} s"
    raise RuntimeError(f"dagster-webserver on {url}: {problem}; its log:\n{server.tail()}")


def start_fraud_serve(data_dir: Path, log: Path, timeout_s: float = 60) -> Process:
    """`fraud serve` on a free loopback port for the data folder (its model registry), ready."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = dict(os.environ, FRAUD_DATA_DIR=str(data_dir))
    env.setdefault("FRAUD_API_KEYS", "screenshots")  # else the service logs a generated key
    fraud = shutil.which("fraud", path=str(BIN)) or "fraud"
    command = [fraud, "serve", "--port", str(port), "--log-level", "warning"]
    server = _spawn("fraud serve", command, env, log, url)

    def ready() -> bool:
        if server.popen.poll() is not None:
            return True
        with contextlib.suppress(httpx.HTTPError):
            return httpx.get(f"{url}/health", timeout=2).status_code == 200
        return False

    if _poll(ready, timeout_s) and server.popen.poll() is None:
        return server
    server.stop()
    raise RuntimeError(f"fraud serve on {url} did not start; its log:\n{server.tail()}")
