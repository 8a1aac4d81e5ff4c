"""How fast the sample-data generator builds orders in memory (the demo and every test fixture
pay this). Prints `RESULT generator_orders_per_s=<value> orders/s`, the best of a few runs.

    .venv/bin/python bench/generator.py [--days 365] [--orders-per-day 3333] [--repeat 3]
"""

from __future__ import annotations

import argparse
import time

from fraud_core.generator import GeneratorConfig, generate_orders

MIN_ORDERS = 1_000_000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, default=365)
    parser.add_argument("--orders-per-day", type=int, default=GeneratorConfig.orders_per_day)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    if args.days * args.orders_per_day < MIN_ORDERS:
        parser.error(f"days x orders-per-day must be at least {MIN_ORDERS:,} to be a fair measure")

    config = GeneratorConfig(days=args.days, orders_per_day=args.orders_per_day)
    generate_orders(GeneratorConfig(days=3, orders_per_day=1_000))  # warm imports and caches
    best = float("inf")
    for _ in range(args.repeat):
        started = time.perf_counter()
        orders = generate_orders(config)
        best = min(best, time.perf_counter() - started)
    # Best of N, not the mean: on a shared machine the minimum is the run least disturbed.
    print(
        f"{len(orders):,} orders over {config.days} days, best of {args.repeat}: {best:.2f} s, "
        f"{orders['is_fraud'].mean():.2%} fraud"
    )
    print(f"RESULT generator_orders_per_s={len(orders) / best:.0f} orders/s")


if __name__ == "__main__":
    main()
