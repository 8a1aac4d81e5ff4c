"""Argument types shared by the sub-commands: each rejects a bad value with a message that names
what was expected, which argparse prints next to the option."""

from __future__ import annotations

import argparse
from datetime import date
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from fraud_core.storage import DataLayout


def day(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError as err:
        raise argparse.ArgumentTypeError(f"expected YYYY-MM-DD, got {text!r}") from err


def positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    return value


def non_negative_int(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {value}")
    return value


def data_layout(data_dir: str | None) -> DataLayout:
    """The data tree a sub-command works on: `--data-dir` (a folder or an object-store URL such
    as s3://bucket/prefix) when given, else $FRAUD_DATA_DIR, else ./data."""
    from fraud_core.storage import DataLayout  # pandas and Arrow: only for commands that read data

    return DataLayout.at(data_dir) if data_dir else DataLayout.from_env()
