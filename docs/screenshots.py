"""Screenshots of the platform for the README, taken headless from the instance `make demo` left:

    make demo
    .venv/bin/python docs/screenshots.py            # writes docs/*.png

It starts `dagster-webserver` (the project's workspace, $DAGSTER_HOME, default ./.dagster) and
`fraud serve` ($FRAUD_DATA_DIR, default ./data) on free loopback ports, photographs the asset
lineage, the `fraud_model` and `feature_drift` asset pages, the daily job's runs, the
service's `/schema` and the review console's queue and first waiting order in Debian's Chromium ($FRAUD_CHROMIUM to use another), with every request
that would leave the machine aborted, and stops both servers by their PIDs. The servers and the
offline browser are the browser tests' own (tests/browser/support.py).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

PROJECT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(PROJECT))  # run as a script: the tests' helpers are imported from here

import httpx  # noqa: E402
from playwright.sync_api import Page, expect  # noqa: E402

from fraud_core.storage import DataLayout  # noqa: E402
from tests.browser.support import (  # noqa: E402
    VIEWPORT,
    Chromium,
    OfflineGuard,
    Process,
    missing_chromium,
    offline_context,
    start_dagster_webserver,
    start_fraud_serve,
)

LOCATION = "fraud_assets.definitions"  # workspace.yaml's code location
JOB = "daily_features_job"  # the landing sensor's job: the one that runs every day
PAGE_TIMEOUT_MS = 60_000
EXPANDED_VIEWPORT = {"width": 1600, "height": 2600}  # the lineage with every group expanded
COMMUNITY_DIALOG = "Join the Dagster community"
ASSETS_QUERY = "{ assetNodes { assetKey { path } groupName } }"


def asset_groups(dagster_url: str) -> dict[str, str]:
    """Asset name -> group name, as the webserver's code location defines them."""
    answer = httpx.post(f"{dagster_url}/graphql", json={"query": ASSETS_QUERY}, timeout=30)
    nodes = answer.json()["data"]["assetNodes"]
    return {"/".join(node["assetKey"]["path"]): node["groupName"] for node in nodes}


@dataclass(frozen=True)
class Shot:
    file: str
    server: str  # "dagster" or "service"
    path: str
    ready: Callable[[Page], None]  # waits for the content worth a picture


def _settled(page: Page) -> None:
    page.wait_for_load_state("networkidle", timeout=PAGE_TIMEOUT_MS)


def _lineage_ready(page: Page) -> None:
    parts = urlsplit(page.url)
    groups = asset_groups(f"{parts.scheme}://{parts.netloc}")
    for group in sorted(set(groups.values())):  # the graph is drawn, its groups collapsed
        expect(page.locator(f'[data-tooltip="{group}"]').first).to_be_visible()
    # expanded, the graph is taller than the window, and the UI draws only the nodes in view
    page.set_viewport_size(EXPANDED_VIEWPORT)
    page.keyboard.press("Alt+KeyE")  # the UI's "expand all groups"
    for name in groups:
        expect(page.get_by_text(name, exact=True).first).to_be_visible()
    _settled(page)


def _asset_ready(*metadata_keys: str) -> Callable[[Page], None]:
    def ready(page: Page) -> None:
        expect(page.get_by_text("Latest materialization")).to_be_visible()
        for key in metadata_keys:
            expect(page.get_by_text(key, exact=True).first).to_be_visible()
        _settled(page)

    return ready


def _runs_ready(page: Page) -> None:
    runs = page.locator('a[href^="/runs/"]').first
    expect(runs.or_(page.get_by_text("No runs found"))).to_be_visible()
    _settled(page)


def _schema_ready(page: Page) -> None:
    expect(page.locator(".swagger-ui .info .title")).to_contain_text("Fraud scoring service")
    expect(page.locator('.opblock-summary-path[data-path="/v1/score"]').first).to_be_visible()
    _settled(page)


def _service_key() -> str:
    """The key `start_fraud_serve` gives the service: $FRAUD_API_KEYS's first, else its own."""
    entries = [e.strip() for e in os.environ.get("FRAUD_API_KEYS", "").split(",") if e.strip()]
    return entries[0].rpartition(":")[2] if entries else "screenshots"


def _console(page: Page) -> None:
    """Signed in (the service's key is an admin key), on the queue page."""
    if "/console/login" in page.url:
        page.fill("#key", _service_key())
        page.click("button[type=submit]")
    expect(page.locator("#total")).to_be_visible()


def _queue_ready(page: Page) -> None:
    _console(page)
    _settled(page)


def _order_ready(page: Page) -> None:
    """The first order waiting in the queue (the demo leaves a few)."""
    _console(page)
    page.locator("a.order-link").first.click()
    expect(page.locator("#decision")).to_be_visible()
    _settled(page)


SHOTS = (
    Shot("asset-lineage.png", "dagster", "/asset-groups", _lineage_ready),
    Shot("fraud-model.png", "dagster", "/assets/fraud_model", _asset_ready("summary")),
    Shot("feature-drift.png", "dagster", "/assets/feature_drift", _asset_ready("max_psi")),
    Shot(f"{JOB}-runs.png", "dagster", f"/locations/{LOCATION}/jobs/{JOB}/runs", _runs_ready),
    Shot("service-schema.png", "service", "/schema", _schema_ready),
    Shot("review-queue.png", "service", "/console/queue", _queue_ready),
    Shot("review-order.png", "service", "/console/queue", _order_ready),
)


def take(shots: tuple[Shot, ...], urls: dict[str, str], out: Path) -> OfflineGuard:
    chromium = Chromium()
    try:
        context, guard = offline_context(chromium.get())
        expect.set_options(timeout=PAGE_TIMEOUT_MS)
        page = context.new_page()
        # Should the dialog show anyway (its localStorage key renamed), "Skip" it.
        page.add_locator_handler(
            page.get_by_text(COMMUNITY_DIALOG),
            lambda: page.get_by_role("button", name="Skip").click(),
        )
        for shot in shots:
            started = time.monotonic()
            page.set_viewport_size(VIEWPORT)
            page.goto(urls[shot.server] + shot.path)
            shot.ready(page)
            page.screenshot(path=out / shot.file, animations="disabled")
            print(f"  {out / shot.file}  ({time.monotonic() - started:.1f} s)")
        context.close()
        return guard
    finally:
        chromium.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=PROJECT / "docs", help="folder for the PNGs")
    args = parser.parse_args(argv)
    problem = missing_chromium()
    if problem:
        print(problem, file=sys.stderr)
        return 2
    dagster_home = Path(os.environ.get("DAGSTER_HOME") or PROJECT / ".dagster").resolve()
    data_dir = Path(os.environ.get("FRAUD_DATA_DIR") or PROJECT / "data").resolve()
    if not (dagster_home / "storage").is_dir() or not DataLayout(data_dir).models.is_dir():
        print(f"no demo in {dagster_home} and {data_dir}: run `make demo` first", file=sys.stderr)
        return 2
    args.out.mkdir(parents=True, exist_ok=True)
    logs = Path(tempfile.mkdtemp(prefix="fraud-screenshots-"))
    servers: list[Process] = []
    try:
        print(f"starting dagster-webserver ({dagster_home}) and fraud serve ({data_dir})")
        servers.append(start_dagster_webserver(dagster_home, data_dir, logs / "webserver.log"))
        servers.append(start_fraud_serve(data_dir, logs / "serve.log"))
        urls = {"dagster": servers[0].url, "service": servers[1].url}
        guard = take(SHOTS, urls, args.out)
    finally:
        for server in servers:
            server.stop()
    print(f"servers stopped; their logs are in {logs}")
    for url in guard.left_loopback:
        print(f"warning: a page asked for {url} (aborted: offline)", file=sys.stderr)
    for error in guard.console_errors:
        print(f"warning: console error: {error}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
