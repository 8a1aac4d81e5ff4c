"""How a sample of a team's own orders maps under a contract, before anything is ingested:
the columns the contract names that the sample lacks, and which rows validation would
quarantine, and why (`fraud contract check FILE --sample DATA`)."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import date

import pandas as pd

from fraud_core.contract.model import Contract
from fraud_core.contract.source import SourceFormat
from fraud_core.validation import validate_orders


@dataclass
class SampleReport:
    rows: int
    missing: list[str] = field(default_factory=list)  # "<key>: 'column' is not in the sample"
    validated: bool = False  # False when columns are missing
    valid: int = 0
    days: int = 0
    reasons: Counter = field(default_factory=Counter)  # quarantine reason -> rows


def check_sample(contract: Contract, frame: pd.DataFrame) -> SampleReport:
    """Map `frame` (a landing file as read) under `contract`. Each row is validated in the UTC
    day of its order time, as ingestion would; a row without a readable time in the first."""
    report = SampleReport(rows=len(frame))
    seen: set[str] = set()
    for key, _, column, required in contract.column_roles():
        if required and column not in frame.columns and column not in seen:
            report.missing.append(f"{key}: {column!r} is not a column of the sample")
            seen.add(column)
    if report.missing:
        report.missing.append(f"the sample's columns: {', '.join(map(str, frame.columns))}")
    if report.missing or frame.empty:
        return report
    source = SourceFormat.of(contract)
    stamps, _, _ = source.timestamps(frame[source.source_column("order_date")])
    days = stamps.dt.date
    first = days.dropna().min() if days.notna().any() else date(2000, 1, 1)
    days = days.where(days.notna(), first)
    report.validated = True
    for day, rows in frame.groupby(days.to_numpy(), sort=True):
        result = validate_orders(rows, day, source=source)
        report.valid += len(result.valid)
        report.days += 1
        report.reasons.update(result.reason_counts)
    return report
