"""`raw_orders` under a contract of another shape (issue 15): a shop's export (other column
names, local times with offsets, amounts in cents, CSV) ingests to exactly the orders the
built-in shape gives, checks included."""

from __future__ import annotations

from datetime import timedelta

import pandas as pd
import pyarrow.parquet as pq

from fraud_assets.assets.raw_orders import raw_orders, raw_orders_checks
from fraud_core.contract import CONTRACT_ENV, SHIPPED, load_contract
from fraud_core.contract.source import BUILTIN_FORMAT, SourceFormat, source_orders
from fraud_core.storage import DataLayout
from fraud_core.validation import validate_orders

from ..checks import verdicts
from ..configs import START

DAYS = [START + timedelta(days=i) for i in range(4)]
EXPORT_CONTRACT = SHIPPED / "ecommerce_export.yaml"


def test_an_export_ingests_to_the_same_orders(landed, materialize_range, tmp_path, monkeypatch):
    builtin = materialize_range([raw_orders, raw_orders_checks], DAYS[0], DAYS[-1])
    assert builtin.success

    export = DataLayout(tmp_path / "export")
    export.landing.mkdir(parents=True)
    shape = SourceFormat.of(load_contract(EXPORT_CONTRACT))
    for day in DAYS:
        rows = pd.read_parquet(landed.landing / f"orders_{day.isoformat()}.parquet")
        valid = validate_orders(rows, day, source=BUILTIN_FORMAT).valid
        source_orders(shape, valid).to_csv(export.landing / f"export_{day}.csv", index=False)
    monkeypatch.setenv("FRAUD_DATA_DIR", str(export.root))
    monkeypatch.setenv(CONTRACT_ENV, str(EXPORT_CONTRACT))

    result = materialize_range([raw_orders, raw_orders_checks], DAYS[0], DAYS[-1])
    assert result.success
    assert all(e.passed for e in verdicts(result).values())
    contract = load_contract(EXPORT_CONTRACT)
    for event in result.get_asset_materialization_events():  # each day says how it was read
        recorded = event.materialization.metadata["contract"].value
        assert recorded == f"ecommerce_export ({contract.digest[:12]})"
    for day in DAYS:
        ours, theirs = pq.read_table(export.raw_orders(day)), pq.read_table(landed.raw_orders(day))
        assert ours.num_rows > 100
        assert ours.schema.remove_metadata().equals(theirs.schema.remove_metadata())
        assert ours.equals(theirs)
        assert pq.read_metadata(export.quarantine(day)).num_rows == 0
