"""Metadata values for the Dagster UI built from DataFrames and the order schema."""

from __future__ import annotations

import math

import pandas as pd
from dagster import MetadataValue, TableColumn, TableMetadataValue, TableRecord, TableSchema

from fraud_core.contract import Contract, builtin_contract
from fraud_core.schema import columns_of


def order_column_schema(contract: Contract | None = None) -> TableSchema:
    """The validated orders' columns under `contract` (default the built-in one) as a column
    schema (`dagster/column_schema`)."""
    return TableSchema(
        columns=[
            TableColumn(c.name, str(c.type), description=c.description)
            for c in columns_of(contract or builtin_contract())
        ]
    )


def _plain(value: object) -> str | int | float | bool | None:
    if value is None or value is pd.NaT or value is pd.NA:
        return None
    if isinstance(value, pd.Timestamp):
        return value.isoformat()
    if isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        return None if math.isnan(value) else value
    if hasattr(value, "item"):  # numpy scalars
        return _plain(value.item())
    return str(value)


def preview_table(df: pd.DataFrame, n_rows: int = 5) -> TableMetadataValue:
    """The first rows of `df` as a table the UI renders."""
    head = df.head(n_rows)
    records = [
        TableRecord({str(k): _plain(v) for k, v in row.items()})
        for row in head.to_dict(orient="records")
    ]
    schema = TableSchema(columns=[TableColumn(str(c), str(t)) for c, t in df.dtypes.items()])
    return MetadataValue.table(records, schema=schema)
