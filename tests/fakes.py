"""In-memory stand-ins for the ports, for unit tests of the core and the preflight (no I/O)."""

from __future__ import annotations

import base64
import itertools
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta

from lambda_fn.errors import (
    AlreadyExists,
    Conflict,
    CredentialError,
    Invalid,
    KubernetesError,
    NamespaceTerminating,
    NotFound,
)
from lambda_fn.models import FieldPath, LeaseState, NamespaceInfo, SecretState, ServiceAccountState, WriteRecord
from lambda_fn.ports import AuthorizationToken
from lambda_fn.secret_contract import FIELD_MANAGER

NOW = datetime(2026, 11, 28, 9, 0, tzinfo=UTC)


def written(secret: SecretState, *, at: datetime, manager: str = FIELD_MANAGER) -> SecretState:
    """`secret` with the managedFields an API server records when `manager` writes all of it at `at`."""
    fields: set[FieldPath] = {("data", key) for key in secret.data or {}} | {("type",)}
    fields |= {("metadata", "labels", key) for key in secret.labels}
    fields |= {("metadata", "annotations", key) for key in secret.annotations}
    return replace(secret, writes=(WriteRecord(manager, at, frozenset(fields)),))


@dataclass
class FakeCluster:
    """PreflightApi (ClusterApi and check's reviews and dry runs) in memory, with a call log and hooks to
    inject failures per call."""

    namespaces: dict[str, NamespaceInfo] = field(default_factory=dict)
    labels: dict[str, dict[str, str]] = field(default_factory=dict)
    secrets: dict[tuple[str, str], SecretState] = field(default_factory=dict)
    accounts: dict[tuple[str, str], ServiceAccountState] = field(default_factory=dict)
    leases: dict[tuple[str, str], LeaseState] = field(default_factory=dict)
    calls: list[tuple[str, str]] = field(default_factory=list)
    # (method name, namespace) -> callable raising or returning None before the call proceeds
    hooks: dict[tuple[str, str], Callable[[], None]] = field(default_factory=dict)
    # The server's clock, for the managedFields time of each write.
    clock: Callable[[], datetime] = lambda: NOW
    # (verb, resource) this identity may not do anywhere; everything else it may do everywhere.
    refused: set[tuple[str, str]] = field(default_factory=set)
    # namespace -> the message admission refuses any secret there with (a dry run raises it as Invalid).
    admission_refusals: dict[str, str] = field(default_factory=dict)
    _versions: itertools.count[int] = field(default_factory=lambda: itertools.count(1))
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def add_namespace(self, name: str, *, labels: dict[str, str] | None = None, terminating: bool = False) -> None:
        self.namespaces[name] = NamespaceInfo(name, terminating)
        self.labels[name] = labels or {}

    def _enter(self, method: str, namespace: str) -> None:
        with self._lock:
            self.calls.append((method, namespace))
        hook = self.hooks.get((method, namespace))
        if hook is not None:
            hook()

    def writes(self) -> list[tuple[str, str]]:
        return [call for call in self.calls if call[0] in ("create_secret", "replace_secret", "set_image_pull_secrets")]

    def list_namespaces(self, *, label_selector: str | None) -> Sequence[NamespaceInfo]:
        self._enter("list_namespaces", "")
        if label_selector is None:
            return [self.namespaces[name] for name in sorted(self.namespaces)]
        key, _, value = label_selector.partition("=")  # the fake understands key=value only
        return [self.namespaces[n] for n in sorted(self.namespaces) if self.labels[n].get(key) == value]

    def read_secret(self, namespace: str, name: str) -> SecretState | None:
        self._enter("read_secret", namespace)
        return self.secrets.get((namespace, name))

    def list_secret_metadata(self, name: str) -> Iterator[SecretState]:
        self._enter("list_secret_metadata", "")
        for (_, secret_name), secret in sorted(self.secrets.items()):
            if secret_name == name:
                yield replace(secret, type=None, data=None, immutable=False)

    def create_secret(self, secret: SecretState) -> None:
        self._enter("create_secret", secret.namespace)
        if secret.namespace not in self.namespaces:
            raise NotFound(f'404 NotFound: namespaces "{secret.namespace}" not found')
        key = (secret.namespace, secret.name)
        if key in self.secrets:
            raise AlreadyExists("409 AlreadyExists")
        self.secrets[key] = replace(written(secret, at=self.clock()), resource_version=str(next(self._versions)))

    def replace_secret(self, secret: SecretState) -> None:
        self._enter("replace_secret", secret.namespace)
        key = (secret.namespace, secret.name)
        current = self.secrets.get(key)
        if current is None:
            raise NotFound("404 NotFound")
        if secret.resource_version != current.resource_version:
            raise Conflict("409 Conflict")
        self.secrets[key] = replace(written(secret, at=self.clock()), resource_version=str(next(self._versions)))

    def read_service_account(self, namespace: str, name: str) -> ServiceAccountState | None:
        self._enter("read_service_account", namespace)
        return self.accounts.get((namespace, name))

    def read_lease(self, namespace: str, name: str) -> LeaseState | None:
        self._enter("read_lease", namespace)
        return self.leases.get((namespace, name))

    def create_lease(self, lease: LeaseState) -> LeaseState:
        self._enter("create_lease", lease.namespace)
        with self._lock:
            if (lease.namespace, lease.name) in self.leases:
                raise AlreadyExists("409 AlreadyExists")
            stored = replace(lease, resource_version=str(next(self._versions)))
            self.leases[lease.namespace, lease.name] = stored
        return stored

    def replace_lease(self, lease: LeaseState) -> LeaseState:
        self._enter("replace_lease", lease.namespace)
        with self._lock:
            current = self.leases.get((lease.namespace, lease.name))
            if current is None or current.resource_version != lease.resource_version:
                raise Conflict("409 Conflict")
            stored = replace(lease, resource_version=str(next(self._versions)))
            self.leases[lease.namespace, lease.name] = stored
        return stored

    def list_service_accounts(self, name: str) -> Iterator[ServiceAccountState]:
        self._enter("list_service_accounts", "")
        yield from (account for (_, account_name), account in sorted(self.accounts.items()) if account_name == name)

    def set_image_pull_secrets(self, account: ServiceAccountState, names: Sequence[str]) -> None:
        self._enter("set_image_pull_secrets", account.namespace)
        key = (account.namespace, account.name)
        if self.accounts[key].resource_version != account.resource_version:
            raise Conflict("409 Conflict")
        self.accounts[key] = replace(
            account, image_pull_secrets=tuple(names), resource_version=str(next(self._versions))
        )

    def may(
        self, verb: str, resource: str, *, namespace: str | None = None, name: str | None = None, group: str = ""
    ) -> bool:
        self._enter("may", namespace or "")
        return (verb, resource) not in self.refused

    def whoami(self) -> tuple[str, tuple[str, ...]]:
        self._enter("whoami", "")
        return "fake-refresher", ("ecr-token-refresher",)

    def dry_run_create(self, secret: SecretState) -> None:
        self._dry_run("dry_run_create", secret)
        if (secret.namespace, secret.name) in self.secrets:
            raise AlreadyExists("409 AlreadyExists")

    def dry_run_replace(self, secret: SecretState) -> None:
        self._dry_run("dry_run_replace", secret)

    def _dry_run(self, method: str, secret: SecretState) -> None:
        self._enter(method, secret.namespace)
        namespace = self.namespaces.get(secret.namespace)
        if namespace is None:
            raise NotFound(f'404 NotFound: namespaces "{secret.namespace}" not found')
        if namespace.terminating:
            raise NamespaceTerminating("403 Forbidden: the namespace is being terminated")
        if secret.namespace in self.admission_refusals:
            raise Invalid(f"422 Invalid: {self.admission_refusals[secret.namespace]}")


@dataclass
class FakeTokenSource:
    """RegistryTokenSource answering like ECR; counts calls per (region, role)."""

    lifetime: timedelta = timedelta(hours=12)
    password_prefix: str = "pw"
    calls: list[tuple[str, str | None]] = field(default_factory=list)
    token_text: str | None = None
    error: KubernetesError | None = None
    refused_roles: tuple[str, ...] = ()  # roles whose trust policy does not let the function assume them

    def fetch(self, *, region: str, role_arn: str | None) -> AuthorizationToken:
        self.calls.append((region, role_arn))
        if role_arn in self.refused_roles:
            raise CredentialError(f"could not assume {role_arn} (AccessDenied: not authorized to assume the role)")
        account = role_arn.split(":")[4] if role_arn else "123456789012"
        text = self.token_text or f"AWS:{self.password_prefix}-{region}-{account}"
        return AuthorizationToken(
            token=base64.b64encode(text.encode()).decode(),
            expires_at=NOW + self.lifetime,
            proxy_endpoint=f"https://{account}.dkr.ecr.{region}.amazonaws.com",
        )
