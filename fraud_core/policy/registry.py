"""The policy registry beside the models: every submitted policy kept as written, named by its
checksum, and two pointers: `active.json` (what the service applies) and `candidate.json` (what
the next replay judges).

A version file `<version>.yaml` is written once and never changed; reading one checks that its
text still has its name's checksum, so a file edited in place is refused like a tampered model.
A pointer is a small JSON file replaced atomically; every move of a pointer is written to the
audit trail by the function that moves it. Without `active.json` the service applies the
built-in default policy (`default_policy`: the lists' rules and the model card's thresholds).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from fraud_core import audit
from fraud_core.policy.policy import Policy, PolicyError, PolicyFields, load_policy
from fraud_core.storage import DataLayout, as_path, atomic_path

ACTIVE, CANDIDATE = "active", "candidate"
POINTERS = (ACTIVE, CANDIDATE)
_VERSION_CHARS = set("0123456789abcdef")


def check_version(version: object) -> str:
    if (
        not isinstance(version, str)
        or not version.startswith("p-")
        or len(version) != 14
        or not set(version[2:]) <= _VERSION_CHARS
    ):
        raise PolicyError(f"{version!r} is not a policy version (p- and 12 hex digits)")
    return version


@dataclass(frozen=True)
class Pointer:
    version: str
    since: str
    actor: str
    reason: str


class PolicyRegistry:
    """The registry of one data folder (`DataLayout.policies`)."""

    def __init__(self, layout: DataLayout) -> None:
        self.folder = as_path(layout.policies)
        self.audit_folder = as_path(layout.audit)

    def path(self, version: str) -> Path:
        return self.folder / f"{check_version(version)}.yaml"

    def pointer_path(self, which: str) -> Path:
        if which not in POINTERS:
            raise ValueError(f"no policy pointer {which!r}: {POINTERS}")
        return self.folder / f"{which}.json"

    def save(self, policy: Policy, actor: str, reason: str = "") -> str:
        """Keep `policy` (idempotent: the same text is the same version) and make it the
        candidate; audited as `policy.submit`."""
        path = self.path(policy.version)
        if not path.exists():
            with atomic_path(path) as tmp:
                tmp.write_text(policy.text)
        self.point(CANDIDATE, policy.version, actor, reason, action="policy.submit")
        return policy.version

    def read(self, version: str, fields: PolicyFields) -> Policy:
        """A kept version, checked against its checksum and the fields it may read."""
        path = self.path(version)
        try:
            text = path.read_text()
        except FileNotFoundError:
            raise PolicyError(f"no policy version {version} in {self.folder}") from None
        policy = load_policy(text, fields)
        if policy.version != version:
            raise PolicyError(
                f"{path} was changed after it was submitted (its text is {policy.version}); "
                "submit the new text as a new version"
            )
        return policy

    def pointer(self, which: str) -> Pointer | None:
        path = self.pointer_path(which)
        try:
            data = json.loads(path.read_text())
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as exc:
            raise PolicyError(f"{path} is unreadable: {exc}") from exc
        if not isinstance(data, dict):
            raise PolicyError(f"{path} is not a pointer")
        return Pointer(
            check_version(data.get("version")),
            str(data.get("since", "")),
            str(data.get("actor", "")),
            str(data.get("reason", "")),
        )

    def point(
        self, which: str, version: str, actor: str, reason: str = "", action: str | None = None
    ) -> None:
        """Move pointer `which` to a kept version, atomically, and audit the move."""
        if not self.path(version).exists():
            raise PolicyError(f"no policy version {version} in {self.folder}")
        before = self.pointer(which)
        record = {
            "version": version,
            "since": datetime.now(UTC).isoformat(timespec="seconds"),
            "actor": actor,
            "reason": reason,
        }
        with atomic_path(self.pointer_path(which)) as tmp:
            tmp.write_text(json.dumps(record))
        audit.append(
            self.audit_folder,
            audit.AuditRecord(
                action=action or f"policy.{'activate' if which == ACTIVE else 'submit'}",
                actor=actor,
                target=f"policy:{which}",
                reason=reason,
                before=before.version if before else None,
                after=version,
            ),
        )

    def refuse(self, version: str, actor: str, reason: str) -> None:
        """Record that a candidate was refused (its replay broke a guardrail)."""
        audit.append(
            self.audit_folder,
            audit.AuditRecord(
                action="policy.refuse", actor=actor, target="policy:candidate", reason=reason,
                after=version,
            ),
        )  # fmt: skip

    def active(self, fields: PolicyFields) -> Policy | None:
        """The active policy, None when none was activated (the default applies)."""
        pointer = self.pointer(ACTIVE)
        return self.read(pointer.version, fields) if pointer else None

    def versions(self) -> list[str]:
        return sorted(p.stem for p in self.folder.glob("p-*.yaml"))
