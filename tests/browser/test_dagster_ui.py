"""The Dagster UI in a real Chromium, offline: one day of `raw_orders` is materialized by a run
into a fresh SQLite instance, `dagster-webserver` serves that instance with the project's
workspace, and the pages show the project's assets and the run's materialization."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import date
from pathlib import Path

import pytest
from dagster import DagsterInstance, materialize
from playwright.sync_api import expect

from fraud_assets.assets.raw_orders import raw_orders
from fraud_assets.definitions import ASSETS
from fraud_assets.resources import DataLayoutResource
from fraud_core.generator import GeneratorConfig, write_landing_files
from fraud_core.storage import DataLayout

from .support import PROJECT, OfflinePage

DAY = date(2026, 1, 1)
ONE_SMALL_DAY = GeneratorConfig(
    n_customers=50, n_emails=50, n_ips=50, orders_per_day=40, days=1, start=DAY, seed=5
)
PAGE_TIMEOUT_MS = 30_000
# On the lineage page this key expands every asset group (the UI's shortcut "⌥E").
EXPAND_ALL_GROUPS = "Alt+KeyE"


@pytest.fixture
def instance_with_a_run(tmp_path: Path, monkeypatch) -> tuple[Path, Path]:
    """(DAGSTER_HOME, FRAUD_DATA_DIR): the project's dagster.yaml, as `make demo` sets it up,
    and a run that materialized `raw_orders` for DAY from a landing file."""
    home, data = tmp_path / "dagster_home", tmp_path / "data"
    home.mkdir()
    shutil.copy(PROJECT / "dagster.yaml", home / "dagster.yaml")
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    monkeypatch.setenv("FRAUD_DATA_DIR", str(data))
    write_landing_files(ONE_SMALL_DAY, DataLayout(data).landing)

    def run() -> bool:
        with DagsterInstance.get() as instance:
            return materialize(
                [raw_orders],
                partition_key=DAY.isoformat(),
                instance=instance,
                resources={"layout": DataLayoutResource()},
            ).success

    # In a thread of its own: this one has Playwright's event loop marked as running, which
    # Dagster's run would otherwise find (and skip its own loop's clean-up).
    with ThreadPoolExecutor(max_workers=1) as pool:
        assert pool.submit(run).result()
    return home, data


def test_the_asset_graph_shows_the_project_and_the_run(
    offline_page: OfflinePage,
    instance_with_a_run: tuple[Path, Path],
    dagster_ui: Callable[[Path, Path], str],
) -> None:
    url = dagster_ui(*instance_with_a_run)
    page = offline_page.page

    page.goto(f"{url}/asset-groups")
    expect(page.get_by_text("Global asset lineage")).to_be_visible(timeout=PAGE_TIMEOUT_MS)
    # the graph is drawn (one collapsed node per asset group) before its groups are expanded
    for group in sorted({asset.group_names_by_key[asset.key] for asset in ASSETS}):
        node = page.locator(f'[data-tooltip="{group}"]').first
        expect(node).to_be_visible(timeout=PAGE_TIMEOUT_MS)
    page.keyboard.press(EXPAND_ALL_GROUPS)
    for asset in ASSETS:
        name = asset.key.to_user_string()
        expect(page.get_by_text(name, exact=True).first).to_be_visible(timeout=PAGE_TIMEOUT_MS)

    page.goto(f"{url}/assets/raw_orders")
    expect(page.get_by_text("Latest materialization")).to_be_visible(timeout=PAGE_TIMEOUT_MS)
    expect(page.get_by_text(DAY.isoformat(), exact=True).first).to_be_visible()

    guard = offline_page.guard
    assert (guard.left_loopback, guard.console_errors) == ([], []), "requests left loopback, errors"
