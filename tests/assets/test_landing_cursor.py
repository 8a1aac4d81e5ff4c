"""The landing sensor's cursor on made-up file states (size, mtime_ns, ctime_ns): what it looks
at again, what it can no longer vouch for, and that it reads its own text and the old format."""

from __future__ import annotations

import json

from fraud_assets.sensors.landing_cursor import CLOCK_SLACK_NS, LandingCursor

S = 1_000_000_000
NOW = 1_800_000_000 * S
HANDLED = {
    f"orders_2026-01-{d:02d}.csv": (100 + d, NOW - 3600 * S, NOW - 60 * S + d) for d in range(1, 31)
}


def _cursor(states=HANDLED, pending=()) -> LandingCursor:
    return LandingCursor.read(LandingCursor.after_tick(states, pending, NOW).write())


def test_handled_files_stay_handled_and_changes_are_looked_at():
    cursor = _cursor()
    assert cursor.before_ns == NOW - 60 * S + 30  # the newest change listed
    assert len(cursor.at_or_after) == 1 and cursor.older == 29
    assert cursor.to_look_at(HANDLED) == []
    later = NOW + S
    changed = {
        **HANDLED,
        "orders_2026-01-03.csv": (103, NOW - 3600 * S, later),  # same size and mtime, new ctime
        "orders_2026-01-30.csv": (999, NOW - 3600 * S, NOW - 60 * S + 30),  # same ctime
        "orders_2026-02-01.csv": (5, NOW - 86400 * S, later),  # new, with an old mtime
    }
    del changed["orders_2026-01-05.csv"]  # gone: nothing to look at
    assert cursor.to_look_at(changed) == [
        "orders_2026-01-03.csv",
        "orders_2026-01-30.csv",
        "orders_2026-02-01.csv",
    ]


def test_a_file_below_the_watermark_that_the_cursor_did_not_count_makes_it_give_up():
    stepped_back = {**HANDLED, "orders_2026-02-01.csv": (5, NOW, NOW - 3600 * S)}
    assert _cursor().to_look_at(stepped_back) is None


def test_pending_files_are_looked_at_on_every_tick():
    cursor = _cursor(pending={"orders_2026-01-02.csv"})
    assert cursor.to_look_at(HANDLED) == ["orders_2026-01-02.csv"]
    assert cursor.older == 28  # the pending file is not counted as handled


def test_a_future_change_time_does_not_hide_the_next_files():
    future = {**HANDLED, "orders_2026-01-31.csv": (1, NOW + 3600 * S, NOW + 3600 * S)}
    cursor = _cursor(future)
    assert cursor.before_ns == NOW - CLOCK_SLACK_NS
    delivered = {**future, "orders_2026-02-01.csv": (1, NOW, NOW)}
    assert cursor.to_look_at(delivered) == ["orders_2026-02-01.csv"]


def test_an_empty_folder_and_an_empty_cursor():
    assert _cursor({}).before_ns == NOW - CLOCK_SLACK_NS
    assert LandingCursor().to_look_at(HANDLED) == list(HANDLED)


def test_the_old_format_is_read_by_name_and_fingerprint():
    old = LandingCursor.read(json.dumps({"orders_2026-01-01.csv": [101, NOW - 3600 * S]}))
    assert old.to_look_at(HANDLED) == [n for n in HANDLED if n != "orders_2026-01-01.csv"]
