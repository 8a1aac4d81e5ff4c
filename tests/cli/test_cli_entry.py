"""The `fraud` entry point stays light, and `fraud demo` finds its days."""

from __future__ import annotations

import argparse
import subprocess
import sys
from datetime import UTC, date, datetime, timedelta

import pytest

from fraud_cli.demo import DEFAULT_DAYS, demo_days
from fraud_core.generator import GeneratorConfig, write_landing_files
from fraud_core.storage import DataLayout


def test_building_the_cli_imports_no_dagster() -> None:
    """Every command's arguments are built for every invocation (`fraud serve` included), so no
    command module may import Dagster at import time."""
    probe = (
        "import sys, fraud_cli.main; fraud_cli.main.build_parser(); print('dagster' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def _args(**given) -> argparse.Namespace:
    return argparse.Namespace(
        **{"days": DEFAULT_DAYS, "start": None, "no_generate": False, **given}
    )


def test_the_demo_days_end_the_day_before_yesterday_or_follow_your_landing_files(tmp_path) -> None:
    layout = DataLayout(tmp_path)
    today = datetime.now(UTC).date()
    start, days = demo_days(_args(), layout)
    assert days == DEFAULT_DAYS and start + timedelta(days=days + 1) == today
    assert demo_days(_args(start=date(2026, 2, 1), days=5), layout) == (date(2026, 2, 1), 5)

    with pytest.raises(ValueError, match="no readable landing file"):
        demo_days(_args(no_generate=True), layout)
    write_landing_files(
        GeneratorConfig(
            n_customers=30,
            n_emails=30,
            n_ips=30,
            orders_per_day=20,
            days=4,
            start=date(2026, 3, 10),
            seed=1,
        ),
        layout.landing,
    )
    assert demo_days(_args(no_generate=True), layout) == (date(2026, 3, 10), 4)
