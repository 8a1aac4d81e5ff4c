"""The landing sensor's cursor: which landing files (and replace markers) it has handled, in a
hundred-odd characters however many files the folder holds, so the ticks stay on the UI's screen.

A file's change time (`st_ctime_ns`) moves on every change to the file: a write, a rename into
the folder, even a `touch` or a copy that keeps the sender's mtime (`cp -p`, `rsync -t`), and no
tool can set it back. So the cursor keeps a watermark, `before_ns`: every file whose ctime is
older was handled as it is now, and only the few files at or after it are remembered one by one,
as a short hash of (name, size, mtime, ctime). A file is looked at again when it is new, when its
state hash is not remembered, or when it waits for its day to end (`pending`).

The watermark is the newest ctime the tick listed, so a change made after the listing gets a
ctime at or after it; it stays a little behind the tick's start too, so a file stamped in the
future (a clock stepped back) cannot hide the next deliveries. `older` counts the files below the
watermark: more of them on the next tick means a file appeared with an old ctime (a clock stepped
back further, a file system that keeps ctime on rename), and the cursor cannot say which, so every
file is looked at again; the sensor then skips what the instance says was already ingested.

A cursor of the old format (the JSON map `name -> [size, mtime_ns]` of every handled file) is
still read, once: the next tick writes the new one.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from fraud_core.landing import Fingerprint
from fraud_core.landing import file_state as landing_file_state
from fraud_core.storage import as_path

FileState = tuple[int, int, int]  # (size in bytes, mtime_ns, ctime_ns)
VERSION = 2
# A file system stamps ctime with a coarse clock that may lag time.time_ns() by a clock tick
# (1-10 ms): the watermark stays this far behind the start of the tick.
CLOCK_SLACK_NS = 100_000_000
HASH_BYTES = 5  # 40 bits: a changed file hides behind a remembered hash once in 10^12


def file_state(path: Path) -> FileState:
    """(size, mtime_ns, ctime_ns) of a local file; of an object, the ETag's bits stand for the
    mtime (`fraud_core.landing.file_state`): a same-size upload within LastModified's second is
    a change too."""
    return landing_file_state(as_path(path))


def state_hash(name: str, state: FileState) -> str:
    text = "\0".join([name, *map(str, state)])
    return hashlib.blake2b(text.encode(), digest_size=HASH_BYTES).hexdigest()


@dataclass(frozen=True)
class LandingCursor:
    """What the sensor has handled (see the module docstring). The empty cursor (a new sensor,
    a reset, an unreadable text) has handled nothing: every file is looked at."""

    before_ns: int = 0
    older: int = 0
    at_or_after: frozenset[str] = frozenset()  # state hashes of the handled files >= before_ns
    pending: frozenset[str] = frozenset()  # names looked at again on every tick
    legacy: Mapping[str, Fingerprint] | None = field(default=None, compare=False)

    @classmethod
    def read(cls, text: str | None) -> LandingCursor:
        if not text:
            return cls()
        try:
            data = json.loads(text)
            if isinstance(data, dict) and data.get("v") == VERSION:
                return cls(
                    before_ns=int(data["before_ns"]),
                    older=int(data["older"]),
                    at_or_after=frozenset(map(str, data.get("at_or_after", []))),
                    pending=frozenset(map(str, data.get("pending", []))),
                )
            legacy = {name: (int(fp[0]), int(fp[1])) for name, fp in data.items()}
            return cls(legacy=legacy)
        except (ValueError, TypeError, KeyError, IndexError, AttributeError):
            return cls()  # unreadable: nothing handled yet; the instance's records tell the rest

    def write(self) -> str:
        data: dict[str, object] = {
            "v": VERSION,
            "before_ns": self.before_ns,
            "older": self.older,
            "at_or_after": sorted(self.at_or_after),
        }
        if self.pending:
            data["pending"] = sorted(self.pending)
        return json.dumps(data, separators=(",", ":"))

    def to_look_at(self, states: Mapping[str, FileState]) -> list[str] | None:
        """The names of `states` (every file present now) that are new, changed since they were
        handled, or pending, in the order of `states`; None when the cursor cannot tell (more
        files below the watermark than it left: one of them appeared with an old ctime)."""
        if self.legacy is not None:
            return [n for n, s in states.items() if self.legacy.get(n) != (s[0], s[1])]
        old = {n for n, s in states.items() if s[2] < self.before_ns and n not in self.pending}
        if len(old) > self.older:
            return None
        return [n for n, s in states.items() if n not in old and not self._remembers(n, s)]

    def _remembers(self, name: str, state: FileState) -> bool:
        return name not in self.pending and state_hash(name, state) in self.at_or_after

    @classmethod
    def after_tick(
        cls, states: Mapping[str, FileState], pending: Collection[str], started_ns: int
    ) -> LandingCursor:
        """The cursor once the files of `states` (as listed after `started_ns`, the tick's
        start) are handled, but for the `pending` ones."""
        newest = max((s[2] for s in states.values()), default=started_ns)
        before = min(newest, started_ns - CLOCK_SLACK_NS)
        handled = {n: s for n, s in states.items() if n not in pending}
        return cls(
            before_ns=before,
            older=sum(1 for s in handled.values() if s[2] < before),
            at_or_after=frozenset(state_hash(n, s) for n, s in handled.items() if s[2] >= before),
            pending=frozenset(n for n in pending if n in states),
        )
