"""`fraud lists add | rm | ls`: the block, allow and watch lists from the command line, on the
Redis the service uses (`REDIS_URL`, `FRAUD_REDIS_PREFIX`). Values are given as an order sends
them and keyed as the service keys them (a personal entity's digest needs the contract's privacy
key in the environment). Every change is audited as `cli:<login>` ($FRAUD_ACTOR to say who).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from datetime import UTC, datetime

from fraud_cli.args import data_layout


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from fraud_core.policy import LIST_NAMES

    parser.add_argument("--data-dir", type=str, default=None, help="data folder (audit trail)")
    sub = parser.add_subparsers(dest="action", required=True)
    add = sub.add_parser("add", help="put an entity on a list")
    add.add_argument("list", choices=LIST_NAMES)
    add.add_argument("kind", help="an entity kind of the contract (customer_id, email, ...)")
    add.add_argument("value", help="the value as an order sends it")
    add.add_argument("--reason", required=True, help="why (shown to analysts and audited)")
    add.add_argument("--ttl-days", type=float, default=None, help="expire after this many days")
    rm = sub.add_parser("rm", help="take an entity off a list")
    rm.add_argument("list", choices=LIST_NAMES)
    rm.add_argument("kind")
    rm.add_argument("value")
    rm.add_argument("--reason", required=True)
    ls = sub.add_parser("ls", help="the live entries")
    ls.add_argument("--list", dest="list_name", choices=LIST_NAMES, default=None)


def _when(epoch_s: float | None) -> str:
    if epoch_s is None:
        return "-"
    return datetime.fromtimestamp(epoch_s, UTC).isoformat(timespec="seconds")


def run(args: argparse.Namespace) -> int:

    import redis

    from fraud_assets.lib.redis_clients import connect, coordinator
    from fraud_core import audit
    from fraud_core.contract import ContractError, serving_contract
    from fraud_core.contract.request import RequestShape, RequestValueError
    from fraud_core.online_keys import OnlineKeys
    from fraud_core.policy.lists import decode_all, entry_field, new_entry
    from fraud_core.redis_server import DEFAULT_REDIS_URL, ENV_VAR

    try:
        contract = serving_contract()
        shape = RequestShape.of(contract)
    except ContractError as err:
        print(f"fraud lists: {err}", file=sys.stderr)
        return 2
    keys = OnlineKeys.from_env()
    layout = data_layout(args.data_dir)
    url = os.environ.get(ENV_VAR) or DEFAULT_REDIS_URL
    try:
        client = coordinator(connect(url), keys)
    except redis.RedisError as err:  # a cluster that does not answer
        print(f"fraud lists: {err}", file=sys.stderr)
        return 1
    actor = audit.cli_actor()
    try:
        if args.action == "ls":
            now = time.time()
            entries = [e for e in decode_all(client.hgetall(keys.lists)) if e.live(now)]
            if args.list_name:
                entries = [e for e in entries if e.list == args.list_name]
            for e in entries:
                print(
                    f"{e.list:<6} {e.kind:<12} {e.key:<40} until {_when(e.expires_at):<25} "
                    f"{e.author}: {e.reason}"
                )
            print(f"{len(entries)} live entries")
            return 0
        if args.kind not in shape.kinds:
            print(f"fraud lists: kind must be one of {', '.join(shape.kinds)}", file=sys.stderr)
            return 2
        try:
            key = shape.key_of(args.kind, args.value)
        except RequestValueError as err:
            print(f"fraud lists: value: {err.reason}", file=sys.stderr)
            return 2
        if args.action == "add":
            ttl = None if args.ttl_days is None else args.ttl_days * 86_400
            try:
                entry = new_entry(args.list, args.kind, key, args.reason, actor, ttl, shape.kinds)
            except ValueError as err:
                print(f"fraud lists: {err}", file=sys.stderr)
                return 2
            with client.pipeline(transaction=True) as pipe:
                pipe.hset(keys.lists, entry.field, entry.to_json()).incr(keys.lists_version)
                pipe.execute()
            audit.append(
                layout.audit,
                audit.AuditRecord(
                    "list.add", actor, f"list:{entry.field}", entry.reason, after=entry.to_dict()
                ),
            )
            print(f"{args.list}: {args.kind} {key} added (until {_when(entry.expires_at)})")
            return 0
        field = entry_field(args.list, args.kind, key)
        with client.pipeline(transaction=True) as pipe:
            removed, _ = pipe.hdel(keys.lists, field).incr(keys.lists_version).execute()
        if not removed:
            print(f"fraud lists: no {args.list} entry for {args.kind} {key}", file=sys.stderr)
            return 1
        audit.append(
            layout.audit, audit.AuditRecord("list.remove", actor, f"list:{field}", args.reason)
        )
        print(f"{args.list}: {args.kind} {key} removed")
        return 0
    except redis.RedisError as err:
        print(
            f"fraud lists: Redis at {client.connection_pool.connection_kwargs.get('host')}: {err}",
            file=sys.stderr,
        )
        return 1
    finally:
        client.close()
