"""What the core needs from the outside world; adapters in aws.py and k8s.py, fakes in the tests."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

from lambda_fn.models import LeaseState, NamespaceInfo, SecretState, ServiceAccountState


@dataclass(frozen=True)
class AuthorizationToken:
    """ECR GetAuthorizationToken's answer for one region, not yet validated."""

    token: str = field(repr=False)
    expires_at: datetime
    proxy_endpoint: str


class RegistryTokenSource(Protocol):
    def fetch(self, *, region: str, role_arn: str | None) -> AuthorizationToken:
        """One GetAuthorizationToken call in `region`, as `role_arn` when given."""
        ...


class ClusterApi(Protocol):
    """The Kubernetes calls the refresher makes; raise lambda_fn.errors.KubernetesError subclasses."""

    def list_namespaces(self, *, label_selector: str | None) -> Sequence[NamespaceInfo]: ...

    def read_secret(self, namespace: str, name: str) -> SecretState | None:
        """The whole secret (data included), or None when there is none."""
        ...

    def list_secret_metadata(self, name: str) -> Iterator[SecretState]:
        """Every secret called `name`, cluster-wide, metadata only (`type` and `data` None), page by page."""
        ...

    def create_secret(self, secret: SecretState) -> None: ...

    def replace_secret(self, secret: SecretState) -> None:
        """PUT of the object as read (`secret.raw`) with `secret`'s labels, annotations and data,
        guarded by `secret.resource_version`: raises Conflict when it is stale."""
        ...

    def read_service_account(self, namespace: str, name: str) -> ServiceAccountState | None: ...

    def list_service_accounts(self, name: str) -> Iterator[ServiceAccountState]:
        """Every service account called `name`, cluster-wide, page by page."""
        ...

    def set_image_pull_secrets(self, account: ServiceAccountState, names: Sequence[str]) -> None:
        """Replace `imagePullSecrets`, guarded by `account.resource_version` (Conflict when stale)."""
        ...

    def read_lease(self, namespace: str, name: str) -> LeaseState | None: ...

    def create_lease(self, lease: LeaseState) -> LeaseState:
        """Raises AlreadyExists when another run created it first."""
        ...

    def replace_lease(self, lease: LeaseState) -> LeaseState:
        """Guarded by `lease.resource_version`: raises Conflict when another run changed it."""
        ...


class PreflightApi(ClusterApi, Protocol):
    """What only `check` asks besides the refresher's calls: reviews and dry runs, which change nothing."""

    def may(
        self, verb: str, resource: str, *, namespace: str | None = None, name: str | None = None, group: str = ""
    ) -> bool:
        """Whether this identity may do it (a review that changes nothing)."""
        ...

    def whoami(self) -> tuple[str, tuple[str, ...]]:
        """The username and groups the API server sees for this identity."""
        ...

    def dry_run_create(self, secret: SecretState) -> None:
        """The create as RBAC and admission judge it, never stored."""
        ...

    def dry_run_replace(self, secret: SecretState) -> None:
        """The update as RBAC and admission judge it, never stored."""
        ...
