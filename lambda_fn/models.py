"""Plain data passed between the core, the adapters and the front doors."""

from __future__ import annotations

import base64
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

MANAGED_BY_LABEL = "app.kubernetes.io/managed-by"
MANAGED_BY_VALUE = "ecr-token-refresher"
ANNOTATION_PREFIX = "ecr-token-refresher/"
REFRESHED_AT_ANNOTATION = ANNOTATION_PREFIX + "refreshed-at"
EXPIRES_AT_ANNOTATION = ANNOTATION_PREFIX + "expires-at"
REGISTRIES_ANNOTATION = ANNOTATION_PREFIX + "registries"
DOCKERCONFIGJSON_TYPE = "kubernetes.io/dockerconfigjson"
DOCKERCONFIGJSON_KEY = ".dockerconfigjson"


class Outcome(StrEnum):
    CREATED = "created"
    UPDATED = "updated"
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

    @property
    def auth(self) -> str:
        return base64.b64encode(f"{self.username}:{self.password}".encode()).decode()


@dataclass(frozen=True)
class NamespaceInfo:
    name: str
    terminating: bool = False


@dataclass(frozen=True)
class SecretState:
    """A Secret as read from or written to the API; `data` values are base64, as on the wire."""

    name: str
    namespace: str
    type: str
    labels: dict[str, str] = field(default_factory=dict)
    annotations: dict[str, str] = field(default_factory=dict)
    data: dict[str, str] = field(default_factory=dict, repr=False)
    resource_version: str | None = None

    @property
    def managed(self) -> bool:
        return self.labels.get(MANAGED_BY_LABEL) == MANAGED_BY_VALUE


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

    def to_dict(self) -> dict[str, Any]:
        result: dict[str, Any] = {"namespace": self.namespace, "outcome": self.outcome.value}
        if self.reason:
            result["reason"] = self.reason
        if self.service_accounts:
            result["service_accounts_patched"] = list(self.service_accounts)
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

    @property
    def counts(self) -> dict[str, int]:
        tally = Counter(result.outcome for result in self.results)
        return {outcome.value: tally.get(outcome, 0) for outcome in Outcome}

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
            "token_expires_at": self.token_expires_at.isoformat() if self.token_expires_at else None,
            "counts": self.counts,
            "errors": list(self.errors),
            "namespaces": [result.to_dict() for result in self.results],
            "duration_seconds": round(self.duration_seconds, 3),
        }
