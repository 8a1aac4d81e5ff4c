"""Numbers from environment variables, read the same way everywhere: empty means the default, a
value that is not a number or is out of range is an error naming the variable."""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from typing import TypeVar

T = TypeVar("T", int, float)


def env_number(
    name: str,
    default: T,
    cast: Callable[[str], T],
    *,
    low: float | None = None,
    high: float | None = None,
    env: Mapping[str, str] | None = None,
) -> T:
    text = (os.environ if env is None else env).get(name, "").strip()
    if not text:
        return default
    try:
        value = cast(text)
    except ValueError:
        raise ValueError(f"{name}: {text!r} is not a {cast.__name__}") from None
    if (low is not None and value < low) or (high is not None and value > high):
        raise ValueError(f"{name}: {value} is outside [{low}, {high}]")
    return value
