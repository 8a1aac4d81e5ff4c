"""`fraud contract check [FILE]`: validate a data contract and show what it declares.

Without FILE, the contract every command uses: `$FRAUD_CONTRACT`, else the built-in e-commerce
contract. A bad contract prints one error naming the file, the line, the key and the reason, and
exits 2.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="action", required=True)
    check = sub.add_parser("check", help="validate a contract and summarise it")
    check.add_argument(
        "file", type=Path, nargs="?", default=None, help="default $FRAUD_CONTRACT or the built-in"
    )


def summary(contract, path: Path) -> list[str]:
    """What the contract declares, in a few lines."""
    s = contract.source
    spec = contract.feature_spec()
    lines = [
        f"{path}: contract {contract.name!r} is valid (digest {contract.digest[:12]})",
        f"  order id {s.order_id!r}, time {s.order_time.column!r} ({s.order_time.zone}), "
        f"amount {s.amount.column!r} ({s.amount.unit} units)"
        + (f", labels {s.labels.is_fraud!r} / {s.labels.label_time!r}" if s.labels else ""),
    ]
    for e in contract.entities:
        notes = [f"from {e.column!r}"]
        if e.transform:
            notes.append(f"through {e.transform}")
        if e.primary:
            notes.append("primary")
        if e.personal:
            notes.append(f"stored as HMAC digests keyed by ${contract.privacy_key_env}")
        if e.counterparts:
            notes.append(f"counterparts {', '.join(e.counterparts)}")
        lines.append(f"  entity {e.name}: {'; '.join(notes)}")
    for a in contract.attributes:
        bounds = f" in [{a.range[0]:g}, {a.range[1]:g}]" if a.range else ""
        required = "required" if a.required else "optional"
        lines.append(f"  attribute {a.name} ({a.type}{bounds}, {required}) from {a.column!r}")
    lines.append(
        f"  {len(spec.feature_names)} features; windows "
        f"{', '.join(w.name for w in contract.features.windows)}; history {spec.history_n} orders"
    )
    return lines


def run(args: argparse.Namespace) -> int:
    from fraud_core.contract import ContractError, contract_path, load_contract

    path = args.file or contract_path()
    try:
        contract = load_contract(path)
    except ContractError as err:
        print(f"fraud contract: {err}", file=sys.stderr)
        return 2
    print("\n".join(summary(contract, path)))
    return 0
