"""The review queue's index (`fraud_core.review`): each decision-log entry taken once, the window
anchored at the newest order, filters, ranking and pages, verdict records, reasons in words."""

from __future__ import annotations

from datetime import date

import numpy as np
import pytest

from fraud_core.contract import builtin_contract
from fraud_core.decision_log import Decision, encode_decision
from fraud_core.review import QueueFilter, ReviewIndex, Verdict, decode_verdicts, explain

DAY = 86_400
T0 = 1_780_000_000 - 1_780_000_000 % DAY  # a midnight (UTC)


def _entry(
    n: int,
    decision: str = "review",
    t_s: int = T0,
    cents: int = 10_000,
    score: float = 0.5,
    segment: str = "",
    rules: tuple[str, ...] = (),
    model: str = "m1",
    received_ms: int | None = None,
) -> tuple[str, bytes]:
    d = Decision(
        order_id=f"o{n}",
        t_s=t_s,
        received_ms=received_ms or t_s * 1000,
        cents=cents,
        ids={"customer_id": f"c{n}", "email": f"e{n}", "ip_addr": "1.2.3.4"},
        namespace="ns",
        model_version=model,
        features=np.zeros(3),
        score=score,
        decision=decision,
        reasons=[("customer_id__order_count__24h", 3.0, 0.8)],
        rules=rules,
        segment=segment,
    )
    ms = received_ms or t_s * 1000
    return f"{ms}-{n}", encode_decision(d)


def test_each_entry_is_taken_once_and_every_decision_counted_per_day() -> None:
    index = ReviewIndex(window_days=14)
    entries = [_entry(1), _entry(2, "approve"), _entry(3, "decline", T0 + DAY), _entry(4)]
    assert index.add(entries[:3]) == 1
    # the stream's entries read again with a drained segment's: nothing counted twice
    assert index.add(entries) == 1
    assert len(index) == 2
    day0, day1 = date.fromtimestamp(T0), date.fromtimestamp(T0 + DAY)
    assert index.counts[day0] == {"approve": 1, "review": 2, "decline": 0}
    assert index.counts[day1] == {"approve": 0, "review": 0, "decline": 1}
    assert index.days() == [day1, day0]
    assert index.decision("o1").reasons == [("customer_id__order_count__24h", 3.0, 0.8)]
    assert index.decision("o2") is None  # not a review
    junk = ReviewIndex()
    assert junk.add([("1-1", b"\x93\x01\x02\x03"), entries[0]]) == 1 and junk.unreadable == 1
    # a segment's older entries read after newer ones from the stream: each still taken once
    later = ReviewIndex(window_days=14)
    assert later.add([entries[3]]) == 1 and later.add(entries) == 1 and later.add(entries) == 0
    assert later.counts[day0] == {"approve": 1, "review": 2, "decline": 0}


def test_the_window_is_anchored_at_the_newest_order_and_old_entries_leave() -> None:
    index = ReviewIndex(window_days=3)
    index.add([_entry(1, t_s=T0), _entry(2, t_s=T0 + 2 * DAY)])
    assert len(index) == 2
    index.add([_entry(3, t_s=T0 + 3 * DAY)])  # the window is now days T0+1..T0+3
    assert index.row("o1") is None and index.row("o2") is not None and len(index) == 2
    assert date.fromtimestamp(T0) not in index.counts
    # an entry logged (received) more than the window and a day before the newest one is not
    # looked at again: the seen ids stay bounded
    late = 10 * DAY * 1000
    index.add([_entry(5, t_s=T0 + 3 * DAY, received_ms=(T0 + 3 * DAY) * 1000 + late)])
    assert index.add([_entry(6, t_s=T0 + 3 * DAY)]) == 0
    assert len(index._seen) <= 1


def test_filters_ranking_and_pages() -> None:
    index = ReviewIndex()
    index.add(
        [
            _entry(1, cents=10_000, score=0.9, segment="web", rules=("big",)),
            _entry(2, cents=50_000, score=0.5, t_s=T0 + 60, model="m2"),
            _entry(3, cents=2_000, score=0.99, t_s=T0 + DAY, rules=("big", "night")),
            _entry(4, cents=50_000, score=0.5, t_s=T0 + 120),
        ]
    )
    ids = lambda page: [r.order_id for r in page.rows]  # noqa: E731
    # score x amount, ties by log order
    assert ids(index.query(QueueFilter(), set())) == ["o2", "o4", "o1", "o3"]
    assert ids(index.query(QueueFilter(sort="newest"), set())) == ["o3", "o4", "o2", "o1"]
    assert ids(index.query(QueueFilter(sort="oldest"), set())) == ["o1", "o2", "o4", "o3"]
    assert ids(index.query(QueueFilter(rule="night"), set())) == ["o3"]
    assert ids(index.query(QueueFilter(segment="web"), set())) == ["o1"]
    assert ids(index.query(QueueFilter(model_version="m2"), set())) == ["o2"]
    assert ids(index.query(QueueFilter(min_amount=100, max_amount=499.99), set())) == ["o1"]
    assert ids(index.query(QueueFilter(day=date.fromtimestamp(T0 + DAY)), set())) == ["o3"]
    done = {"o2"}
    page = index.query(QueueFilter(per_page=2, page=2), done)
    assert ids(page) == ["o3"] and page.pages == 2 and page.total == 3 and page.pending == 3
    assert page.backlog == {date.fromtimestamp(T0 + DAY): 1, date.fromtimestamp(T0): 2}
    assert page.rules == ["big", "night"] and page.segments == ["web"]
    assert page.model_versions == ["m1", "m2"]
    counted = index.query(QueueFilter(per_page=0), done)
    assert counted.rows == [] and counted.pending == 3
    assert index.query(QueueFilter(per_page=2, page=9), done).page == 2  # past the end: the last


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [({"sort": "random"}, "sort"), ({"page": 0}, "page"), ({"per_page": 500}, "per_page"),
     ({"min_amount": -1.0}, "min_amount"), ({"max_amount": float("nan")}, "max_amount")],
)  # fmt: skip
def test_a_bad_filter_names_its_field(kwargs: dict, field: str) -> None:
    with pytest.raises(ValueError, match=f"^{field}:"):
        QueueFilter(**kwargs)


def test_verdict_records_round_trip_and_junk_is_skipped() -> None:
    v = Verdict("o1", True, 1_700_000_000_123, "key:ana", "card testing")
    assert Verdict.decode("o1", v.encode()) == v
    assert v.at.year == 2023
    fields = {b"o1": v.encode(), b"o2": b"\x93\x09\x01\x02", b"o3": b"not msgpack \xc1"}
    assert decode_verdicts(fields) == {"o1": v}


def test_reasons_read_as_sentences() -> None:
    spec = builtin_contract().spec
    name = spec.features[0].name
    strong, slight, empty = explain(
        [(name, 12.0, 1.4), (name, 0.0, -0.1), ("not_a_feature", float("nan"), 0.5)], spec
    )
    assert strong.direction == "raises" and strong.size == "strongly"
    assert strong.description == spec.features[0].description
    assert strong.sentence.endswith("12; strongly raises the risk")
    assert slight.direction == "lowers" and slight.size == "slightly"
    assert (
        empty.value is None and empty.size == "moderately" and empty.description == "not_a_feature"
    )
