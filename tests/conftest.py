"""Markers by folder: every test under tests/e2e is `e2e` (whole-system, slow), so a quick
local run can leave them out with `pytest -m 'not e2e'`; `make test` and CI run everything.

The tests' data start on 2026-01-01, the first daily partition they are written for: pinned here,
before any test imports the code location, so a demo's `data/calendar.json` (`make test` exports
FRAUD_DATA_DIR=./data) cannot move the partitions under them.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ["FRAUD_START_DATE"] = "2026-01-01"

E2E = Path(__file__).parent / "e2e"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if E2E in Path(item.path).parents:
            item.add_marker(pytest.mark.e2e)
