"""The order schema: the platform's order columns and the validated form every later step reads.

The order's own columns (id, time, amount, labels) are the platform's; the entities and
attributes come from the built-in data contract (`contracts/ecommerce.yaml`). A landing file
under that contract is parquet or CSV with these columns (another contract maps its own names
onto them: `fraud_core.contract.source`). `is_fraud` and `label_date` are optional: a
label is known from `label_date` on (a chargeback arrives days or weeks after the order), and
everything downstream respects that time.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import pyarrow as pa

from fraud_core.contract.loader import builtin_contract
from fraud_core.contract.model import Contract


@dataclass(frozen=True)
class Column:
    name: str
    type: pa.DataType
    required: bool
    description: str


TIMESTAMP = pa.timestamp("us", tz="UTC")
ATTRIBUTE_TYPES = {"numeric": pa.float64(), "categorical": pa.string()}


def columns_of(contract: Contract) -> tuple[Column, ...]:
    """The platform's order columns under `contract`: the order's own, then one per entity, the
    amount, one per attribute, then the optional labels. The roles' meanings are the platform's;
    entities and attributes come from the contract."""
    return (
        Column("order_id", pa.string(), True, "unique id of the order"),
        Column("order_date", TIMESTAMP, True, "when the order was placed (UTC)"),
        *(
            Column(e.name, pa.string(), True, e.description or f"the order's {e.name}")
            for e in contract.entities
        ),
        Column("order_amount", pa.float64(), True, "order value in the shop's currency, >= 0"),
        *(
            Column(a.name, ATTRIBUTE_TYPES[a.type], a.required, a.description or a.name)
            for a in contract.attributes
        ),
        Column(
            "is_fraud", pa.int8(), False, "1 if the order was found fraudulent, 0 or empty if not"
        ),
        Column(
            "label_date",
            TIMESTAMP,
            False,
            "when the fraud label became known (e.g. the chargeback), UTC; empty when not fraud",
        ),
    )


@functools.lru_cache(maxsize=8)
def order_schema(contract: Contract) -> pa.Schema:
    """Arrow schema of validated orders (`raw_orders`) under `contract`."""
    return pa.schema(
        [pa.field(c.name, c.type, nullable=not c.required) for c in columns_of(contract)]
    )


# The built-in contract (contracts/ecommerce.yaml) owns the documented entities and attributes.
BUILTIN_CONTRACT = builtin_contract()
COLUMNS: tuple[Column, ...] = columns_of(BUILTIN_CONTRACT)
COLUMN_NAMES: tuple[str, ...] = tuple(c.name for c in COLUMNS)
REQUIRED_COLUMNS: tuple[str, ...] = tuple(c.name for c in COLUMNS if c.required)
ENTITY_KINDS: tuple[str, ...] = BUILTIN_CONTRACT.entity_kinds

ORDER_SCHEMA = order_schema(BUILTIN_CONTRACT)
"""Arrow schema of validated orders (`raw_orders`) under the built-in contract."""


def schema_markdown() -> str:
    """The landing-file contract as a Markdown table (used in the README)."""
    rows = ["| column | type | required | meaning |", "|---|---|---|---|"]
    for c in COLUMNS:
        rows.append(
            f"| `{c.name}` | {c.type} | {'yes' if c.required else 'no'} | {c.description} |"
        )
    return "\n".join(rows)
