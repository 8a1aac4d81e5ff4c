"""What the demo's steps share, and how a step says it could not finish."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from typing import TYPE_CHECKING

from fraud_core.storage import DataLayout

if TYPE_CHECKING:  # Dagster is imported when the command runs, not when the CLI starts
    from dagster import DagsterInstance

    from fraud_cli.demo.dagster_runs import DagsterProcesses, RunReport
    from fraud_core.contract import Contract


@dataclass
class DemoContext:
    """The arguments, the data contract, the data folder, the Dagster instance and its
    processes, the days."""

    args: argparse.Namespace
    layout: DataLayout
    instance: DagsterInstance
    dagster: DagsterProcesses
    first_day: date
    last_day: date
    contract: Contract
    runs: dict[str, RunReport] = field(default_factory=dict)


@dataclass(frozen=True)
class Step:
    title: str
    run: Callable[[DemoContext], None]


class StepFailed(RuntimeError):
    """A step could not finish; the message says what to look at."""
