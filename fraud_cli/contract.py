"""`fraud contract check [FILE] [--sample DATA]`: validate a data contract and show what it
declares (and how a sample of your orders maps under it); `fraud contract infer DATA`: propose
one from a sample.

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
    infer = sub.add_parser("infer", help="propose a contract from a sample of your orders")
    infer.add_argument("data", type=Path, help="a file of your orders (parquet or CSV)")
    infer.add_argument("--name", default="my_orders", help="the contract's name")
    infer.add_argument("--out", type=Path, default=None, help="write it here (default: print it)")
    check.add_argument(
        "--sample",
        type=Path,
        default=None,
        help="a file of your orders (parquet or CSV): which columns are missing, which rows "
        "would be quarantined and why",
    )


def summary(contract, path: Path) -> list[str]:
    """What the contract declares, in a few lines."""
    s = contract.source
    spec = contract.spec
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
        aggregated = f", aggregated in units of 1e-{a.decimals}" if a.aggregate else ""
        lines.append(
            f"  attribute {a.name} ({a.type}{bounds}, {required}{aggregated}) from {a.column!r}"
        )
    lines.append(
        f"  {len(spec.feature_names)} features; windows "
        f"{', '.join(w.name for w in contract.features.windows)}; history {spec.history_n} orders"
    )
    return lines


def infer(args: argparse.Namespace) -> int:
    from fraud_core.contract.infer import infer_contract
    from fraud_core.validation import read_landing_file

    try:
        frame = read_landing_file(args.data)
        text = infer_contract(frame, args.name)
    except Exception as err:  # the user's file or a guess that failed: say which, no traceback
        print(f"fraud contract infer: {args.data}: {err}", file=sys.stderr)
        return 2
    if args.out is None:
        print(text, end="")
    else:
        args.out.write_text(text)
        print(
            f"wrote {args.out}: read it, edit it, then `fraud contract check {args.out} "
            f"--sample {args.data}`"
        )
    return 0


def run(args: argparse.Namespace) -> int:
    if args.action == "infer":
        return infer(args)
    from fraud_core.contract import ContractError, contract_path, load_contract
    from fraud_core.contract.loader import unserved_terms

    path = args.file or contract_path()
    try:
        contract = load_contract(path)
    except ContractError as err:
        print(f"fraud contract: {err}", file=sys.stderr)
        return 2
    print("\n".join(summary(contract, path)))
    unserved = unserved_terms(contract)
    if unserved:
        print(f"  the pipeline applies it; the scoring service cannot serve it: {unserved[0]}")
    numeric = [a.name for a in contract.attributes if a.type == "numeric"]
    if numeric:
        print(
            f"  numeric attributes ({', '.join(numeric)}) are validated and kept with the "
            "orders; they make no features yet"
        )
    if args.sample is None:
        return 0
    return _sample(contract, args.sample)


def _sample(contract, path: Path) -> int:
    from fraud_core.contract.sample import check_sample
    from fraud_core.validation import read_landing_file

    try:
        frame = read_landing_file(path)
    except Exception as err:  # any reader error: the user's file, say so and stop
        print(f"fraud contract: cannot read {path}: {err}", file=sys.stderr)
        return 2
    report = check_sample(contract, frame)
    for line in report.missing:
        print(f"  {line}", file=sys.stderr)
    if report.missing:
        return 2
    if not report.validated:
        print(f"  sample {path.name}: {report.rows:,} rows; not validated (see above)")
        return 0
    quarantined = report.rows - report.valid
    print(
        f"  sample {path.name}: {report.rows:,} rows over {report.days} "
        f"day{'s' if report.days != 1 else ''}: "
        f"{report.valid:,} valid, {quarantined:,} would be quarantined"
    )
    for reason, count in report.reasons.most_common(10):
        print(f"    {count:>8,}  {reason}")
    return 0
