"""Browser tests: every test in this folder is `browser` and drives one headless Chromium,
started once for them through Playwright with `executable_path` (Debian's chromium at
/usr/bin/chromium, or `$FRAUD_CHROMIUM`) and closed after the last of them.

Without that binary the tests are skipped with the command that installs it; under CI (`$CI`
set) they fail instead, since a CI machine without the browser has lost an install step
(`.ci/run` installs it). The collection report names the browser, or the tests that need it.
"""

from __future__ import annotations

import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from .support import (
    INSTALL_HINT,
    Chromium,
    OfflinePage,
    Process,
    chromium_path,
    in_ci,
    missing_chromium,
    offline_context,
    start_dagster_webserver,
)

if TYPE_CHECKING:
    from playwright.sync_api import Browser

HERE = Path(__file__).parent


def _browser_items(items: list[pytest.Item]) -> list[pytest.Item]:
    # Session-wide hooks of this conftest see every collected test, not only this folder's.
    return [item for item in items if HERE in Path(item.path).parents]


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    problem = missing_chromium()
    for item in _browser_items(items):
        item.add_marker(pytest.mark.browser)
        if problem and not in_ci():
            item.add_marker(pytest.mark.skip(reason=problem))


def _version(path: Path) -> str:
    try:
        out = subprocess.run(
            [str(path), "--version"], capture_output=True, text=True, timeout=30, check=False
        ).stdout
    except (OSError, subprocess.TimeoutExpired):
        return "version unknown"
    return out.strip().splitlines()[0] if out.strip() else "version unknown"


def pytest_report_collectionfinish(config: pytest.Config, items: list[pytest.Item]) -> str | None:
    selected = _browser_items(items)
    if not selected:
        return None
    if missing_chromium() is None:
        return f"browser tests: {len(selected)} on {_version(chromium_path())} ({chromium_path()})"
    then = "they FAIL (CI is set)" if in_ci() else "they are skipped"
    return (
        f"browser tests: {len(selected)} need Chromium and there is none at {chromium_path()}; "
        f"{then}. Install it with {INSTALL_HINT}"
    )


def pytest_terminal_summary(terminalreporter, exitstatus: int, config: pytest.Config) -> None:
    if missing_chromium() is None:
        return
    folder = HERE.relative_to(config.rootpath).as_posix() + "/"
    not_run = [
        report.nodeid
        for outcome in ("skipped", "error", "failed")
        for report in terminalreporter.stats.get(outcome, [])
        if getattr(report, "nodeid", "").startswith(folder)
    ]
    if not_run:
        terminalreporter.section("tests that need a browser")
        terminalreporter.write_line(
            f"no Chromium at {chromium_path()}: install it with {INSTALL_HINT}"
        )
        for nodeid in dict.fromkeys(not_run):
            terminalreporter.write_line(f"  {nodeid}")


# The one Chromium of a test run. Playwright's sync API marks an asyncio loop as running in this
# thread while it is started (so asyncio.run() fails), hence it is closed after the last browser
# test in a row, not at the end of the session that runs every other test after these.
CHROMIUM = pytest.StashKey[Chromium]()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_teardown(item: pytest.Item, nextitem: pytest.Item | None):
    try:
        return (yield)
    finally:
        if nextitem is None or HERE not in Path(nextitem.path).parents:
            item.config.stash.setdefault(CHROMIUM, Chromium()).close()


def pytest_sessionfinish(session: pytest.Session) -> None:
    session.config.stash.setdefault(CHROMIUM, Chromium()).close()


@pytest.fixture
def browser(pytestconfig: pytest.Config) -> Browser:
    """The run's headless Chromium (a Playwright `Browser`): started by the first browser test,
    shared by the ones that follow it, closed after the last of them."""
    problem = missing_chromium()
    if problem and in_ci():
        pytest.fail(f"{problem} (CI must run the browser tests)", pytrace=False)
    if problem:
        pytest.skip(problem)
    return pytestconfig.stash.setdefault(CHROMIUM, Chromium()).get()


@pytest.fixture
def offline_page(browser: Browser) -> Iterator[OfflinePage]:
    """A page in a context of its own that cannot leave loopback (closed after the test)."""
    context, guard = offline_context(browser)
    try:
        yield OfflinePage(context.new_page(), guard)
    finally:
        context.close()


@pytest.fixture
def dagster_ui(tmp_path: Path) -> Iterator[Callable[[Path, Path], str]]:
    """`dagster_ui(dagster_home, data_dir)` starts `dagster-webserver` on the project's
    workspace for that instance and data folder and returns its URL once the code location is
    loaded; every webserver started is stopped (by its PID's process group) after the test."""
    started: list[Process] = []

    def start(dagster_home: Path, data_dir: Path) -> str:
        log = tmp_path / f"dagster-webserver-{len(started)}.log"
        started.append(start_dagster_webserver(dagster_home, data_dir, log))
        return started[-1].url

    try:
        yield start
    finally:
        for server in started:
            server.stop()
