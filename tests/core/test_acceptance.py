"""When a new validation may replace an accepted day, and which day owns an order id."""

from __future__ import annotations

from datetime import date, timedelta

import numpy as np
import pandas as pd
import pytest

from fraud_core.acceptance import (
    EMPTY,
    KEPT,
    NOTHING,
    REPLACED,
    AcceptedOrderIds,
    DayRecord,
    FileSeen,
    decide_day,
    max_shrink,
)
from fraud_core.storage import DataLayout, write_parquet

D1, D2, D3 = date(2026, 3, 1), date(2026, 3, 2), date(2026, 3, 3)
A, B = FileSeen("orders_2026-03-01.parquet", 10, 1), FileSeen("orders_2026-03-01_b.csv", 5, 2)


def _accepted(files: list[FileSeen], valid: int) -> DayRecord:
    return DayRecord(
        D1.isoformat(), {"files": [{"name": f.name} for f in files], "valid_rows": valid}
    )


@pytest.mark.parametrize(
    ("previous", "files", "unreadable", "valid", "marker", "action"),
    [
        (None, [A], {}, 100, False, REPLACED),  # first delivery
        (None, [], {}, 0, False, EMPTY),  # nothing delivered, nothing accepted
        (None, [A], {B.name: "truncated"}, None, False, NOTHING),
        (_accepted([A], 100), [A], {B.name: "truncated"}, None, True, KEPT),  # marker no help
        (_accepted([A, B], 100), [A], {}, 95, False, KEPT),  # B archived
        (_accepted([A, B], 100), [A], {}, 95, True, REPLACED),
        (_accepted([A], 100), [A], {}, 91, False, REPLACED),  # a correction within 10 %
        (_accepted([A], 100), [A], {}, 89, False, KEPT),  # shrinks too much
        (_accepted([A], 100), [A], {}, 89, True, REPLACED),
        (_accepted([A], 100), [], {}, 0, True, REPLACED),  # the marker empties the day
        (_accepted([A], 100), [A], {}, 150, False, REPLACED),  # growing is fine
    ],
)
def test_decide_day(previous, files, unreadable, valid, marker, action):
    decision = decide_day(previous, files, unreadable, valid, marker=marker, shrink_limit=0.1)
    assert decision.action == action
    assert bool(decision.problems) == (action in (KEPT, NOTHING))
    if action in (KEPT, NOTHING):
        named = [n for n in (A.name, B.name) if any(n in p for p in decision.problems)]
        assert named or "shrink" in decision.problems[0]


def test_max_shrink_is_a_share():
    assert max_shrink({}) == 0.1
    assert max_shrink({"FRAUD_MAX_DAY_SHRINK": "0.25"}) == 0.25
    with pytest.raises(ValueError, match="FRAUD_MAX_DAY_SHRINK"):
        max_shrink({"FRAUD_MAX_DAY_SHRINK": "2"})


def test_first_day_keeps_its_ids_and_a_replaced_day_lets_go_of_its_old_ones(tmp_path):
    layout = DataLayout(tmp_path)
    for day, ids in ((D1, ["a", "b"]), (D2, ["c"])):
        write_parquet(pd.DataFrame({"order_id": ids}), layout.raw_orders(day))
    index = AcceptedOrderIds(layout)
    ids = pd.Series(["a", "c", "x"])
    assert index.owners(D3, ids).tolist() == [D1.isoformat(), D2.isoformat(), None]
    assert index.owners(D1, ids).tolist() == [None, D2.isoformat(), None]  # its own ids: fine

    # D1 re-ingested without "a" (the file is rewritten first, as raw_orders does).
    write_parquet(pd.DataFrame({"order_id": ["b", "x"]}), layout.raw_orders(D1))
    index.replace(D1, pd.Series(["b", "x"]))
    assert index.owners(D3, ids).tolist() == [None, D2.isoformat(), D1.isoformat()]
    assert index.owners(D2, pd.Series(["b"])).tolist() == [D1.isoformat()]


def test_many_days_and_replacements_agree_with_a_plain_list(tmp_path):
    """The sorted runs (merged as days are replaced) answer as a list of every day's ids would:
    the owner is the earliest entry still standing of another day that holds the id."""
    rng = np.random.default_rng(7)
    layout = DataLayout(tmp_path)
    pool = np.array([f"o{i}" for i in range(400)], dtype=object)
    days = [D1 + timedelta(days=k) for k in range(40)]
    entries: list[tuple[str, set[str]]] = []  # (day, ids) in the order they were accepted

    def deliver(day: date) -> list[str]:
        ids = sorted(set(rng.choice(pool, size=int(rng.integers(0, 30)))))
        write_parquet(
            pd.DataFrame({"order_id": pd.Series(ids, dtype=object)}), layout.raw_orders(day)
        )
        return ids

    for day in days[:10]:  # on disk before the index is built
        entries.append((day.isoformat(), set(deliver(day))))
    index = AcceptedOrderIds(layout)
    for step in range(120):  # new days and re-deliveries, as a range run and its reruns do
        day = days[10 + step] if step < 30 else days[int(rng.integers(0, len(days)))]
        ids = deliver(day)
        index.replace(day, pd.Series(ids, dtype=object))
        entries = [(d, i) for d, i in entries if d != day.isoformat()]
        entries.append((day.isoformat(), set(ids)))
        if step % 10 == 9:
            asked = rng.choice(pool, size=60)
            for probe in rng.choice(days, size=3):
                key = probe.isoformat()
                want = [next((d for d, i in entries if d != key and o in i), None) for o in asked]
                got = index.owners(probe, pd.Series(asked, dtype=object)).tolist()
                assert got == want, (step, key)
    assert len(index._runs) <= 8  # merged as they come: a few runs, not one per replacement
