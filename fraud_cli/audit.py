"""`fraud audit`: who changed a policy, a list entry or the served model, when and why, newest
first (the trail `fraud_core.audit` keeps under the data folder)."""

from __future__ import annotations

import argparse
import json
import sys

from fraud_cli.args import data_layout


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from fraud_core.audit import ACTIONS

    parser.add_argument("--data-dir", type=str, default=None, help="data folder")
    parser.add_argument("--action", choices=ACTIONS, default=None, help="only this action")
    parser.add_argument("--since", default=None, help="ISO date or time")
    parser.add_argument("--limit", type=int, default=50)
    parser.add_argument("--json", action="store_true", help="one JSON record per line")


def run(args: argparse.Namespace) -> int:
    from fraud_core import audit

    layout = data_layout(args.data_dir)
    records = audit.read(layout.audit, action=args.action, since=args.since, limit=args.limit)
    for r in records:
        if args.json:
            print(json.dumps(r))
            continue
        change = ""
        if r.get("before") is not None or r.get("after") is not None:
            after = r.get("after")
            after = after if isinstance(after, str) else None
            change = f" {r.get('before') or '-'} -> {after or '-'}" if after else ""
        print(
            f"{r.get('at')}  {r.get('action'):<16} {r.get('actor'):<20} {r.get('target')}{change}"
        )
        if r.get("reason"):
            print(f"{'':27}why: {r['reason']}")
    if not records:
        print("no audit records", file=sys.stderr if args.json else sys.stdout)
    return 0
