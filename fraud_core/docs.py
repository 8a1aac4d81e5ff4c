"""Generated parts of the README: the landing-file contract and the feature list, both from code,
so the manual cannot drift from what runs. `python -m fraud_core.docs README.md` rewrites them."""

from __future__ import annotations

import re
import sys
from pathlib import Path

from fraud_core.features.spec import features_markdown
from fraud_core.schema import schema_markdown

SECTIONS = {"landing-contract": schema_markdown, "features": features_markdown}


def render(text: str) -> str:
    """`text` with every generated section replaced by its current content."""
    for name, make in SECTIONS.items():
        pattern = re.compile(
            rf"(<!-- BEGIN GENERATED {name} -->\n).*?(<!-- END GENERATED {name} -->)", re.DOTALL
        )
        if not pattern.search(text):
            raise ValueError(f"README has no generated section {name!r}")
        text = pattern.sub(lambda m, make=make: m.group(1) + make() + "\n" + m.group(2), text)
    return text


def main(argv: list[str] | None = None) -> int:
    path = Path((argv or sys.argv[1:] or ["README.md"])[0])
    path.write_text(render(path.read_text()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
