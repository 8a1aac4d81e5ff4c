"""A write that dies halfway never leaves a half file under a final name, and the re-run produces
exactly the files of a clean run.

The failure is injected into pyarrow's parquet writer: it writes the first half of the file's
bytes to the path it was given, then raises, as a killed process or a full disk would leave it.
It strikes while entity_features writes its second day, after the raw orders, buckets, entity
state and first feature day of the run are already written."""

from __future__ import annotations

import io
import json
import shutil
from datetime import timedelta
from pathlib import Path

import pyarrow.parquet as pq
from dagster import materialize

from fraud_assets.assets.entity_features import entity_features
from fraud_assets.assets.orders_by_entity import orders_by_entity
from fraud_assets.assets.raw_orders import raw_orders
from fraud_assets.partitions import partition_range_tags
from fraud_core.storage import DataLayout

from ..configs import START, feature_resources

DAYS = [START + timedelta(days=i) for i in range(3)]
ASSETS = [raw_orders, orders_by_entity, entity_features]


def _run(root: Path) -> bool:
    return materialize(
        ASSETS,
        resources=feature_resources(root),
        tags=partition_range_tags(DAYS[0], DAYS[-1]),
        raise_on_error=False,
    ).success


def _outputs(root: Path) -> dict[str, bytes]:
    """Every derived file's bytes; a day's ingestion record by what it accepted (it also holds
    run ids and times)."""
    out = {}
    for p in sorted(root.rglob("*")):
        if not p.is_file() or "landing" in p.parts:
            continue
        if p.name == "_ACCEPTED.json":
            accepted = json.loads(p.read_text())["accepted"]
            out[str(p.relative_to(root))] = json.dumps(
                {k: accepted[k] for k in ("action", "files", "valid_rows", "quarantined_rows")}
            ).encode()
        else:
            out[str(p.relative_to(root))] = p.read_bytes()
    return out


def test_a_write_killed_halfway_leaves_no_half_file_and_the_rerun_is_identical(
    landed: DataLayout, tmp_path, monkeypatch
):
    clean, crashed = tmp_path / "clean", tmp_path / "crashed"
    for root in (clean, crashed):
        shutil.copytree(landed.landing, root / "landing")
    assert _run(clean)
    expected = _outputs(clean)
    assert any("entity_features" in name for name in expected)

    real_write = pq.write_table
    victim = DataLayout(crashed).entity_features(DAYS[1])

    def dying_write(table, where, *args, **kwargs):
        # the run's staging tree or the final place: wherever the second day's features go
        if Path(where).parent.name == victim.parent.name and victim.name in Path(where).name:
            buffer = io.BytesIO()
            real_write(table, buffer, *args, **kwargs)
            Path(where).write_bytes(buffer.getvalue()[: len(buffer.getvalue()) // 2])
            raise OSError("injected: the process died halfway through the write")
        return real_write(table, where, *args, **kwargs)

    monkeypatch.setattr(pq, "write_table", dying_write)
    assert not _run(crashed)
    monkeypatch.setattr(pq, "write_table", real_write)

    after_crash = _outputs(crashed)
    # Earlier outputs of the run are there, the victim is not: never a half file.
    assert DataLayout(crashed).raw_orders(DAYS[2]).exists()
    assert not DataLayout(crashed).entity_features(DAYS[1]).exists()
    leftovers = [name for name in after_crash if Path(name).name.startswith(".")]
    assert leftovers == []  # the temporary file went with the failed write
    # nothing of the failed feature run is published: no snapshot, no feature file
    assert not any((crashed / "entity_state").rglob("*.parquet"))
    assert not DataLayout(crashed).entity_features(DAYS[0]).exists()
    for name in after_crash:
        if name.endswith(".parquet"):
            pq.read_metadata(crashed / name)  # every file under a final name is whole

    assert _run(crashed)
    assert _outputs(crashed) == expected  # byte for byte
