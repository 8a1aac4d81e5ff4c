"""Settings declared once: a dataclass field carries its default and a one-line description, so
an adapter (the Dagster Launchpad, a command's --help) shows both without repeating them."""

from __future__ import annotations

import dataclasses
from typing import Any

DESCRIPTION = "description"


def setting(default: Any, description: str) -> Any:
    """A dataclass field with `default` and `description` (read back with `describe`)."""
    return dataclasses.field(default=default, metadata={DESCRIPTION: description})


def describe(field: dataclasses.Field) -> str | None:
    return field.metadata.get(DESCRIPTION)
