"""Markers by folder: every test under tests/e2e is `e2e` (whole-system, slow), so a quick
local run can leave them out with `pytest -m 'not e2e'`; `make test` and CI run everything."""

from __future__ import annotations

from pathlib import Path

import pytest

E2E = Path(__file__).parent / "e2e"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if E2E in Path(item.path).parents:
            item.add_marker(pytest.mark.e2e)
