"""`fraud generate`: the files it writes, through `main()` and through the installed console
script."""

from __future__ import annotations

import subprocess
import sys
from datetime import date
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq
import pytest

from fraud_cli.main import main
from fraud_core.generator import GeneratorConfig, generate_orders
from fraud_core.schema import COLUMN_NAMES, ORDER_SCHEMA

DAYS = ["2026-01-01", "2026-01-02", "2026-01-03"]
ARGS = ["--days", "3", "--orders-per-day", "500", "--seed", "5", "--quiet"]


@pytest.fixture(scope="module")
def expected() -> pd.DataFrame:
    """What the generator itself gives for ARGS (the default pools of 10,000)."""
    return generate_orders(GeneratorConfig(days=3, orders_per_day=500, seed=5))


def _read_csv(path: Path) -> pa.Table:
    types = {f.name: f.type for f in ORDER_SCHEMA}
    options = pa_csv.ConvertOptions(column_types=types, strings_can_be_null=False)
    return pa_csv.read_csv(path, convert_options=options)


@pytest.mark.parametrize("fmt", ["parquet", "csv"])
def test_generate_writes_one_readable_file_per_day(
    fmt: str, tmp_path: Path, expected: pd.DataFrame, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["generate", *ARGS, "--out", str(tmp_path), "--format", fmt]) == 0

    files = sorted(tmp_path.iterdir())
    assert [f.name for f in files] == [f"orders_{d}.{fmt}" for d in DAYS]
    tables = [pq.read_table(f) if fmt == "parquet" else _read_csv(f) for f in files]
    for day, table in zip(DAYS, tables, strict=True):
        assert table.column_names == list(COLUMN_NAMES)
        assert table.schema.types == ORDER_SCHEMA.types
        dates = table["order_date"].to_pandas()
        assert (dates.dt.strftime("%Y-%m-%d") == day).all()
        assert table.num_rows > 300

    written = pa.concat_tables([t.cast(ORDER_SCHEMA) for t in tables]).to_pandas()
    pd.testing.assert_frame_equal(written, expected)

    summary = capsys.readouterr().out.strip()
    assert f"wrote 3 {fmt} files" in summary
    assert f"{len(expected):,} orders" in summary
    assert f"{expected['is_fraud'].mean():.2%}" in summary
    assert not list(tmp_path.glob(".*.tmp"))  # atomic writes leave no temporary files behind


def test_csv_timestamps_are_iso_8601_utc(tmp_path: Path) -> None:
    main(
        [
            "generate",
            "--days",
            "1",
            "--orders-per-day",
            "400",
            "--out",
            str(tmp_path),
            "--format",
            "csv",
            "--quiet",
        ]
    )
    frame = pd.read_csv(tmp_path / "orders_2026-01-01.csv", dtype=str, keep_default_na=False)
    assert frame["order_date"].str.fullmatch(r"2026-01-01T\d\d:\d\d:\d\dZ").all()
    fraud = frame["is_fraud"] == "1"
    assert frame.loc[fraud, "label_date"].str.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ").all()
    assert (frame.loc[~fraud, "label_date"] == "").all()


def test_default_out_is_the_landing_folder_and_start_is_honoured(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("FRAUD_DATA_DIR", str(tmp_path / "data"))
    args = [
        "generate",
        "--days",
        "2",
        "--orders-per-day",
        "50",
        "--start",
        "2025-02-28",
        "--customers",
        "200",
    ]
    assert main([*args, "--emails", "200", "--ips", "200"]) == 0
    landing = tmp_path / "data" / "landing"
    assert sorted(p.name for p in landing.iterdir()) == [
        "orders_2025-02-28.parquet",
        "orders_2025-03-01.parquet",
    ]
    first = pq.read_table(landing / "orders_2025-02-28.parquet").to_pandas()
    assert (first["order_date"].dt.date == date(2025, 2, 28)).all()
    assert "(2025-02-28 to 2025-03-01)" in capsys.readouterr().out


@pytest.mark.parametrize(
    "bad",
    [["--days", "0"], ["--start", "2026-13-01"], ["--format", "json"], ["--seed", "-1"]],
)
def test_bad_arguments_are_refused(bad: list[str], tmp_path: Path) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["generate", *bad, "--out", str(tmp_path)])
    assert exit_info.value.code == 2
    assert not any(tmp_path.iterdir())


def test_a_bad_config_value_returns_an_error_code(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["generate", "--fraud-rate", "0.9", "--out", str(tmp_path)]) == 2
    assert "fraud_rate" in capsys.readouterr().err
    assert not any(tmp_path.iterdir())


def test_console_script_generates_files(tmp_path: Path) -> None:
    script = Path(sys.executable).parent / "fraud"
    if not script.exists():
        pytest.skip("the project is not installed in this interpreter's environment")
    out = tmp_path / "landing"
    args = ["generate", "--days", "2", "--orders-per-day", "300", "--out", str(out), "--seed", "9"]
    result = subprocess.run(
        [str(script), *args], capture_output=True, text=True, timeout=120, check=False
    )
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""  # not a TTY: no progress bar
    assert sorted(p.name for p in out.iterdir()) == [
        "orders_2026-01-01.parquet",
        "orders_2026-01-02.parquet",
    ]
    rows = sum(pq.read_metadata(p).num_rows for p in out.iterdir())
    assert f"{rows:,} orders" in result.stdout
