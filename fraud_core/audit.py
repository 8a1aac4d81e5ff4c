"""The audit trail: every change of what the platform decides with (a policy, a list entry, the
served model, a threshold), who made it, when, what it was before and after, and why.

Append-only JSON lines, one file per month under `DataLayout.audit`. A record is written with
one `write` on a file opened for appending (O_APPEND), so concurrent writers (service workers,
the CLI, a Dagster run) never interleave within a record, and nothing rewrites a written line.
Readers skip a torn last line (a writer that died mid-write) and say so.
"""

from __future__ import annotations

import json
import logging
import os
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from fraud_core.storage import as_path, is_remote

# What can change; one owner for the names the records, the API's filter and the CLI use.
ACTIONS = (
    "policy.submit",  # a candidate policy saved to the registry
    "policy.activate",  # the active policy pointer moved (after a replay, or overridden)
    "policy.refuse",  # a candidate refused by its replay's guardrails
    "list.add",
    "list.remove",
    "model.promote",  # the served model pointer moved
    "model.challenger",  # the shadow model pointer moved
    "review.verdict",  # an analyst's verdict on an order from the review console
)
ACTOR_ENV = "FRAUD_ACTOR"  # who runs the CLI (default: the login name)
MAX_TEXT = 2_000  # a reason longer than this is cut: the trail is for people
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class AuditRecord:
    action: str  # one of ACTIONS
    actor: str  # "key:<id>" for an API key, "cli:<login>" or "dagster:<run id>"
    target: str  # what changed: "policy", "list:block:email:<key>", "model"
    reason: str = ""
    before: Any = None  # the value before (a version, an entry), JSON-able
    after: Any = None
    at: str = field(default_factory=lambda: datetime.now(UTC).isoformat(timespec="milliseconds"))

    def __post_init__(self) -> None:
        if self.action not in ACTIONS:
            raise ValueError(f"audit action {self.action!r} is not one of {ACTIONS}")
        if not self.actor:
            raise ValueError("an audit record needs an actor")

    def to_json(self) -> str:
        record = asdict(self)
        record["reason"] = self.reason[:MAX_TEXT]
        return json.dumps(record, separators=(",", ":"), default=str, ensure_ascii=False)


def cli_actor() -> str:
    """Who runs a CLI command: $FRAUD_ACTOR, else the login name."""
    name = os.environ.get(ACTOR_ENV, "").strip()
    if not name:
        try:
            name = os.getlogin()
        except OSError:
            name = os.environ.get("USER", "") or "unknown"
    return f"cli:{name}"


def _month_file(folder: Path, at: str) -> Path:
    return as_path(folder) / f"{at[:7]}.jsonl"


def append(folder: str | os.PathLike[str], record: AuditRecord) -> None:
    """Append `record` (one write of one line; created with the folder if needed). In an object
    store, which cannot append, each record is an object of its own beside the month's
    (`<month>.<time>.<random>.jsonl`), read back with them in time order."""
    path = _month_file(as_path(folder), record.at)
    line = (record.to_json() + "\n").encode()
    if is_remote(path):
        stamp = "".join(c for c in record.at if c.isdigit())
        path.with_name(f"{path.stem}.{stamp}.{uuid.uuid4().hex[:8]}.jsonl").write_bytes(line)
    else:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o640)
        try:
            os.write(fd, line)
            os.fsync(fd)
        finally:
            os.close(fd)
    # who did it by id (a key's id, never the key), for the logs too; a list entry's entity
    # value stays in the trail ("list:block:email", not the address: logs are not the store)
    what = ":".join(record.target.split(":")[:3])
    log.info("audit: %s %s by %s", record.action, what, record.actor)


def _records(folder: Path) -> Iterator[tuple[Path, int, dict]]:
    for path in sorted(as_path(folder).glob("*.jsonl")):
        with path.open("rb") as fh:
            for n, line in enumerate(fh, 1):
                try:
                    yield path, n, json.loads(line)
                except ValueError:
                    continue  # a torn line of a writer that died: skipped, never rewritten


def read(
    folder: str | os.PathLike[str],
    *,
    action: str | None = None,
    target_prefix: str | None = None,
    since: str | None = None,
    limit: int = 100,
    newest_first: bool = True,
) -> list[dict]:
    """Records matching the filters (`since`: an ISO time or date), newest first by default,
    at most `limit`."""
    if action is not None and action not in ACTIONS:
        raise ValueError(f"action must be one of {', '.join(ACTIONS)}; got {action!r}")
    out = []
    for _, _, record in _records(as_path(folder)):
        if not isinstance(record, Mapping):
            continue
        if action and record.get("action") != action:
            continue
        if target_prefix and not str(record.get("target", "")).startswith(target_prefix):
            continue
        if since and str(record.get("at", "")) < since:
            continue
        out.append(dict(record))
    out.sort(key=lambda r: str(r.get("at", "")), reverse=newest_first)
    return out[:limit]
