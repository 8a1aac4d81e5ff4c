"""`fraud_core.skew.compare`: served vectors against offline rows, each mismatch with its cause,
features named with their rate and largest gap (the e2e test runs the real service)."""

from __future__ import annotations

from datetime import date

import numpy as np
import pandas as pd

from fraud_core.online_keys import namespace_snapshot_day
from fraud_core.skew import compare

DAY = date(2026, 3, 10)
NAMES = ["a", "b", "c"]


def _served(rows: list[tuple]) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "order_id": [r[0] for r in rows],
            "t_s": [r[1] for r in rows],
            "namespace": [r[2] for r in rows],
            "model_version": [r[3] for r in rows],
            "features": [np.array(r[4], dtype=float) for r in rows],
        }
    )


def test_each_mismatch_gets_the_first_cause_the_platform_can_tell() -> None:
    t0 = int(pd.Timestamp(DAY, tz="UTC").timestamp()) + 3600
    fresh, stale = "20260309.20260310T000000.abc123", "20260305.20260306T000000.def456"
    offline = pd.DataFrame(
        {
            "order_id": ["O1", "O2", "O3", "O4"],
            "order_date": pd.to_datetime([t0, t0 + 1, t0 + 2, t0 + 3], unit="s", utc=True),
            "a": [1.0, 2.0, 3.0, np.nan],
            "b": [0.5, 0.5, 0.5, 0.5],
            "c": [7.0, 7.0, 7.0, 7.0],
        }
    )
    served = _served(
        [
            ("O1", t0, fresh, "v1", [1.0, 0.5, 7.0]),  # equal
            ("O2", t0 + 1, fresh, "v1", [2.0, 0.5 + 1e-12, 9.0]),  # c apart, no cause known
            ("O3", t0 + 60, stale, "v1", [3.0, 0.5, 8.0]),  # clamped to a later time
            ("O4", t0 + 3, stale, "v1", [4.0, 0.5, 7.0]),  # a value where offline has none
            ("O5", t0 + 4, fresh, "v1", [0.0, 0.0, 0.0]),  # never arrived in a landing file
        ]
    )
    report = compare(served, offline, lambda version: NAMES, DAY)
    assert (report.served, report.compared, report.never_arrived) == (5, 4, 1)
    assert report.mismatched == 3 and report.share == 0.75
    assert report.causes == {"time_differs": 1, "store_stale": 1, "unexplained": 1}
    assert {e["order_id"]: e["cause"] for e in report.examples} == {
        "O2": "unexplained",
        "O3": "time_differs",
        "O4": "store_stale",
    }
    assert set(report.features) == {"a", "c"}  # b's 1e-12 is within the tolerance
    assert report.features["c"] == {"mismatch_rate": 0.5, "max_abs_diff": 2.0, "one_sided": 0}
    assert report.features["a"] == {"mismatch_rate": 0.25, "max_abs_diff": None, "one_sided": 1}
    assert report.worst(1) == ["c"]


def test_a_feature_the_offline_definition_lacks_is_named() -> None:
    offline = pd.DataFrame(
        {"order_id": ["O1"], "order_date": pd.to_datetime([0], unit="s", utc=True), "a": [1.0]}
    )
    served = _served([("O1", 0, "20260309.x.y", "v2", [1.0, 5.0])])
    report = compare(served, offline, lambda version: ["a", "renamed"], DAY)
    assert report.causes == {"feature_missing_offline": 1}
    assert report.features["renamed"]["mismatch_rate"] == 1.0


def test_a_day_without_offline_features_compares_nothing() -> None:
    served = _served([("O1", 0, "20260309.x.y", "v1", [1.0, 2.0, 3.0])])
    report = compare(served, None, lambda version: NAMES, DAY)
    assert report.compared == 0 and report.share is None and report.never_arrived == 1
    assert namespace_snapshot_day("20260309.20260310T000000.abc123") == date(2026, 3, 9)
    assert namespace_snapshot_day("empty.20260310T000000.abc123") is None
