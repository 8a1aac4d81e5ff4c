"""The README's generated sections match the code (regenerate: python -m fraud_core.docs README.md)."""

from pathlib import Path

from fraud_core.docs import render

README = Path(__file__).resolve().parents[2] / "README.md"


def test_readme_generated_sections_are_current() -> None:
    text = README.read_text()
    assert render(text) == text, "run: python -m fraud_core.docs README.md"


def test_readme_shows_the_two_commands() -> None:
    text = README.read_text()
    assert "make demo" in text and "make test" in text
