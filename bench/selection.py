"""Model selection that holds on unseen data, measured (issue 19).

1. **Default vs selected, nested**: `fraud backtest --compare nested` on the default sample data
   (`fraud generate`, 365 days ending yesterday, ~1.2M orders) and on generated card-present transactions (the
   card_present contract): in each of 4 folds a model selection runs on the days before the
   fold's cutoff (labels known then) and its pick is trained beside the defaults; the per-fold AP
   of both, the paired differences and their 95 % t interval come from the command's report.
2. **Selection's wall time**: `model_selection` materialized with `dagster asset materialize` on
   a persistent SQLite instance (what a user waits for), over entity_features files of the
   default data (written here with the production feature code, not timed), default config:
   3 folds x 7 settings within the 900 s budget. Peak RSS of that process tree.
3. **No false leaks**: each feature's ROC AUC on its own over the last 88 days of both datasets,
   against the leak check's 0.98.

    .venv/bin/python bench/selection.py [--work DIR] [--only default|card|selection|auc]

Prints the commands' own output and one `RESULT` line per measurement.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import threading
import time
from datetime import date, timedelta
from pathlib import Path

import psutil

PROJECT = Path(__file__).resolve().parents[1]
PYTHON = sys.executable
FRAUD = [PYTHON, "-m", "fraud_cli.main"]
CARD_CONTRACT = PROJECT / "contracts" / "card_present.yaml"


def _run(cmd: list[str], env: dict[str, str] | None = None) -> tuple[str, float, float]:
    """(stdout, wall seconds, peak RSS in GB over the process tree)."""
    started = time.perf_counter()
    process = subprocess.Popen(
        cmd,
        cwd=PROJECT,
        env={**os.environ, **(env or {})},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    peak = 0.0
    stop = threading.Event()

    def sample() -> None:
        nonlocal peak
        root = psutil.Process(process.pid)
        while not stop.wait(0.5):
            try:
                procs = [root, *root.children(recursive=True)]
                rss = sum(p.memory_info().rss for p in procs if p.is_running())
            except psutil.Error:
                continue
            peak = max(peak, rss / 1e9)

    watcher = threading.Thread(target=sample, daemon=True)
    watcher.start()
    out, _ = process.communicate()
    stop.set()
    watcher.join()
    if process.returncode != 0:
        print(out)
        raise SystemExit(f"{' '.join(cmd)} failed ({process.returncode})")
    return out, time.perf_counter() - started, peak


# A year of the default sample data ending yesterday: landing validation refuses orders dated
# in the future, so days after today would be empty.
DEFAULT_START = date.today() - timedelta(days=366)


def _default_landing(work: Path) -> Path:
    root = work / "default"
    if not (root / "landing").exists():
        _run([*FRAUD, "generate", "--out", str(root / "landing"), "--start", str(DEFAULT_START)])
    return root


def _card_landing(work: Path) -> Path:
    root = work / "card"
    if not (root / "landing").exists():
        from fraud_core.card_generator import CardGeneratorConfig, write_card_files
        from fraud_core.contract import load_contract

        config = CardGeneratorConfig(n_cards=5_000, n_merchants=400, txns_per_day=1_500, days=300)
        _, orders, fraud = write_card_files(config, root / "landing", load_contract(CARD_CONTRACT))
        print(f"card-present: {orders:,} transactions, {fraud:,} fraud, 300 days")
    return root


def nested_backtest(root: Path, contract: Path | None, label: str) -> None:
    """Four folds of 14 days ending on the last landing day."""
    cmd = [*FRAUD, "backtest", "--data-dir", str(root), "--folds", "4"]
    cmd += ["--train-days", "90", "--delay-days", "30", "--test-days", "14"]
    cmd += ["--compare", "nested", "--selection-folds", "3"]
    if contract is not None:
        cmd += ["--contract", str(contract)]
    out, seconds, peak = _run(cmd)
    print(out)
    gain = re.search(r"minus default AP over (\d+) folds: ([+-][\d.]+), 95 % interval (\S+)", out)
    print(
        f"RESULT {label} nested backtest: {seconds:.0f} s wall, peak RSS {peak:.2f} GB; "
        f"selected - default AP {gain.group(2) if gain else '?'} "
        f"(95 % interval {gain.group(3) if gain else '?'})"
    )


def alone_auc(root: Path, contract: Path | None, label: str, days: int = 88) -> None:
    """The leak check's view of honest data: each feature's ROC AUC on its own (folded,
    empty values lowest) over the last `days` days, the highest five."""
    import pandas as pd

    from fraud_core.contract import CONTRACT_ENV, applied_contract
    from fraud_core.model.replay import feature_days, landing_days, validated_days
    from fraud_core.model.selection import alone_auc
    from fraud_core.storage import DataLayout

    if contract is not None:
        os.environ[CONTRACT_ENV] = str(contract)
    spec = applied_contract().spec
    layout = DataLayout(root)
    on_disk = landing_days(layout.landing)
    first = on_disk[-1] - timedelta(days=days - 1)
    frames = [
        f
        for d, f in feature_days(validated_days(layout.landing, on_disk[0], on_disk[-1], {}), spec)
        if d >= first
    ]
    frame = pd.concat(frames, ignore_index=True)
    labels = frame["is_fraud"].fillna(0).to_numpy()
    aucs = [(alone_auc(frame[name].to_numpy(), labels), name) for name in spec.feature_names]
    top = ", ".join(f"{n} {a:.3f}" for a, n in sorted(aucs, reverse=True)[:5])
    print(f"RESULT {label}: highest AUC of one feature alone, last {days} days: {top}")
    os.environ.pop(CONTRACT_ENV, None)


def selection_job(work: Path) -> None:
    root = _default_landing(work)
    data = root / "data"
    if not data.exists():
        from fraud_core.generator import GeneratorConfig, iter_daily_orders
        from fraud_core.model.replay import feature_days
        from fraud_core.storage import DataLayout, write_parquet

        layout = DataLayout(data)
        for day, frame in feature_days(iter_daily_orders(GeneratorConfig(start=DEFAULT_START))):
            write_parquet(frame, layout.entity_features(day))
    home = Path(tempfile.mkdtemp(prefix="selection_home_"))
    (home / "dagster.yaml").write_text((PROJECT / "dagster.yaml").read_text())
    env = {"DAGSTER_HOME": str(home), "FRAUD_DATA_DIR": str(data)}
    cmd = [PYTHON, "-m", "dagster", "asset", "materialize", "-m", "fraud_assets.definitions"]
    cmd += ["--select", "model_selection"]
    out, seconds, peak = _run(cmd, env)
    lines = [x for x in out.splitlines() if ("fold" in x and "AP" in x) or "selected" in x]
    print("\n".join(lines[-30:]))
    print(
        f"RESULT model_selection (dagster asset materialize, persistent SQLite instance): "
        f"{seconds:.0f} s wall, peak RSS {peak:.2f} GB"
    )
    print((data / "model_selection" / "latest.md").read_text())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", type=Path, default=Path(tempfile.gettempdir()) / "selection")
    parser.add_argument(
        "--only",
        choices=("default", "card", "selection", "auc"),
        default=None,
        help="one measurement: the nested backtest on the default or the card-present data, "
        "the model_selection job, or each feature's AUC alone on both datasets",
    )
    args = parser.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)
    if args.only in (None, "default"):
        nested_backtest(_default_landing(args.work), None, "default data")
    if args.only in (None, "card"):
        nested_backtest(_card_landing(args.work), CARD_CONTRACT, "card-present")
    if args.only in (None, "selection"):
        selection_job(args.work)
    if args.only in (None, "auc"):
        alone_auc(_default_landing(args.work), None, "default data")
        alone_auc(_card_landing(args.work), CARD_CONTRACT, "card-present")


if __name__ == "__main__":
    main()
