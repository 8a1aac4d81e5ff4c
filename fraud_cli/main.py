"""Entry point of the `fraud` console script.

Each sub-command lives in its own module of this package and is imported only when it runs, so
`fraud generate` does not pay for importing Dagster and `fraud serve` never imports it.
"""

from __future__ import annotations

import argparse
import importlib
import sys

# name -> (module, help). A module defines `add_arguments(parser)` and `run(args) -> int`.
COMMANDS: dict[str, tuple[str, str]] = {
    "generate": ("fraud_cli.generate", "write sample landing files of orders with fraud in them"),
    "serve": ("fraud_cli.serve", "run the scoring service (Litestar under uvicorn)"),
    "demo": ("fraud_cli.demo", "sample data through the whole platform, recorded in Dagster"),
    "backtest": ("fraud_cli.backtest", "backtest the model fold by fold against a rules baseline"),
    "model": ("fraud_cli.model", "list the model registry or roll back to an earlier version"),
    "contract": ("fraud_cli.contract", "validate a data contract and show what it declares"),
    "policy": ("fraud_cli.policy", "check, submit or activate the decision policy"),
    "lists": ("fraud_cli.lists", "block, allow and watch lists of entities"),
    "audit": ("fraud_cli.audit", "who changed policies, lists and models, and why"),
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="fraud", description="Fraud detection platform")
    sub = parser.add_subparsers(dest="command", required=True)
    for name, (module, help_text) in COMMANDS.items():
        command = sub.add_parser(name, help=help_text, description=help_text)
        importlib.import_module(module).add_arguments(command)
        command.set_defaults(_module=module)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return int(importlib.import_module(args._module).run(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
