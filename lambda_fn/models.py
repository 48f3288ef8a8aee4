"""Plain data passed between the core, the adapters and the front doors."""

from __future__ import annotations

import base64
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from lambda_fn.secret_contract import MANAGED_BY_LABEL, MANAGED_BY_VALUE

# The run's Lease lives in kube-system, the namespace every cluster has and tenants do not administer.
LEASE_NAMESPACE = "kube-system"
LEASE_GROUP = "coordination.k8s.io"
# How far a Lease's renewal may be stamped ahead of the reader's clock and still be believed.
LEASE_CLOCK_SKEW = timedelta(seconds=5)
GLOB_CHARS = frozenset("*?[")


def is_glob(pattern: str) -> bool:
    return not GLOB_CHARS.isdisjoint(pattern)


@dataclass(frozen=True)
class TargetSpec:
    """Namespaces to serve: names, globs and a selector (their union), minus exclusions."""

    patterns: tuple[str, ...]
    selector: str | None
    exclusions: tuple[str, ...] = ()

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(pattern for pattern in self.patterns if not is_glob(pattern))

    @property
    def globs(self) -> tuple[str, ...]:
        return tuple(pattern for pattern in self.patterns if is_glob(pattern))

    @property
    def discovers(self) -> bool:
        """Globs and selectors find namespaces by listing them; explicit names need no list."""
        return self.selector is not None or bool(self.globs)


class Outcome(StrEnum):
    CREATED = "created"
    UPDATED = "updated"
    # A same-named secret that the kubectl recipe made (only ECR hosts we serve): renewed and labelled.
    ADOPTED = "adopted"
    # A managed secret someone else wrote since this tool's last write (managedFields): rewritten whole.
    REPAIRED = "repaired"
    UNCHANGED = "unchanged"
    SKIPPED = "skipped"
    FAILED = "failed"


@dataclass(frozen=True)
class RegistryCredential:
    """The login for one registry host; the password never appears in repr()."""

    host: str
    password: str = field(repr=False)
    expires_at: datetime
    username: str = "AWS"
    role_arn: str | None = None  # the role whose token this is (None: the caller's own)

    @property
    def scope(self) -> str:
        """`host` or `host=role`: what the registries annotation records, so a new role rewrites the secret."""
        return f"{self.host}={self.role_arn}" if self.role_arn else self.host

    @property
    def auth(self) -> str:
        return base64.b64encode(f"{self.username}:{self.password}".encode()).decode()


@dataclass(frozen=True)
class NamespaceInfo:
    name: str
    terminating: bool = False


FieldPath = tuple[str, ...]


@dataclass(frozen=True)
class WriteRecord:
    """One entry of an object's managedFields, as the API server recorded it: who (the field manager, a
    name the client chooses), the fields it changed last (`("data", ".dockerconfigjson")`,
    `("metadata", "annotations", key)`, ...) and when (server time, which no client can set)."""

    manager: str
    time: datetime | None
    fields: frozenset[FieldPath] = frozenset()
    operation: str = "Update"


@dataclass(frozen=True)
class SecretState:
    """A Secret as read from or written to the API; `data` values are base64, as on the wire.

    `data` is None when only the metadata was read (a list by name): type and data are then unknown.
    `raw` is the whole object as read; an update writes it back with only our changes, so owner
    references, finalizers and fields this tool does not know survive. `writes` is the server's record of
    who changed which fields when (managedFields); None when the server sent none.
    """

    name: str
    namespace: str
    type: str | None
    labels: Mapping[str, str] = field(default_factory=dict)
    annotations: Mapping[str, str] = field(default_factory=dict)
    data: Mapping[str, str] | None = field(default_factory=dict, repr=False)
    resource_version: str | None = None
    immutable: bool = False
    raw: Mapping[str, Any] | None = field(default=None, repr=False, compare=False)
    writes: tuple[WriteRecord, ...] | None = field(default=None, compare=False)

    @property
    def managed(self) -> bool:
        return self.labels.get(MANAGED_BY_LABEL) == MANAGED_BY_VALUE


@dataclass(frozen=True)
class LeaseState:
    """A coordination.k8s.io Lease: who holds it, and until when (renew time + duration)."""

    name: str
    namespace: str
    holder: str | None
    duration_seconds: int
    renewed_at: datetime | None
    resource_version: str | None = None

    def held_by_another(self, holder: str, now: datetime) -> bool:
        """Renewed by another holder within its duration. A renewal stamped further in the future than
        LEASE_CLOCK_SKEW (a holder whose clock runs fast) is not believed: else a dead holder could keep
        the Lease for as long as its clock is ahead."""
        if not self.holder or self.holder == holder or self.renewed_at is None:
            return False
        if self.renewed_at > now + LEASE_CLOCK_SKEW:
            return False
        return now < self.renewed_at + timedelta(seconds=self.duration_seconds)


@dataclass(frozen=True)
class ServiceAccountState:
    name: str
    namespace: str
    image_pull_secrets: tuple[str, ...]
    resource_version: str


@dataclass(frozen=True)
class NamespaceResult:
    namespace: str
    outcome: Outcome
    reason: str = ""
    service_accounts: tuple[str, ...] = ()
    dry_run: bool = False
    foreign: bool = False  # skipped because a same-named secret is not this tool's
    # When the secret there expires, as it stands after the run (None: there is none, or it is unknown).
    expires_at: datetime | None = field(default=None, compare=False)

    def to_dict(self) -> dict[str, Any]:
        result: dict[str, Any] = {"namespace": self.namespace, "outcome": self.outcome.value}
        if self.reason:
            result["reason"] = self.reason
        if self.service_accounts:
            key = "service_accounts_to_patch" if self.dry_run else "service_accounts_patched"
            result[key] = list(self.service_accounts)
        return result


@dataclass(frozen=True)
class RunSummary:
    """What one run did: the JSON result of the Lambda and the CLI."""

    cluster: str
    secret_name: str
    dry_run: bool
    registries: tuple[str, ...]
    token_expires_at: datetime | None
    results: tuple[NamespaceResult, ...]
    errors: tuple[str, ...]
    duration_seconds: float
    # False when the run could not list the target namespaces: the results then cover only some of them.
    targets_known: bool = True
    # Configured registries whose token could not be had: not written this run (`errors` says why).
    unavailable_registries: tuple[str, ...] = ()
    # Another run of the same deployment holds the Lease: this one did nothing (who holds it, and since when).
    skipped_run: str | None = None

    @classmethod
    def unfinished(
        cls,
        *,
        cluster: str,
        secret_name: str,
        dry_run: bool,
        results: tuple[NamespaceResult, ...] = (),
        errors: tuple[str, ...] = (),
        duration_seconds: float = 0.0,
        skipped_run: str | None = None,
    ) -> RunSummary:
        """A run that did not go through (skipped, interrupted): no registry served, no expiry claimed."""
        return cls(cluster, secret_name, dry_run, (), None, results, errors, duration_seconds, skipped_run=skipped_run)

    @property
    def counts(self) -> dict[str, int]:
        tally = Counter(result.outcome for result in self.results)
        return {outcome.value: tally.get(outcome, 0) for outcome in Outcome}

    def earliest_expiry(self) -> datetime | None:
        """When the first of the served namespaces' secrets expires, as they stand after the run; None
        when one is left without a (known) secret, or nothing is known (`seconds_until_first_expiry`)."""
        served = [r.expires_at for r in self.results if r.outcome is not Outcome.SKIPPED]
        if None in served or not served:
            return None
        return min(moment for moment in served if moment is not None)

    def seconds_until_first_expiry(self, now: datetime) -> float | None:
        """How long until the first of the served namespaces' secrets expires, as they stand after the
        run. Never more than is known: 0 if one is left without a (known) secret, or if the targets could
        not be listed and no secret could be read; None only when the targets are known and none is served."""
        served = [r.expires_at for r in self.results if r.outcome is not Outcome.SKIPPED]
        if not served:
            return None if self.targets_known else 0.0
        earliest = self.earliest_expiry()
        return 0.0 if earliest is None else max(0.0, (earliest - now).total_seconds())

    @property
    def failures(self) -> int:
        """Namespaces that failed, plus one when the target namespaces could not be listed (how many were
        missed is unknown, but never none)."""
        return len(self.failed_namespaces) + (not self.targets_known)

    @property
    def foreign_namespaces(self) -> tuple[str, ...]:
        """Namespaces holding a same-named secret this tool does not manage (reported, never touched)."""
        return tuple(r.namespace for r in self.results if r.foreign)

    @property
    def failed_namespaces(self) -> tuple[str, ...]:
        return tuple(r.namespace for r in self.results if r.outcome is Outcome.FAILED)

    @property
    def ok(self) -> bool:
        return not self.errors and not self.failed_namespaces

    def to_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "cluster": self.cluster,
            "secret_name": self.secret_name,
            "dry_run": self.dry_run,
            "registries": list(self.registries),
            "unavailable_registries": list(self.unavailable_registries),
            "skipped_run": self.skipped_run,
            "token_expires_at": self.token_expires_at.isoformat() if self.token_expires_at else None,
            "counts": self.counts,
            "targets_known": self.targets_known,
            "earliest_expiry": _iso(self.earliest_expiry()),
            "foreign": len(self.foreign_namespaces),
            "errors": list(self.errors),
            "namespaces": [result.to_dict() for result in self.results],
            "duration_seconds": round(self.duration_seconds, 3),
        }


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment else None
