"""`fraud contract check | infer` and `--contract` on the other commands: the contract in use, or
a file, summarised; a bad one is exit 2 with the error on stderr. Most run the command's `main`
in this process; the ones that must show what a user's shell sees run it as a process."""

from __future__ import annotations

import subprocess
import sys
from types import SimpleNamespace

import pytest

from fraud_cli.main import main
from fraud_core.contract import CONTRACT_ENV, DEFAULT_CONTRACT_PATH


def _process(*args: str, env_extra: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """`fraud *args` as its own process (what a user's shell runs), without $FRAUD_CONTRACT
    unless `env_extra` sets it."""
    import os

    env = {k: v for k, v in os.environ.items() if k != CONTRACT_ENV} | (env_extra or {})
    return subprocess.run(
        [sys.executable, "-m", "fraud_cli.main", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )


@pytest.fixture
def fraud(capsys, monkeypatch):
    """`fraud *args` in this process (the command's own `main`), without $FRAUD_CONTRACT unless
    `env` sets it: exit code and output, as a process would give them."""

    def run(*args: str, env: dict[str, str] | None = None) -> SimpleNamespace:
        monkeypatch.delenv(CONTRACT_ENV, raising=False)
        for name, value in (env or {}).items():
            monkeypatch.setenv(name, value)
        capsys.readouterr()
        code = main(list(args))
        out = capsys.readouterr()
        return SimpleNamespace(returncode=code, stdout=out.out, stderr=out.err)

    return run


def test_check_summarises_the_contract_in_use(tmp_path, fraud):
    out = fraud("contract", "check")
    assert out.returncode == 0, out.stderr
    assert "contract 'ecommerce' is valid" in out.stdout
    assert "entity customer_id: from 'customer_id'; primary" in out.stdout
    assert "110 features" in out.stdout

    mine = tmp_path / "mine.yaml"
    text = DEFAULT_CONTRACT_PATH.read_text().replace("name: ecommerce", "name: mine")
    mine.write_text(text.replace("history_n: 10", "history_n: 5"))
    out = fraud("contract", "check", env={CONTRACT_ENV: str(mine)})
    assert out.returncode == 0 and "contract 'mine' is valid" in out.stdout
    assert "history 5 orders" in out.stdout


def test_check_refuses_a_misspelt_key_naming_it(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text(DEFAULT_CONTRACT_PATH.read_text().replace("  order_time:", "  order_tme:"))
    out = _process("contract", "check", str(bad))
    assert out.returncode == 2
    assert out.stdout == ""
    assert (
        f"{bad}:9: source.order_tme: unknown key (known here: order_id, order_time, amount, labels); did you mean 'order_time'?"
        in out.stderr
    )
    assert "Traceback" not in out.stderr


def test_serve_refuses_a_contract_it_cannot_serve(tmp_path):
    other = tmp_path / "other.yaml"  # labels could not reach the IP through the customer
    other.write_text(
        DEFAULT_CONTRACT_PATH.read_text().replace(
            "counterparts: [email, ip_addr]", "counterparts: [email]", 1
        )
    )
    out = _process(
        "serve", "--port", "1", env_extra={CONTRACT_ENV: str(other), "FRAUD_API_KEYS": "k"}
    )
    assert out.returncode == 2
    assert (
        "the scoring service cannot serve contract 'ecommerce': entities[0].counterparts of the "
        "primary entity 'customer_id' leave out ip_addr" in out.stderr
    )
    assert "Traceback" not in out.stderr


def test_generate_writes_files_in_a_contracts_shape(tmp_path, fraud):
    import pandas as pd

    from fraud_core.contract import SHIPPED, load_contract
    from fraud_core.contract.source import SourceFormat
    from fraud_core.validation import landing_files_for_day, read_landing_file, validate_orders

    export = SHIPPED / "ecommerce_export.yaml"
    out = fraud(
        "generate",
        "--days",
        "2",
        "--orders-per-day",
        "40",
        "--format",
        "csv",
        "--contract",
        str(export),
        "--out",
        str(tmp_path),
        "--quiet",
    )
    assert out.returncode == 0, out.stderr
    shape = SourceFormat.of(load_contract(export))
    (path,) = landing_files_for_day(tmp_path, pd.Timestamp("2026-01-01").date())
    rows = read_landing_file(path)
    assert list(rows.columns[:3]) == ["id", "created_at", "user_id"]
    result = validate_orders(rows, pd.Timestamp("2026-01-01").date(), source=shape)
    assert result.quarantine.empty and len(result.valid) == len(rows) > 0

    other = tmp_path / "other.yaml"
    other.write_text(export.read_text().replace("ip_addr", "device"))  # no sample data for it
    out = fraud("generate", "--contract", str(other), "--out", str(tmp_path / "x"), "--days", "2")
    assert out.returncode == 2
    assert "has the entities ['customer_id', 'device', 'email']: sample data exists" in out.stderr
    assert not (tmp_path / "x").exists()


def test_check_maps_a_sample_of_your_orders(tmp_path, fraud):
    import pandas as pd

    from fraud_core.contract import SHIPPED

    export = SHIPPED / "ecommerce_export.yaml"
    out = fraud(
        "generate",
        "--days",
        "2",
        "--orders-per-day",
        "30",
        "--format",
        "csv",
        "--contract",
        str(export),
        "--out",
        str(tmp_path),
        "--quiet",
    )
    assert out.returncode == 0, out.stderr
    sample = pd.concat(
        [pd.read_csv(p, dtype=str, keep_default_na=False) for p in sorted(tmp_path.glob("*.csv"))]
    )
    sample.iloc[0, sample.columns.get_loc("created_at")] = "2026-01-01T10:00:00"
    sample.iloc[1, sample.columns.get_loc("amount_cents")] = "12.5"
    path = tmp_path / "sample.csv"
    sample.to_csv(path, index=False)

    out = fraud("contract", "check", str(export), "--sample", str(path))
    assert out.returncode == 0, out.stderr
    total = len(sample)
    assert (
        f"sample sample.csv: {total:,} rows over 2 days: {total - 2:,} valid, 2 would be quarantined"
        in out.stdout
    )
    assert "1  created_at: no UTC offset" in out.stdout
    assert "1  amount_cents: not a whole number of minor units" in out.stdout

    # the built-in contract names columns the export does not have
    out = fraud("contract", "check", "--sample", str(path))
    assert out.returncode == 2
    assert "entities[0].column: 'customer_id' is not a column of the sample" in out.stderr
    assert "the sample's columns: id, created_at, user_id, email, ip, amount_cents," in out.stderr

    # a contract with its own entities is checked; one the service cannot serve says why
    card = tmp_path / "card.yaml"
    card.write_text(
        export.read_text()
        .replace("  - name: ip_addr\n", "  - name: device\n")
        .replace("[customer_id, ip_addr]", "[customer_id, device]")
        .replace("counterparts: [email, ip_addr]", "counterparts: [email]")
    )
    out = fraud("contract", "check", str(card), "--sample", str(path))
    assert out.returncode == 0, out.stderr
    assert "the pipeline applies it; the scoring service cannot serve it" in out.stdout
    assert "'customer_id' leave out device" in out.stdout
    assert f"{total - 2:,} valid, 2 would be quarantined" in out.stdout  # validated all the same


def test_infer_proposes_a_contract_that_checks_against_its_sample(tmp_path, fraud):
    out = fraud(
        "generate", "--days", "2", "--orders-per-day", "60", "--out", str(tmp_path), "--quiet"
    )
    assert out.returncode == 0, out.stderr
    sample = sorted(tmp_path.glob("*.parquet"))[0]
    proposal = tmp_path / "proposal.yaml"
    out = fraud("contract", "infer", str(sample), "--out", str(proposal))
    assert out.returncode == 0, out.stderr
    assert "read it, edit it" in out.stdout
    out = fraud("contract", "check", str(proposal), "--sample", str(sample))
    assert out.returncode == 0, out.stderr
    assert "contract 'my_orders' is valid" in out.stdout
    assert "0 would be quarantined" in out.stdout and "cannot apply" not in out.stdout

    bad = tmp_path / "bad.csv"
    bad.write_text("a,b\n1,2\n")
    out = fraud("contract", "infer", str(bad))
    assert out.returncode == 2 and "cannot tell the" in out.stderr
    assert "Traceback" not in out.stderr


def test_generate_writes_card_present_transactions_and_check_validates_them(tmp_path, fraud):
    from fraud_core.contract import SHIPPED

    card = SHIPPED / "card_present.yaml"
    out = fraud(
        "generate",
        "--contract",
        str(card),
        "--days",
        "3",
        "--orders-per-day",
        "300",
        "--format",
        "csv",
        "--out",
        str(tmp_path),
    )
    assert out.returncode == 0, out.stderr
    assert "card-present transactions" in out.stdout
    sample = tmp_path / "orders_2026-01-02.csv"
    assert sample.read_text().splitlines()[0].startswith("txn_id,txn_time,card_token,terminal_id")
    out = fraud("contract", "check", str(card), "--sample", str(sample))
    assert out.returncode == 0, out.stderr
    assert "0 would be quarantined" in out.stdout
    assert "the scoring service cannot serve it" not in out.stdout
