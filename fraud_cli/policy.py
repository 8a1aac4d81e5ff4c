"""`fraud policy check | submit | activate | show`: the decision policy from the command line.

`check FILE` parses and type-checks a policy against the contract in use; `submit FILE` keeps it
in the registry as the candidate the next `policy_replay` judges (materialize it, or run
`policy_job`); `activate VERSION` applies a kept version at once, an override of the replay that
needs a reason; `show` names the active and candidate versions. Changes are audited as
`cli:<login>` ($FRAUD_ACTOR to say who).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from fraud_cli.args import data_layout


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data-dir", type=str, default=None, help="data folder (policies/)")
    sub = parser.add_subparsers(dest="action", required=True)
    check = sub.add_parser("check", help="parse and type-check a policy file")
    check.add_argument("file", type=Path)
    submit = sub.add_parser("submit", help="keep a policy file as the candidate")
    submit.add_argument("file", type=Path)
    submit.add_argument("--reason", required=True, help="why (audited)")
    activate = sub.add_parser("activate", help="apply a kept version now (override)")
    activate.add_argument("version")
    activate.add_argument("--reason", required=True, help="why the replay is overridden")
    sub.add_parser("show", help="the active and candidate versions")


def run(args: argparse.Namespace) -> int:
    from fraud_core import audit
    from fraud_core.contract import ContractError, serving_contract
    from fraud_core.policy import PolicyError, PolicyFields, load_policy
    from fraud_core.policy.registry import ACTIVE, CANDIDATE, PolicyRegistry

    layout = data_layout(args.data_dir)
    registry = PolicyRegistry(layout)
    try:
        fields = PolicyFields.of(serving_contract())
        if args.action in ("check", "submit"):
            try:
                text = args.file.read_text()
            except OSError as err:
                print(f"fraud policy: cannot read {args.file}: {err.strerror}", file=sys.stderr)
                return 2
            policy = load_policy(text, fields)
            if args.action == "check":
                print(
                    f"{args.file}: policy {policy.name!r} {policy.version}: "
                    f"{len(policy.rules)} rules, {len(policy.segments)} segments, "
                    f"thresholds {'the card' if policy.thresholds is None else policy.thresholds}"
                )
                return 0
            registry.save(policy, audit.cli_actor(), args.reason)
            print(f"policy {policy.name!r} {policy.version} is the candidate; replay it with "
                  "`policy_job` (or activate it with --reason to override)")  # fmt: skip
            return 0
        if args.action == "activate":
            policy = registry.read(args.version, fields)
            registry.point(ACTIVE, policy.version, audit.cli_actor(), f"override: {args.reason}")
            print(f"policy {policy.name!r} {policy.version} is active")
            return 0
        for which in (ACTIVE, CANDIDATE):
            pointer = registry.pointer(which)
            if pointer is None:
                note = (
                    "the built-in default (lists and the card's thresholds)"
                    if which == ACTIVE
                    else "none"
                )
                print(f"{which:<9} {note}")
            else:
                name = registry.read(pointer.version, fields).name
                print(f"{which:<9} {pointer.version} {name!r} since {pointer.since} by "
                      f"{pointer.actor}: {pointer.reason}")  # fmt: skip
        return 0
    except (PolicyError, ContractError) as err:
        print(f"fraud policy: {err}", file=sys.stderr)
        return 2
