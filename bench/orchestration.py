"""Costs of the orchestration layer at the default volume (300 landing files of ~3,333 orders):
a landing-sensor tick (first sight of every file, then a quiet tick), the per-run landing scan of
`raw_orders`, and `feature_drift`'s PSI of one day against a 28-day reference.

    .venv/bin/python bench/orchestration.py [--days 300] [--keep DIR]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
from dagster import instance_for_test

from fraud_assets.sensors.landing import plan_landing_runs
from fraud_assets.sensors.landing_cursor import LandingCursor, file_state
from fraud_core.drift import psi_by_column, stride_sample
from fraud_core.features.spec import DEFAULT_SPEC
from fraud_core.generator import GeneratorConfig, write_landing_files
from fraud_core.landing import landing_paths, scan_landing
from fraud_core.storage import DataLayout


def timed(fn):
    start = time.perf_counter()
    value = fn()
    return value, time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--days", type=int, default=300, help="days from 2026-01-01")
    parser.add_argument("--keep", type=Path, default=None, help="landing folder to reuse")
    args = parser.parse_args()
    landing = args.keep or DataLayout(tempfile.mkdtemp()).landing
    if not landing.exists() or not any(landing.iterdir()):
        write_landing_files(GeneratorConfig(days=args.days, start=date(2026, 1, 1)), landing)
    paths = landing_paths(landing)

    started_ns = time.time_ns()
    files, scan_s = timed(lambda: scan_landing(landing))
    with instance_for_test() as instance:
        plan, plan_s = timed(lambda: plan_landing_runs(instance, files))
    states = {p.name: file_state(p) for p in paths}
    cursor = LandingCursor.after_tick(states, plan.waiting, started_ns)
    _, quiet_s = timed(lambda: cursor.to_look_at({p.name: file_state(p) for p in paths}))
    cursor_text = cursor.write()

    names = list(DEFAULT_SPEC.feature_names)
    rng = np.random.default_rng(0)
    day = pd.DataFrame(rng.normal(size=(3_333, len(names))), columns=names)
    reference = pd.concat([stride_sample(day, 50_000 // 28)] * 28, ignore_index=True)
    _, psi_s = timed(lambda: psi_by_column(reference, day, names))

    figures = {
        "landing files": len(paths),
        "first tick: inspect every file (order dates)": f"{scan_s:.2f} s",
        "first tick: plan the runs (no earlier ingestion)": f"{plan_s:.2f} s",
        "runs requested": len(plan.run_requests),
        "quiet tick: file states only": f"{quiet_s * 1000:.1f} ms",
        "cursor size": f"{len(cursor_text):,} bytes",
        "raw_orders landing scan per run": f"{scan_s:.2f} s",
        f"PSI of {len(names)} features, 1 day vs {len(reference):,} reference rows": f"{psi_s:.2f} s",
    }
    print(json.dumps(figures, indent=1))


if __name__ == "__main__":
    main()
