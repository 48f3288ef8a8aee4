"""The core: renew the pull secret in every target namespace, in place, never losing a good one.

Depends only on the ports (ClusterApi) and plain data, so the same code serves the Lambda, the CLI
and the in-memory fakes of the unit tests.

How a secret's state is read depends on how targets are found: with globs or a selector, one
cluster-wide list by name (metadata only, 1,000 a page) tells every namespace's state, and only a
secret that must change is read in full; with names only, one GET per namespace (the RBAC for names
is a Role per namespace, which cannot list cluster-wide). Whatever read fed it, one function decides
what to do with a namespace: `decide`.
"""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from datetime import datetime
from typing import TypeVar

from lambda_fn.config import Settings
from lambda_fn.decisions import (
    Action,
    Registries,
    Verdict,
    decide,
    desired_secret,
    recorded_expiry,
    recorded_hosts,
    unserved,
)
from lambda_fn.errors import (
    AlreadyExists,
    Conflict,
    Invalid,
    KubernetesError,
    NamespaceTerminating,
    NotFound,
    Unauthorized,
    explain,
)
from lambda_fn.models import NamespaceResult, Outcome, RegistryCredential, RunSummary, SecretState, ServiceAccountState
from lambda_fn.observation import observe
from lambda_fn.ports import ClusterApi
from lambda_fn.secret_contract import SCOPE_RULE, TENANT_SCOPE
from lambda_fn.targets import Target
from lambda_fn.tenancy import NO_REGISTRY, registries_by_namespace

# A write that meets a concurrent writer re-reads and tries again, this many times in all.
MAX_WRITE_ATTEMPTS = 3
# The admission policy judges the namespace from the API server's cache of namespace labels: a write
# right after a namespace is created or labelled can be refused (measured: admitted a median 9.9 ms
# later behind a second apiserver). Such a refusal is tried once more after this long.
SCOPE_RETRY_SECONDS = 1.0
# The rules judged on the namespace's labels: the target scope, and a tenant's selector.
LABEL_RULES = (SCOPE_RULE, TENANT_SCOPE)

T = TypeVar("T")


def renew_pull_secrets(
    cluster: ClusterApi,
    credentials: Sequence[RegistryCredential],
    settings: Settings,
    *,
    cluster_label: str,
    now: Callable[[], datetime],
    remaining_seconds: Callable[[], float | None] = lambda: None,
    progress: Callable[[NamespaceResult, int, int], None] = lambda *_: None,
    unavailable: Mapping[str, str] | None = None,
) -> RunSummary:
    """Create or update the secret in every target namespace; every namespace is attempted.

    `unavailable` names the configured registries whose token could not be had (host → why): the run
    fails for them, a secret holding one is kept as it is, the others are written without them.

    `progress` hears each namespace's result as it settles, with the count done and the total.

    Raises ConfigError, before anything is written, if a manual event's narrowing names a namespace
    outside the configured targets.
    """
    started = time.monotonic()
    unavailable = unavailable or {}
    errors = [
        f"{reason}: {', '.join(sorted(hosts))} not written (secrets holding them kept as they are)"
        for reason, hosts in _by_reason(unavailable).items()
    ]
    observed = observe(cluster, settings)
    errors += observed.errors
    targets = observed.targets
    registries = Registries(tuple(credentials), unavailable)
    renewer = _NamespaceRenewer(
        cluster,
        registries_by_namespace(registries, settings.tenants, observed.selected),
        settings,
        observed.states,
        observed.accounts,
        now=now,
        remaining_seconds=remaining_seconds,
    )
    finished, lock = itertools.count(1), threading.Lock()

    def renew_done(result: NamespaceResult) -> NamespaceResult:
        with lock:  # in order: the count heard is never lower than one heard before
            progress(result, next(finished), len(targets))
        return result

    def renew(target: Target) -> NamespaceResult:
        return renew_done(renewer.renew(target))

    # Namespaces the list already settles (fresh, foreign, nothing else to do) need no request: decided
    # here, so the pool only carries those that do; in steady state that is none.
    settled = {target.name: renewer.settled(target) for target in targets}
    waiting = [target for target in targets if settled[target.name] is None]
    for result in settled.values():
        if result is not None:
            renew_done(result)
    if waiting:
        with ThreadPoolExecutor(max_workers=min(settings.max_concurrency, len(waiting))) as pool:
            try:
                for target, result in zip(waiting, pool.map(renew, waiting), strict=True):
                    settled[target.name] = result
            except KeyboardInterrupt:
                # Ctrl-C at the CLI: the writes in flight end whole (each is one request); none starts.
                pool.shutdown(cancel_futures=True)
                raise
    results = tuple(result for result in settled.values() if result is not None)
    return RunSummary(
        cluster=cluster_label,
        secret_name=settings.secret_name,
        dry_run=settings.dry_run,
        registries=tuple(credential.host for credential in credentials),
        token_expires_at=registries.expires_at if credentials else None,
        results=results,
        errors=tuple(errors),
        duration_seconds=time.monotonic() - started,
        targets_known=observed.targets_known,
        unavailable_registries=tuple(sorted(unavailable)),
    )


def _by_reason(unavailable: Mapping[str, str]) -> dict[str, list[str]]:
    hosts: dict[str, list[str]] = {}
    for host, reason in unavailable.items():
        hosts.setdefault(reason, []).append(host)
    return hosts


class _Unread:
    """The state of a namespace whose secret has not been read yet."""


UNREAD = _Unread()


class _NamespaceRenewer:
    """Renews one namespace at a time; shared by the worker threads (state is read-only or an Event)."""

    def __init__(
        self,
        cluster: ClusterApi,
        registries: Callable[[str], Registries],
        settings: Settings,
        states: Mapping[str, SecretState] | None,
        accounts: Mapping[tuple[str, str], ServiceAccountState] | None,
        *,
        now: Callable[[], datetime],
        remaining_seconds: Callable[[], float | None],
    ) -> None:
        self._cluster = cluster
        self._registries = registries  # what each namespace receives (lambda_fn/tenancy.py)
        self._settings = settings
        self._states = states
        # The configured service accounts as listed, by (namespace, name); None: read one by one.
        self._accounts = accounts
        self._now = now
        self._remaining_seconds = remaining_seconds
        self._rejected = threading.Event()
        # Each namespace's secret expiry and hosts as last seen (read, listed or written), for the watchdog.
        self._expiry: dict[str, datetime | None] = {}
        self._hosts: dict[str, frozenset[str]] = {}

    def renew(self, target: Target) -> NamespaceResult:
        result = self._renew(target)
        return replace(result, expires_at=self._served_expiry(target.name))

    def _seen(self, namespace: str, state: SecretState | None) -> None:
        self._expiry[namespace] = recorded_expiry(state)
        self._hosts[namespace] = frozenset(recorded_hosts(state)) if state is not None else frozenset()

    def _served_expiry(self, namespace: str) -> datetime | None:
        """The secret's expiry as it stands, or None (unknown, or no secret) when it lacks the login of a
        configured registry whose token could not be had: its pulls from there fail now."""
        if set(self._registries(namespace).unavailable) - self._hosts.get(namespace, frozenset()):
            return None
        return self._expiry.get(namespace)

    def settled(self, target: Target) -> NamespaceResult | None:
        """The result, when the listed states alone settle the namespace and nothing else is to be done
        there (every configured service account absent or already listing the secret); None when it takes
        a request."""
        if self._states is None or target.terminating:
            return None
        if self._settings.service_accounts and (self._accounts is None or self._accounts_to_patch(target.name)):
            return None
        state = self._states.get(target.name)
        if state is None or self._rejected.is_set() or not self._registries(target.name).credentials:
            return None
        verdict = decide(state, self._registries(target.name), self._settings, now=self._now())
        if verdict.action is not Action.DONE or verdict.outcome is None:
            return None
        self._seen(target.name, state)
        return NamespaceResult(
            target.name,
            verdict.outcome,
            verdict.reason,
            foreign=verdict.foreign,
            expires_at=self._served_expiry(target.name),
        )

    def _renew(self, target: Target) -> NamespaceResult:
        if self._states is not None:
            self._seen(target.name, self._states.get(target.name))
        skip_reason = self._reason_not_to_start(target)
        if skip_reason is not None:
            return skip_reason
        try:
            verdict = self._write_secret(target.name)
        except NamespaceTerminating:
            return NamespaceResult(target.name, Outcome.SKIPPED, "namespace is being deleted")
        except NotFound:
            if target.named:
                return NamespaceResult(target.name, Outcome.FAILED, f"namespace {target.name!r} does not exist")
            # Found by a glob or the selector, then deleted before its turn: nothing to serve.
            return NamespaceResult(target.name, Outcome.SKIPPED, "namespace was deleted during the run")
        except KubernetesError as exc:
            return self._failure(target.name, exc)
        outcome, reason = verdict.outcome or Outcome.FAILED, verdict.reason
        if (outcome in (Outcome.FAILED, Outcome.SKIPPED) and not verdict.kept) or not self._settings.service_accounts:
            return NamespaceResult(target.name, outcome, reason, foreign=verdict.foreign)
        try:
            patched = self._add_to_service_accounts(target.name)
        except KubernetesError as exc:
            failure = self._failure(target.name, exc)
            return replace(failure, reason=f"secret {outcome.value}, but a service account was not: {failure.reason}")
        if patched and self._settings.dry_run:
            reason = f"{reason}; would patch service accounts {', '.join(patched)}"
        return NamespaceResult(target.name, outcome, reason, patched, dry_run=self._settings.dry_run)

    def _reason_not_to_start(self, target: Target) -> NamespaceResult | None:
        if self._rejected.is_set():
            return NamespaceResult(
                target.name, Outcome.FAILED, "not attempted: the API server rejected the credentials"
            )
        remaining = self._remaining_seconds()
        if remaining is not None and remaining < self._settings.deadline_margin.total_seconds():
            return NamespaceResult(
                target.name,
                Outcome.FAILED,
                f"not attempted: {remaining:.1f}s left before the Lambda timeout; the next run covers it",
            )
        if target.terminating:
            return NamespaceResult(target.name, Outcome.SKIPPED, "namespace is being deleted")
        receives = self._registries(target.name)
        if not receives.credentials:
            reason = (
                f"not written: none of the registries it receives could be served ({unserved(receives.unavailable)})"
                if receives.unavailable
                else NO_REGISTRY
            )
            return NamespaceResult(target.name, Outcome.FAILED, reason)
        return None

    def _failure(self, namespace: str, exc: KubernetesError) -> NamespaceResult:
        if isinstance(exc, Unauthorized):
            self._rejected.set()
        return NamespaceResult(namespace, Outcome.FAILED, explain(exc))

    def _write_secret(self, namespace: str) -> Verdict:
        known: SecretState | _Unread | None = UNREAD if self._states is None else self._states.get(namespace)
        return _until_settled(
            lambda first: self._try_write_secret(namespace, known if first else UNREAD),
            f"secret {self._settings.secret_name!r}",
        )

    def _try_write_secret(self, namespace: str, known: SecretState | _Unread | None) -> Verdict | None:
        """One decision and at most one write: the verdict as carried out, or None when a concurrent
        writer got in between (re-read and decide again)."""
        state = self._cluster.read_secret(namespace, self._settings.secret_name) if known is UNREAD else known
        assert not isinstance(state, _Unread)  # noqa: S101 - read just above
        registries = self._registries(namespace)
        verdict = decide(state, registries, self._settings, now=self._now())
        if verdict.action is Action.READ:
            state = self._cluster.read_secret(namespace, self._settings.secret_name)
            verdict = decide(state, registries, self._settings, now=self._now())
        self._seen(namespace, state)
        if verdict.action is Action.DONE:
            return verdict
        if self._settings.dry_run:
            return replace(verdict, reason=f"dry run: would {verdict.action.value}" + _suffix(verdict.reason))
        desired = desired_secret(
            state, registries, namespace=namespace, secret_name=self._settings.secret_name, now=self._now()
        )
        try:
            self._send(desired, create=state is None)
        except (AlreadyExists, Conflict):
            return None
        except NotFound:
            if state is None:
                raise  # the namespace itself is gone
            return None  # deleted since it was read: create it on the next try
        self._expiry[namespace] = registries.expires_at
        self._hosts[namespace] = registries.hosts
        return verdict

    def _send(self, secret: SecretState, *, create: bool) -> None:
        """The create or update; a refusal by the policy's namespace rule is tried once more, a second later."""
        write = self._cluster.create_secret if create else self._cluster.replace_secret
        try:
            write(secret)
        except Invalid as exc:
            remaining = self._remaining_seconds()
            enough_time = (
                remaining is None or remaining > SCOPE_RETRY_SECONDS + self._settings.deadline_margin.total_seconds()
            )
            if not any(rule in str(exc) for rule in LABEL_RULES) or not enough_time:
                raise
            time.sleep(SCOPE_RETRY_SECONDS)
            write(secret)

    def _accounts_to_patch(self, namespace: str) -> list[str]:
        """The configured service accounts listed here that lack the secret (the listing must be known)."""
        assert self._accounts is not None  # noqa: S101 - the caller asks only when listed
        return [
            name
            for name in self._settings.service_accounts
            if (account := self._accounts.get((namespace, name))) is not None
            and self._settings.secret_name not in account.image_pull_secrets
        ]

    def _add_to_service_accounts(self, namespace: str) -> tuple[str, ...]:
        """Add the secret to each configured service account present here; keep its other entries."""
        return tuple(
            name
            for name in self._settings.service_accounts
            if _until_settled(
                lambda first, name=name: self._try_add_to_service_account(namespace, name, listed=first),  # type: ignore[misc]
                name,
            )
        )

    def _try_add_to_service_account(self, namespace: str, name: str, *, listed: bool) -> bool | None:
        """True if patched (or would be), False if absent or already listed, None to re-read. `listed`:
        start from the account as the run listed it, when it did (a conflict reads it afresh)."""
        if listed and self._accounts is not None:
            account = self._accounts.get((namespace, name))
        else:
            account = self._cluster.read_service_account(namespace, name)
        if account is None or self._settings.secret_name in account.image_pull_secrets:
            return False
        if self._settings.dry_run:
            return True
        try:
            self._cluster.set_image_pull_secrets(account, [*account.image_pull_secrets, self._settings.secret_name])
        except Conflict:
            return None
        return True


def _suffix(reason: str) -> str:
    return f" ({reason})" if reason else ""


def _until_settled(attempt: Callable[[bool], T | None], what: str) -> T:
    """Run a read-then-write `attempt(first)` until it settles; bounded, so a busy writer cannot spin us."""
    for number in range(MAX_WRITE_ATTEMPTS):
        result = attempt(number == 0)
        if result is not None:
            return result
    raise KubernetesError(f"{what} kept changing under a concurrent writer; gave up after {MAX_WRITE_ATTEMPTS} tries")
