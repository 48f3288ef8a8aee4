"""What `check` reports: one finding per prerequisite, and the standing of each target namespace."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

SHOWN = 10  # namespaces named in a finding; the rest are counted
# The fix for a grant the identity lacks: the manifest this configuration renders holds every one.
RBAC_FIX = 'apply the manifest this configuration renders: `make apply CONTEXT="..."` (cdk.out/rbac.yaml after a synth)'


class Status(StrEnum):
    OK = "ok"
    FAILED = "failed"
    UNKNOWN = "unknown"


@dataclass(frozen=True)
class Finding:
    name: str
    status: Status
    detail: str
    fix: str = ""

    def to_dict(self) -> dict[str, str]:
        return {"check": self.name, "status": self.status.value, "detail": self.detail} | (
            {"fix": self.fix} if self.fix else {}
        )


class Standing(StrEnum):
    """A target namespace's secret as it stands, as the next run would find it."""

    MISSING = "missing"  # created on the next run
    MANAGED = "managed"  # this tool's, with its expiry
    UNKNOWN = "unknown"  # this tool's label, but no expiry the server's record supports (no token to judge)
    ADOPTABLE = "adoptable"  # the kubectl recipe's: adopted on the next run
    REFUSED = "refused"  # the kubectl recipe's, but admission refuses adopting it
    SUSPECT = "suspect"  # changed by another writer: rewritten on the next run
    FOREIGN = "foreign"  # someone else's secret of that name: skipped
    BROKEN = "broken"  # the run would fail there (wrong type, immutable, no token for a login it holds)
    TERMINATING = "terminating"  # the namespace is being deleted: skipped
    ABSENT = "absent"  # a named namespace that does not exist: every run fails there
    UNREADABLE = "unreadable"  # the secret could not be read


@dataclass(frozen=True)
class NamespaceState:
    namespace: str
    state: Standing
    detail: str = ""


@dataclass
class CheckReport:
    cluster: str
    findings: list[Finding] = field(default_factory=list)
    namespaces: list[NamespaceState] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(finding.status is not Status.FAILED for finding in self.findings)

    def to_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "cluster": self.cluster,
            "checks": [finding.to_dict() for finding in self.findings],
            "namespaces": [
                {"namespace": n.namespace, "state": n.state.value, "detail": n.detail} for n in self.namespaces
            ],
        }


def shown(names: Iterable[str]) -> str:
    listed = list(names)
    return ", ".join(listed[:SHOWN]) + (f" (+{len(listed) - SHOWN} more)" if len(listed) > SHOWN else "")
