"""The order schema: the landing-file contract and the validated form every later step reads.

A landing file is parquet or CSV with these columns. `is_fraud` and `label_date` are optional: a
label is known from `label_date` on (a chargeback arrives days or weeks after the order), and
everything downstream respects that time.
"""

from __future__ import annotations

from dataclasses import dataclass

import pyarrow as pa


@dataclass(frozen=True)
class Column:
    name: str
    type: pa.DataType
    required: bool
    description: str


TIMESTAMP = pa.timestamp("us", tz="UTC")

COLUMNS: tuple[Column, ...] = (
    Column("order_id", pa.string(), True, "unique id of the order"),
    Column("order_date", TIMESTAMP, True, "when the order was placed (UTC)"),
    Column("customer_id", pa.string(), True, "account id of the buyer"),
    Column("email", pa.string(), True, "e-mail address given with the order"),
    Column("ip_addr", pa.string(), True, "IP address the order came from"),
    Column("order_amount", pa.float64(), True, "order value in the shop's currency, >= 0"),
    Column("location_lat", pa.float64(), True, "latitude of the shipping address"),
    Column("location_long", pa.float64(), True, "longitude of the shipping address"),
    Column("is_fraud", pa.int8(), False, "1 if the order was found fraudulent, 0 or empty if not"),
    Column(
        "label_date",
        TIMESTAMP,
        False,
        "when the fraud label became known (e.g. the chargeback), UTC; empty when not fraud",
    ),
)

COLUMN_NAMES: tuple[str, ...] = tuple(c.name for c in COLUMNS)
REQUIRED_COLUMNS: tuple[str, ...] = tuple(c.name for c in COLUMNS if c.required)
ENTITY_KINDS: tuple[str, ...] = ("customer_id", "email", "ip_addr")

ORDER_SCHEMA = pa.schema([pa.field(c.name, c.type, nullable=not c.required) for c in COLUMNS])
"""Arrow schema of validated orders (`raw_orders`)."""


def schema_markdown() -> str:
    """The landing-file contract as a Markdown table (used in the README)."""
    rows = ["| column | type | required | meaning |", "|---|---|---|---|"]
    for c in COLUMNS:
        rows.append(
            f"| `{c.name}` | {c.type} | {'yes' if c.required else 'no'} | {c.description} |"
        )
    return "\n".join(rows)
