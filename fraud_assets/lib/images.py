"""Images in the Dagster UI: PNG bytes as a Markdown metadata value (an inline data URI, which the
asset page renders) and, beside it, the file on disk for anyone who wants the full-size plot."""

from __future__ import annotations

import base64
from pathlib import Path

from dagster import MetadataValue

from fraud_core.storage import as_path, atomic_path


def png_markdown(title: str, png: bytes) -> MetadataValue:
    encoded = base64.b64encode(png).decode("ascii")
    return MetadataValue.md(f"**{title}**\n\n![{title}](data:image/png;base64,{encoded})")


def save_png(png: bytes, path: Path) -> MetadataValue:
    with atomic_path(as_path(path)) as tmp:
        tmp.write_bytes(png)
    return MetadataValue.path(str(path))
