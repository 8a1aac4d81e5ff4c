"""Partitioned check results name their day where a reader sees them: Dagster's run-log line of
an evaluation names the check and the asset only, so the description leads with the day."""

from __future__ import annotations

import re
from collections import defaultdict
from datetime import timedelta

import pytest

from fraud_assets.assets.raw_orders import raw_orders, raw_orders_checks
from fraud_assets.lib.partitioned_checks import day_description

from ..configs import START  # the first day of the `landed` fixture


@pytest.mark.parametrize(
    ("partition", "description", "expected"),
    [
        ("2026-01-02", "3 duplicate order ids", "2026-01-02: 3 duplicate order ids"),
        ("2026-01-02", None, "2026-01-02"),
        (None, "no partition", "no partition"),
        (None, None, None),
    ],
)
def test_day_description(partition, description, expected):
    assert day_description(partition, description) == expected


def test_each_days_check_line_in_the_run_log_names_its_day(landed, materialize_range):
    days = [START.isoformat(), (START + timedelta(days=1)).isoformat()]
    run = materialize_range([raw_orders, raw_orders_checks], START, START + timedelta(days=1))
    days_by_check: dict[str, list[str]] = defaultdict(list)
    for event in run.all_events:
        if event.event_type_value == "ASSET_CHECK_EVALUATION":
            check = re.search(r"Asset check '(\w+)'", event.message or "")
            day = re.search(r"Description: '(\d{4}-\d\d-\d\d)", event.message or "")
            assert check and day, event.message
            days_by_check[check[1]].append(day[1])
    assert len(days_by_check) == len(raw_orders_checks.check_specs)
    assert all(sorted(found) == days for found in days_by_check.values()), days_by_check
