"""`fraud generate`: write sample landing files, one per day, with learnable fraud in them.

The defaults echo the original proof of concept (10,000 customers, e-mails and IPs, about 100,000
orders per 30 days, one year from 2026-01-01) and are fixed, so the same command always writes the
same files.
"""

from __future__ import annotations

import argparse
import os
import sys
from datetime import timedelta
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc

from fraud_cli.args import day, non_negative_int, positive_int
from fraud_core.contract import CONTRACT_ENV
from fraud_core.generator import GeneratorConfig, write_landing_files
from fraud_core.storage import DataLayout

_DEFAULTS = GeneratorConfig()
# Fewer days than this finish before a progress bar would tell anyone anything.
_PROGRESS_MIN_DAYS = 8


def add_arguments(parser: argparse.ArgumentParser) -> None:
    d = _DEFAULTS
    parser.add_argument(
        "--days", type=positive_int, default=d.days, help=f"days of orders (default {d.days})"
    )
    parser.add_argument(
        "--orders-per-day",
        type=positive_int,
        default=d.orders_per_day,
        help=f"orders per day on average (default {d.orders_per_day})",
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=None,
        help="folder for the files (default $FRAUD_DATA_DIR/landing, i.e. ./data/landing)",
    )
    parser.add_argument(
        "--seed", type=non_negative_int, default=d.seed, help=f"random seed (default {d.seed})"
    )
    parser.add_argument(
        "--start", type=day, default=d.start, help=f"first day, YYYY-MM-DD (default {d.start})"
    )
    parser.add_argument(
        "--format",
        choices=("parquet", "csv"),
        default="parquet",
        help="file format (default parquet)",
    )
    parser.add_argument(
        "--customers",
        type=positive_int,
        default=d.n_customers,
        help=f"honest customers (default {d.n_customers})",
    )
    parser.add_argument(
        "--emails",
        type=positive_int,
        default=d.n_emails,
        help=f"honest e-mail addresses (default {d.n_emails})",
    )
    parser.add_argument(
        "--ips",
        type=positive_int,
        default=d.n_ips,
        help=f"honest IP addresses (default {d.n_ips})",
    )
    parser.add_argument(
        "--fraud-rate",
        type=float,
        default=d.fraud_rate,
        help=f"expected share of fraudulent orders (default {d.fraud_rate})",
    )
    parser.add_argument(
        "--contract",
        type=Path,
        default=None,
        help="write the files in this contract's shape (default $FRAUD_CONTRACT, else the "
        "built-in one)",
    )
    parser.add_argument("--quiet", action="store_true", help="no progress bar")


def run(args: argparse.Namespace) -> int:
    out_dir: Path = args.out if args.out is not None else DataLayout.from_env().landing
    try:
        config = GeneratorConfig(
            n_customers=args.customers,
            n_emails=args.emails,
            n_ips=args.ips,
            orders_per_day=args.orders_per_day,
            days=args.days,
            start=args.start,
            seed=args.seed,
            fraud_rate=args.fraud_rate,
        )
    except ValueError as err:
        print(f"fraud generate: {err}", file=sys.stderr)
        return 2
    from fraud_core.contract import ContractError, applied_contract
    from fraud_core.contract.source import SourceFormat
    from fraud_core.sample_data import CARD_PRESENT, ECOMMERCE, no_sample_data, sample_generator

    env = dict(os.environ)
    if args.contract is not None:
        env[CONTRACT_ENV] = str(args.contract)
    try:
        contract = applied_contract(env)
    except ContractError as err:
        print(f"fraud generate: {err}", file=sys.stderr)
        return 2
    generator = sample_generator(contract)
    if generator == CARD_PRESENT:
        return _card_present(args, out_dir, contract)
    if generator != ECOMMERCE:
        print(f"fraud generate: {no_sample_data(contract)}", file=sys.stderr)
        return 2
    source = SourceFormat.of(contract)

    totals = {"orders": 0, "fraud": 0}

    def count(_path: Path, table: pa.Table) -> None:
        totals["orders"] += table.num_rows
        totals["fraud"] += int(pc.sum(table["is_fraud"]).as_py() or 0)

    # The bar goes to stderr; keep it out of logs and pipes, where it would be noise.
    progress = not args.quiet and sys.stderr.isatty() and config.days >= _PROGRESS_MIN_DAYS
    paths = write_landing_files(
        config, out_dir, args.format, progress, on_file=count, source=source
    )
    rate = totals["fraud"] / totals["orders"] if totals["orders"] else 0.0
    print(
        f"wrote {len(paths)} {args.format} files ({config.start} to {config.day(config.days - 1)}) "
        f"to {out_dir}: {totals['orders']:,} orders, {totals['fraud']:,} fraud ({rate:.2%})"
    )
    return 0


def _card_present(args: argparse.Namespace, out_dir: Path, contract) -> int:
    """Card-present transactions in `contract`'s shape (`fraud_core.card_generator`)."""
    from fraud_core.card_generator import CardGeneratorConfig, write_card_files

    try:
        config = CardGeneratorConfig(
            n_cards=args.customers,
            txns_per_day=args.orders_per_day,
            days=args.days,
            start=args.start,
            seed=args.seed,
        )
    except ValueError as err:
        print(f"fraud generate: {err}", file=sys.stderr)
        return 2
    paths, orders, fraud = write_card_files(config, out_dir, contract, args.format)
    rate = fraud / orders if orders else 0.0
    print(
        f"wrote {len(paths)} {args.format} files of card-present transactions "
        f"({config.start} to {config.start + timedelta(days=config.days - 1)}) to {out_dir}: "
        f"{orders:,} transactions, {fraud:,} fraud ({rate:.2%})"
    )
    return 0
