"""The Dagster UI in a real Chromium, offline, on the instance a small `fraud demo` filled (the
session's `small_demo`): `dagster-webserver` serves it with the project's workspace; the asset
graph shows every asset of the project, and the daily job's page lists the demo's runs, its own
and the landing sensor's (runs executed in process would be missing there: they lack the code
location's tags)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from dagster import DagsterInstance, RunsFilter
from playwright.sync_api import expect

from fraud_assets.definitions import ASSETS
from fraud_core.calendar import START_ENV

from .support import OfflinePage

PAGE_TIMEOUT_MS = 30_000
# On the lineage page this key expands every asset group (the UI's shortcut "⌥E").
EXPAND_ALL_GROUPS = "Alt+KeyE"
EXPANDED_VIEWPORT = {"width": 1600, "height": 2600}
LOCATION = "fraud_assets.definitions"
JOB = "daily_features_job"


def _demo_runs(dagster_home: Path, job: str) -> list[str]:
    instance = DagsterInstance.from_config(str(dagster_home))
    try:
        return [r.run_id for r in instance.get_runs(RunsFilter(job_name=job))]
    finally:
        instance.dispose()


def test_the_ui_shows_the_project_and_the_demo_runs_on_the_job_page(
    offline_page: OfflinePage,
    small_demo,
    dagster_ui: Callable[[Path, Path], str],
    monkeypatch,
) -> None:
    monkeypatch.delenv(START_ENV)  # the code location takes the demo's first day from its data
    runs = _demo_runs(small_demo.dagster_home, JOB)
    assert len(runs) == 2  # the demo's range run and the landing sensor's
    url = dagster_ui(small_demo.dagster_home, small_demo.data_dir)
    page = offline_page.page

    page.goto(f"{url}/asset-groups")
    expect(page.get_by_text("Global asset lineage")).to_be_visible(timeout=PAGE_TIMEOUT_MS)
    # the graph is drawn (one collapsed node per asset group) before its groups are expanded
    for group in sorted({asset.group_names_by_key[asset.key] for asset in ASSETS}):
        node = page.locator(f'[data-tooltip="{group}"]').first
        expect(node).to_be_visible(timeout=PAGE_TIMEOUT_MS)
    # Expanded, the graph of every group is taller than a screen, and the UI draws only the
    # nodes in view: a tall window shows them all.
    page.set_viewport_size(EXPANDED_VIEWPORT)
    page.keyboard.press(EXPAND_ALL_GROUPS)
    for asset in ASSETS:
        name = asset.key.to_user_string()
        expect(page.get_by_text(name, exact=True).first).to_be_visible(timeout=PAGE_TIMEOUT_MS)

    page.goto(f"{url}/locations/{LOCATION}/jobs/{JOB}/runs")
    for run_id in runs:  # the runs table shows each run's id, cut to 8 characters
        expect(page.get_by_text(run_id[:8], exact=True).first).to_be_visible(
            timeout=PAGE_TIMEOUT_MS
        )
    expect(page.get_by_text("No runs found")).to_have_count(0)
    expect(page.get_by_text("landing_folder_sensor").first).to_be_visible()  # who launched it

    guard = offline_page.guard
    assert (guard.left_loopback, guard.console_errors) == ([], []), "requests left loopback, errors"
