"""`fraud model list | rollback VERSION | challenger VERSION`: the model registry from the
command line.

`list` shows every version with its validation metrics, the gate's verdict and which one serves;
`rollback` re-points `current` to an earlier version (the service hot-reloads it), the same as
materializing `deployed_model` with `version` set in the Dagster UI; `challenger` names the
version the service scores in shadow beside the served one (`--clear`: none). Both are audited.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from fraud_cli.args import data_layout


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--data-dir",
        type=str,
        default=None,
        help="data folder holding models/ (default $FRAUD_DATA_DIR, ./data)",
    )
    sub = parser.add_subparsers(dest="action", required=True)
    sub.add_parser("list", help="every version, newest last; * marks the one served")
    rollback = sub.add_parser("rollback", help="serve an earlier version")
    rollback.add_argument("version", help="a version from `fraud model list`")
    rollback.add_argument("--reason", default="", help="why, for the registry's record")
    shadow = sub.add_parser("challenger", help="score a version in shadow beside the served one")
    shadow.add_argument("version", nargs="?", help="a version from `fraud model list`")
    shadow.add_argument("--clear", action="store_true", help="no model in shadow")
    shadow.add_argument("--reason", required=True, help="why (audited)")


def _layout(args: argparse.Namespace):

    return data_layout(args.data_dir)


def _fmt(value: object) -> str:
    return f"{value:.4f}" if isinstance(value, float) else "-"


def list_models(registry: Path) -> int:
    from fraud_core.model.artifact import ModelIntegrityError, current_version, list_versions
    from fraud_core.model.promotion import read_decision

    cards = list_versions(registry)
    if not cards:
        print(f"no models in {registry}")
        return 0
    try:
        current = current_version(registry)
    except ModelIntegrityError as err:
        print(f"fraud model: {err}: roll back to a version below", file=sys.stderr)
        current = None
    print(f"{'':1} {'version':<16}  {'created':<25}  {'AP':>6}  {'AUC':>6}  {'cp@100':>6}  gate")
    for card in cards:
        validation = card.metrics.get("validation", {})
        decision = read_decision(registry, card.version)
        verdict = "-" if decision is None else ("passed" if decision.passed else "refused")
        print(
            f"{'*' if card.version == current else ' '} {card.version:<16}  "
            f"{card.created_at:<25}  {_fmt(validation.get('average_precision')):>6}  "
            f"{_fmt(validation.get('roc_auc')):>6}  "
            f"{_fmt(validation.get('customer_precision_at_100')):>6}  {verdict}"
        )
    return 0


def _verifies(registry: Path, version: str) -> bool:
    """Whether `version` loads and verifies (never point at a file that does not); says why not."""
    from fraud_core.model.artifact import ModelIntegrityError, load_version

    try:
        load_version(registry, version)
    except FileNotFoundError:
        print(f"fraud model: no version {version!r} in {registry}", file=sys.stderr)
        return False
    except ModelIntegrityError as err:
        print(f"fraud model: {err}", file=sys.stderr)
        return False
    return True


def rollback(registry: Path, version: str, reason: str, audit_folder: Path) -> int:
    from fraud_core import audit
    from fraud_core.model.artifact import (
        ModelIntegrityError,
        current_version,
        set_current,
    )

    try:
        before = current_version(registry)
    except ModelIntegrityError as err:  # a broken pointer is what a rollback repairs
        before = f"an invalid pointer ({err})"
    if not _verifies(registry, version):
        return 2
    set_current(
        registry, version, reason=f"rollback (CLI): {reason}" if reason else "rollback (CLI)"
    )
    audit.append(
        audit_folder,
        audit.AuditRecord(
            "model.promote", audit.cli_actor(), "model", f"rollback: {reason}", before, version
        ),
    )
    print(f"serving {version} (was {before or 'none'})")
    return 0


def challenger(registry: Path, version: str | None, reason: str, audit_folder: Path) -> int:
    from fraud_core import audit
    from fraud_core.model.artifact import (
        CHALLENGER_FILE,
        current_version,
        set_challenger,
    )

    before = current_version(registry, CHALLENGER_FILE)
    if version is not None and not _verifies(registry, version):
        return 2
    set_challenger(registry, version, reason)
    audit.append(
        audit_folder,
        audit.AuditRecord(
            "model.challenger", audit.cli_actor(), "model:challenger", reason, before, version
        ),
    )
    print(f"in shadow: {version or 'none'} (was {before or 'none'})")
    return 0


def run(args: argparse.Namespace) -> int:
    layout = _layout(args)
    if args.action == "list":
        return list_models(layout.models)
    if args.action == "challenger":
        if (args.version is None) == (not args.clear):
            print("fraud model challenger: give a VERSION or --clear", file=sys.stderr)
            return 2
        return challenger(layout.models, args.version, args.reason, layout.audit)
    return rollback(layout.models, args.version, args.reason, layout.audit)
