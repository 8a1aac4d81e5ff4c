"""Feature-engine benchmark: the kernel alone, and the whole asset path (Dagster range run of
raw_orders -> orders_by_entity -> entity_features on a Dask cluster, parquet in and out).

    .venv/bin/python bench/features.py --orders 1200000          # generated sample data
    .venv/bin/python bench/features.py --input orders.parquet    # your orders (landing schema)
    .venv/bin/python bench/features.py --skip-asset-path --contract bench/contracts/six_entities.yaml

Prints `RESULT name=value unit` lines; figures go to bench/RESULTS.md.
"""

from __future__ import annotations

import argparse
import os
import resource
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq


def _peak_rss_gb() -> float:
    self_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    children_kb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return max(self_kb, children_kb) / 1024**2


def _orders(args) -> pd.DataFrame:
    if args.input:
        return pq.read_table(args.input).to_pandas()
    from fraud_core.generator import GeneratorConfig, generate_orders

    days = max(1, round(args.orders / 3_333))
    # Days that are over: orders dated in the future are refused (FRAUD_MAX_FUTURE_S).
    start = date.today() - timedelta(days=days + 1)
    cfg = GeneratorConfig(
        orders_per_day=max(1, args.orders // days), days=days, seed=args.seed, start=start
    )
    return generate_orders(cfg)


def _contract_spec(path: str, orders: pd.DataFrame):
    """The spec of the contract at `path`, and `orders` with its derived entity columns (each
    entity's column through its transform), for the kernel."""
    from fraud_core.contract import load_contract
    from fraud_core.contract.transforms import entity_keys

    contract = load_contract(path)
    orders = orders.copy()
    for e in contract.entities:
        if e.name not in orders.columns or e.transform is not None:
            orders[e.name] = entity_keys(e, orders[e.column]).fillna("")
    return contract.spec, orders


def bench_kernel(orders: pd.DataFrame, repeats: int, spec=None) -> None:
    """The kernel alone (the compiled passes over arrays already sorted by entity, all three
    kinds plus the order's own features), then the in-memory offline step around it (`advance`:
    string ids to codes, sorting by entity, features back in input order, state retention).

    The kernel is timed `repeats` times. The first run in a process also pays for first touching
    the ~1 GB of memory its outputs take, which on this VM costs more than the computation; the
    reported rate is the median of the runs after it, and the first run is printed too."""
    import numpy as np

    from fraud_core.features.kernel import entity_kernel, order_kernel, warm_up
    from fraud_core.features.offline import _codes, advance, canonical_order, events_from_orders
    from fraud_core.features.pipeline import day_end_s
    from fraud_core.features.spec import DEFAULT_SPEC

    spec = spec or DEFAULT_SPEC
    orders = canonical_order(orders)
    prepared = []
    for e in spec.entities:
        ev = events_from_orders(orders, e.kind, spec)
        order = np.argsort(_codes(ev["entity"]), kind="stable")
        prepared.append(
            (
                e.kind,
                _codes(ev["entity"])[order],
                ev["t_s"].to_numpy()[order],
                ev["cents"].to_numpy()[order],
                {c: _codes(ev[c])[order] for c in e.counterparts},
                ev["label_s"].to_numpy()[order],
            )
        )
    start = time.perf_counter()
    warm_up()  # once per process: loads the compiled kernel (compiles it on a machine's first run)
    print(f"RESULT kernel_warm_up_seconds={time.perf_counter() - start:.2f} s")
    runs = []
    for _ in range(repeats):
        start = time.perf_counter()
        outputs = [order_kernel(prepared[0][2], prepared[0][3])]
        for kind, group, t_s, cents, cps, labels in prepared:
            outputs.append(entity_kernel(spec, kind, group, t_s, cents, cps, labels))
        runs.append(time.perf_counter() - start)
        del outputs
    steady = float(np.median(runs[1:])) if len(runs) > 1 else runs[0]
    print(f"RESULT kernel_first_run_seconds={runs[0]:.2f} s (includes first-touch page faults)")
    print(f"RESULT kernel_seconds={steady:.2f} s (median of {max(len(runs) - 1, 1)} runs)")
    print(f"RESULT kernel_orders_per_s={len(orders) / steady:,.0f} orders/s (one core)")
    print(
        f"RESULT kernel_seconds_per_entity={steady / len(spec.entities):.2f} s "
        f"({len(spec.entities)} entities, {len(spec.feature_names)} features)"
    )

    end = day_end_s(orders["order_date"].max().date())
    start = time.perf_counter()
    feats, _ = advance({}, orders, end, spec)
    seconds = time.perf_counter() - start
    print(
        f"RESULT advance_orders_per_s={len(orders) / seconds:,.0f} orders/s (one core, in memory)"
    )
    print(f"RESULT features={feats.shape[1] - 1} columns")


def bench_asset_path(orders: pd.DataFrame, workers: int) -> None:
    # The daily partitions start on the first day of the data (read when fraud_assets loads).
    os.environ.setdefault("FRAUD_START_DATE", orders["order_date"].min().date().isoformat())
    from dagster import materialize

    from fraud_assets.assets.entity_features import entity_features
    from fraud_assets.assets.orders_by_entity import orders_by_entity
    from fraud_assets.assets.raw_orders import raw_orders
    from fraud_assets.resources import DaskResource, DataLayoutResource
    from fraud_core.storage import DataLayout, write_parquet

    with tempfile.TemporaryDirectory(prefix="fraud-bench-") as tmp:
        layout = DataLayout(Path(tmp))
        day = orders["order_date"].dt.floor("D")
        for d, part in orders.groupby(day):
            write_parquet(part, layout.landing / f"orders_{d.date().isoformat()}.parquet")
        first, last = day.min().date(), day.max().date()
        resources = {
            "layout": DataLayoutResource(data_dir=tmp),
            "dask": DaskResource(n_workers=workers, threads_per_worker=1, processes=False),
        }
        tags = {
            "dagster/asset_partition_range_start": first.isoformat(),
            "dagster/asset_partition_range_end": last.isoformat(),
        }
        timings = {}
        for name, assets in (
            ("ingest", [raw_orders, orders_by_entity]),
            ("features", [raw_orders, orders_by_entity, entity_features]),
        ):
            selection = [entity_features] if name == "features" else None
            start = time.perf_counter()
            result = materialize(assets, resources=resources, tags=tags, selection=selection)
            assert result.success
            timings[name] = time.perf_counter() - start
        n_days = (last - first + timedelta(days=1)).days
        rows = sum(
            pq.read_metadata(layout.entity_features(first + timedelta(days=i))).num_rows
            for i in range(n_days)
        )
        assert rows == len(orders), (rows, len(orders))
    print(
        f"RESULT ingest_path_seconds={timings['ingest']:.2f} s (raw_orders + orders_by_entity, {n_days} days)"
    )
    print(
        f"RESULT feature_path_seconds={timings['features']:.2f} s (entity_features, {len(orders):,} orders)"
    )
    print(f"RESULT feature_path_orders_per_s={len(orders) / timings['features']:,.0f} orders/s")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--input", help="parquet of orders in the landing schema")
    source.add_argument("--orders", type=int, default=1_200_000, help="generate this many orders")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument(
        "--workers", type=int, default=2, help="Dask workers (threads) for the asset path"
    )
    parser.add_argument(
        "--repeats", type=int, default=4, help="kernel runs (first one reported apart)"
    )
    parser.add_argument("--skip-asset-path", action="store_true")
    parser.add_argument(
        "--contract",
        default=None,
        help="time the kernel with this contract's entities and features (derived entities "
        "computed through its transforms), e.g. bench/contracts/six_entities.yaml; the asset "
        "path always runs the built-in contract",
    )
    args = parser.parse_args()

    start = time.perf_counter()
    orders = _orders(args)
    print(
        f"orders: {len(orders):,} over {orders['order_date'].dt.floor('D').nunique()} days ({time.perf_counter() - start:.1f} s to load)"
    )
    if args.contract:
        spec, shaped = _contract_spec(args.contract, orders)
        bench_kernel(shaped, args.repeats, spec)
    else:
        bench_kernel(orders, args.repeats)
    if not args.skip_asset_path:
        bench_asset_path(orders, args.workers)
    print(f"RESULT peak_rss_gb={_peak_rss_gb():.2f} GB")


if __name__ == "__main__":
    main()
