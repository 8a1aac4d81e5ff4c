"""`fraud backtest`: from landing files alone (validation and features computed by the command
itself) to a report whose last line is the RESULT, without writing to the data folder (a local
one or an S3 bucket)."""

from __future__ import annotations

import re

import pytest

from fraud_cli.main import main
from fraud_core.generator import write_landing_files
from fraud_core.storage import DataLayout

from ..configs import labelled_orders

DATA = labelled_orders(days=40, seed=3)


@pytest.fixture(params=["local", "s3"])
def data_root(request, tmp_path) -> str:
    """The data folder: a local one, or an S3 bucket of the session's moto server."""
    return request.getfixturevalue("s3_root") if request.param == "s3" else str(tmp_path)


def test_backtest_from_landing_files(data_root, capsys: pytest.CaptureFixture[str]) -> None:
    layout = DataLayout.at(data_root)
    write_landing_files(DATA, layout.landing)
    before = sorted(str(p) for p in layout.root.rglob("*"))
    args = ["--train-days", "20", "--delay-days", "8", "--test-days", "5", "--folds", "2"]
    code = main(["backtest", "--data-dir", data_root, *args, "--workers-threads", "2"])
    out = capsys.readouterr().out
    assert code == 0
    assert "orders (0 quarantined)" in out
    assert "| fold | cutoff |" in out and "| rules |" in out
    # the last day is 2026-02-09; each fold's cutoff is its first assessed day
    assert "fold 0: cutoff 2026-02-05" in out and "fold 1: cutoff 2026-01-31" in out
    last = out.strip().splitlines()[-1]
    match = re.fullmatch(r"RESULT ap=(0\.\d{4}) auc=(0\.\d{4}) cp100=(0\.\d{4})", last)
    assert match, last
    ap, auc, cp = (float(x) for x in match.groups())
    assert ap > 0.3 and auc > 0.8 and 0 < cp <= 1
    assert sorted(str(p) for p in layout.root.rglob("*")) == before


def test_backtest_explains_missing_data(tmp_path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["backtest", "--data-dir", str(tmp_path)]) == 2
    assert "no landing files" in capsys.readouterr().err


def test_backtest_of_another_contracts_landing_files(
    tmp_path, monkeypatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from fraud_core.card_generator import CardGeneratorConfig, write_card_files
    from fraud_core.contract import CONTRACT_ENV, SHIPPED, load_contract

    contract_path = SHIPPED / "card_present.yaml"
    monkeypatch.setenv(CONTRACT_ENV, "")  # the command sets it; put back afterwards
    config = CardGeneratorConfig(
        n_cards=1_500, n_merchants=150, txns_per_day=700, days=40, seed=3, label_delay_days=(2, 7)
    )
    write_card_files(config, tmp_path / "landing", load_contract(contract_path))
    args = ["--train-days", "20", "--delay-days", "8", "--test-days", "5", "--folds", "2"]
    code = main(["backtest", "--data-dir", str(tmp_path), "--contract", str(contract_path), *args])
    out = capsys.readouterr().out
    assert code == 0
    assert "orders (0 quarantined)" in out and "| rules |" in out
    last = out.strip().splitlines()[-1]
    match = re.fullmatch(r"RESULT ap=(0\.\d{4}) auc=(0\.\d{4}) cp100=(0\.\d{4})", last)
    assert match, last
    ap, auc = float(match.group(1)), float(match.group(2))
    assert ap > 0.2 and auc > 0.8, last  # card-present fraud, found by the contract's features
    print(last)


def test_backtest_with_a_selection_nested_in_each_fold(
    tmp_path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`--compare nested`: each fold also trains what a selection on the days before its cutoff
    picks (2 settings x 2 inner folds here); the report gives default vs selected."""
    write_landing_files(DATA, tmp_path / "landing")
    args = ["--train-days", "20", "--delay-days", "3", "--test-days", "4", "--folds", "2"]
    nested = ["--compare", "nested", "--selection-folds", "2", "--settings", "defaults,shallow"]
    code = main(["backtest", "--data-dir", str(tmp_path), *args, *nested])
    out = capsys.readouterr().out
    assert code == 0, out
    assert "| selected |" in out
    assert re.search(r"Selected \(nested\) minus default AP over 2 folds: [+-]0\.\d{4}", out)
    assert re.search(r"fold 0: .*\| selected \((defaults|shallow)\) AP 0\.\d{3}", out)
    assert main(["backtest", "--data-dir", str(tmp_path), "--settings", "nope"]) == 2
    assert "unknown settings ['nope']" in capsys.readouterr().err
