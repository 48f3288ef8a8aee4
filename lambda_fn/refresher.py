"""The core: renew the pull secret in every target namespace, in place, never losing a good one.

Depends only on the ports (ClusterApi) and plain data, so the same code serves the Lambda, the CLI
and the in-memory fakes of the unit tests.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import TypeVar

from lambda_fn.config import Settings, is_glob
from lambda_fn.dockerconfig import merge_dockerconfigjson, read_auths
from lambda_fn.errors import (
    AlreadyExists,
    Conflict,
    Forbidden,
    KubernetesError,
    NamespaceTerminating,
    NotFound,
    Unauthorized,
)
from lambda_fn.models import (
    DOCKERCONFIGJSON_KEY,
    DOCKERCONFIGJSON_TYPE,
    EXPIRES_AT_ANNOTATION,
    MANAGED_BY_LABEL,
    MANAGED_BY_VALUE,
    REFRESHED_AT_ANNOTATION,
    REGISTRIES_ANNOTATION,
    NamespaceResult,
    Outcome,
    RegistryCredential,
    RunSummary,
    SecretState,
)
from lambda_fn.ports import ClusterApi
from lambda_fn.targets import Target, TargetSpec, resolve_targets

# A write that meets a concurrent writer re-reads and tries again, this many times in all.
MAX_WRITE_ATTEMPTS = 3

T = TypeVar("T")


@dataclass(frozen=True)
class RefreshPlan:
    """What to write where: the part of Settings the core needs."""

    secret_name: str
    targets: TargetSpec
    service_accounts: tuple[str, ...]
    refresh_threshold: timedelta
    max_concurrency: int
    deadline_margin: timedelta
    dry_run: bool
    force: bool

    @classmethod
    def from_settings(cls, settings: Settings) -> RefreshPlan:
        return cls(
            secret_name=settings.secret_name,
            targets=TargetSpec(settings.namespaces, settings.namespace_selector, settings.exclude_namespaces),
            service_accounts=settings.service_accounts,
            refresh_threshold=settings.refresh_threshold,
            max_concurrency=settings.max_concurrency,
            deadline_margin=settings.deadline_margin,
            dry_run=settings.dry_run,
            force=settings.force,
        )


def renew_pull_secrets(
    cluster: ClusterApi,
    credentials: Sequence[RegistryCredential],
    plan: RefreshPlan,
    *,
    cluster_label: str,
    now: Callable[[], datetime],
    remaining_seconds: Callable[[], float | None] = lambda: None,
) -> RunSummary:
    """Create or update the secret in every target namespace; every namespace is attempted."""
    started = time.monotonic()
    errors: list[str] = []
    try:
        targets = resolve_targets(cluster, plan.targets)
    except KubernetesError as exc:
        errors.append(f"could not list namespaces: {explain(exc)}")
        targets = [Target(name, named=True) for name in sorted(set(plan.targets.patterns)) if not is_glob(name)]
    renewer = _NamespaceRenewer(cluster, credentials, plan, now=now, remaining_seconds=remaining_seconds)
    if targets:
        with ThreadPoolExecutor(max_workers=min(plan.max_concurrency, len(targets))) as pool:
            results = tuple(pool.map(renewer.renew, targets))
    else:
        results = ()
    return RunSummary(
        cluster=cluster_label,
        secret_name=plan.secret_name,
        dry_run=plan.dry_run,
        registries=tuple(credential.host for credential in credentials),
        token_expires_at=min((c.expires_at for c in credentials), default=None),
        results=results,
        errors=tuple(errors),
        duration_seconds=time.monotonic() - started,
    )


def explain(exc: KubernetesError) -> str:
    """The error with the fix that applies to it."""
    if isinstance(exc, Unauthorized):
        return (
            f"{exc}: the API server rejected the credentials; map the function's IAM role to a "
            "Kubernetes group with an EKS access entry (or check the kubeconfig's user)"
        )
    if isinstance(exc, Forbidden):
        return f"{exc}: apply the RBAC manifest from `make rbac`, which grants what this configuration needs"
    return str(exc)


class _NamespaceRenewer:
    """Renews one namespace at a time; shared by the worker threads (state is read-only or an Event)."""

    def __init__(
        self,
        cluster: ClusterApi,
        credentials: Sequence[RegistryCredential],
        plan: RefreshPlan,
        *,
        now: Callable[[], datetime],
        remaining_seconds: Callable[[], float | None],
    ) -> None:
        self._cluster = cluster
        self._credentials = credentials
        self._plan = plan
        self._now = now
        self._remaining_seconds = remaining_seconds
        self._hosts = ",".join(credential.host for credential in credentials)
        self._expires_at = min(credential.expires_at for credential in credentials)
        self._rejected = threading.Event()

    def renew(self, target: Target) -> NamespaceResult:
        skip_reason = self._reason_not_to_start(target)
        if skip_reason is not None:
            return skip_reason
        try:
            outcome, reason = self._write_secret(target.name)
        except NamespaceTerminating:
            return NamespaceResult(target.name, Outcome.SKIPPED, "namespace is being deleted")
        except NotFound:
            if target.named:
                return NamespaceResult(target.name, Outcome.FAILED, f"namespace {target.name!r} does not exist")
            # Found by a glob or the selector, then deleted before its turn: nothing to serve.
            return NamespaceResult(target.name, Outcome.SKIPPED, "namespace was deleted during the run")
        except KubernetesError as exc:
            return self._failure(target.name, exc)
        if outcome not in (Outcome.CREATED, Outcome.UPDATED, Outcome.UNCHANGED) or not self._plan.service_accounts:
            return NamespaceResult(target.name, outcome, reason)
        try:
            patched = self._add_to_service_accounts(target.name)
        except KubernetesError as exc:
            failure = self._failure(target.name, exc)
            return replace(failure, reason=f"secret {outcome.value}, but a service account was not: {failure.reason}")
        return NamespaceResult(target.name, outcome, reason, patched)

    def _reason_not_to_start(self, target: Target) -> NamespaceResult | None:
        if self._rejected.is_set():
            return NamespaceResult(
                target.name, Outcome.FAILED, "not attempted: the API server rejected the credentials"
            )
        remaining = self._remaining_seconds()
        if remaining is not None and remaining < self._plan.deadline_margin.total_seconds():
            return NamespaceResult(
                target.name,
                Outcome.FAILED,
                f"not attempted: {remaining:.1f}s left before the Lambda timeout; the next run covers it",
            )
        if target.terminating:
            return NamespaceResult(target.name, Outcome.SKIPPED, "namespace is being deleted")
        return None

    def _failure(self, namespace: str, exc: KubernetesError) -> NamespaceResult:
        if isinstance(exc, Unauthorized):
            self._rejected.set()
        return NamespaceResult(namespace, Outcome.FAILED, explain(exc))

    def _write_secret(self, namespace: str) -> tuple[Outcome, str]:
        return _until_settled(lambda: self._try_write_secret(namespace), f"secret {self._plan.secret_name!r}")

    def _try_write_secret(self, namespace: str) -> tuple[Outcome, str] | None:
        """One read-then-write; None when a concurrent writer got in between (re-read and retry)."""
        current = self._cluster.read_secret(namespace, self._plan.secret_name)
        if current is None:
            if self._plan.dry_run:
                return Outcome.CREATED, "dry run: would create"
            try:
                self._cluster.create_secret(self._desired(namespace, current=None))
            except AlreadyExists:
                return None
            return Outcome.CREATED, ""
        verdict = self._verdict_without_writing(current)
        if verdict is not None:
            return verdict
        if self._plan.dry_run:
            return Outcome.UPDATED, "dry run: would update"
        try:
            self._cluster.replace_secret(self._desired(namespace, current=current))
        except (Conflict, NotFound):
            return None
        return Outcome.UPDATED, ""

    def _verdict_without_writing(self, current: SecretState) -> tuple[Outcome, str] | None:
        if not current.managed:
            return Outcome.SKIPPED, (
                f"a secret named {current.name!r} exists without the label "
                f"{MANAGED_BY_LABEL}={MANAGED_BY_VALUE}; left untouched"
            )
        if current.type != DOCKERCONFIGJSON_TYPE:
            return Outcome.FAILED, (
                f"the managed secret has type {current.type!r}, which cannot be changed in place; "
                "delete it and the next run recreates it"
            )
        if self._is_fresh(current):
            return Outcome.UNCHANGED, ""
        return None

    def _is_fresh(self, current: SecretState) -> bool:
        """Fresh: same registries, all present in the data, and more than the threshold left."""
        if self._plan.force or current.annotations.get(REGISTRIES_ANNOTATION) != self._hosts:
            return False
        auths = read_auths(current.data.get(DOCKERCONFIGJSON_KEY)) or {}
        if not all(credential.host in auths for credential in self._credentials):
            return False
        try:
            expires_at = datetime.fromisoformat(current.annotations.get(EXPIRES_AT_ANNOTATION, ""))
        except ValueError:
            return False
        return expires_at.tzinfo is not None and expires_at - self._now() > self._plan.refresh_threshold

    def _desired(self, namespace: str, *, current: SecretState | None) -> SecretState:
        """Ours set, everything else of `current` (labels, annotations, other auths) kept."""
        old = current or SecretState(self._plan.secret_name, namespace, DOCKERCONFIGJSON_TYPE)
        previous_hosts = set(filter(None, old.annotations.get(REGISTRIES_ANNOTATION, "").split(",")))
        served = {credential.host for credential in self._credentials}
        payload = merge_dockerconfigjson(
            old.data.get(DOCKERCONFIGJSON_KEY), self._credentials, retired_hosts=previous_hosts - served
        )
        return replace(
            old,
            labels={**old.labels, MANAGED_BY_LABEL: MANAGED_BY_VALUE},
            annotations={
                **old.annotations,
                REFRESHED_AT_ANNOTATION: self._now().isoformat(timespec="seconds"),
                EXPIRES_AT_ANNOTATION: self._expires_at.isoformat(timespec="seconds"),
                REGISTRIES_ANNOTATION: self._hosts,
            },
            data={**old.data, DOCKERCONFIGJSON_KEY: payload},
        )

    def _add_to_service_accounts(self, namespace: str) -> tuple[str, ...]:
        """Add the secret to each configured service account present here; keep its other entries."""
        return tuple(
            name
            for name in self._plan.service_accounts
            if _until_settled(lambda name=name: self._try_add_to_service_account(namespace, name), name)  # type: ignore[misc]
        )

    def _try_add_to_service_account(self, namespace: str, name: str) -> bool | None:
        """True if patched (or would be), False if absent or already listed, None to re-read."""
        account = self._cluster.read_service_account(namespace, name)
        if account is None or self._plan.secret_name in account.image_pull_secrets:
            return False
        if self._plan.dry_run:
            return True
        try:
            self._cluster.set_image_pull_secrets(account, [*account.image_pull_secrets, self._plan.secret_name])
        except Conflict:
            return None
        return True


def _until_settled(attempt: Callable[[], T | None], what: str) -> T:
    """Run a read-then-write `attempt` until it settles; bounded, so a busy writer cannot spin us."""
    for _ in range(MAX_WRITE_ATTEMPTS):
        result = attempt()
        if result is not None:
            return result
    raise KubernetesError(f"{what} kept changing under a concurrent writer; gave up after {MAX_WRITE_ATTEMPTS} tries")
