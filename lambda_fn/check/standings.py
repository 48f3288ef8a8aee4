"""Each target namespace's secret as it stands, judged by the decision `refresh` makes, and the
standings that fail `check` (every run would fail there, or leave them without a fresh token)."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime

from lambda_fn.check.admission_probe import Answer, admission
from lambda_fn.check.report import Finding, NamespaceState, Standing, Status, shown
from lambda_fn.config import Settings
from lambda_fn.decisions import Action, Registries, decide, desired_secret, recorded_expiry
from lambda_fn.errors import KubernetesError
from lambda_fn.models import Outcome, SecretState
from lambda_fn.ports import PreflightApi
from lambda_fn.runner import utc_now
from lambda_fn.targets import Target
from lambda_fn.tenancy import NO_REGISTRY

# Standings that fail `check`: (the finding's name, its detail, the fix).
FAILING = {
    Standing.ABSENT: (
        "named namespaces exist",
        "{count} namespace(s) named in the configuration do not exist ({shown}): every run fails there",
        "create them, or remove them from the configured namespaces",
    ),
    Standing.REFUSED: (
        "adoption",
        "admission refuses adopting the kubectl recipe's secret in {shown}: every run would fail there",
        "render the manifest with the deploy's AWS credentials (so that it knows the function's own "
        'registry) and the current registries, and re-apply it: `make apply CONTEXT="..."`',
    ),
    Standing.SUSPECT: (
        "secrets written by others",
        "{count} managed secret(s) were changed by another writer since this tool's last write ({shown}): "
        "pulls there may fail until the next run rewrites them",
        "find the writer in the secret's managedFields (`kubectl get secret -o yaml --show-managed-fields`) "
        "and stop it; the next run repairs the secret",
    ),
    Standing.BROKEN: (
        "namespaces the next run fails in",
        "{count} namespace(s) where the next run fails ({shown})",
        "see each namespace's line below for why and the fix",
    ),
    Standing.FOREIGN: (
        "foreign secrets",
        "{count} namespace(s) hold a {secret!r} secret this tool does not manage ({shown}): "
        "refresh skips them, and pods there get no fresh token from it",
        "rename or delete those secrets, or deploy with another secretName",
    ),
}


def standings(
    api: PreflightApi,
    settings: Settings,
    targets: Sequence[Target],
    listed: Mapping[str, SecretState] | None,
    *,
    registries: Callable[[str], Registries],
    any_token: bool,
    absent: set[str],
    concurrency: int,
) -> tuple[list[NamespaceState], list[Finding]]:
    """Each target's standing, judged with the registries it receives (`any_token`: whether the run would
    have any token at all), from the listed states (read one by one when the list was refused)."""

    def standing_of(target: Target) -> NamespaceState:
        if target.terminating:
            return NamespaceState(target.name, Standing.TERMINATING, "skipped: the namespace is being deleted")
        if target.name in absent:
            return NamespaceState(target.name, Standing.ABSENT, "no such namespace: every run fails here")
        receives = registries(target.name)
        if any_token and not receives.credentials and not receives.unavailable:
            return NamespaceState(target.name, Standing.BROKEN, NO_REGISTRY)
        try:
            if listed is not None:
                state = listed.get(target.name)
            else:
                state = api.read_secret(target.name, settings.secret_name)
            return judged(target.name, state, api, settings, receives, now=utc_now())
        except KubernetesError as exc:
            return NamespaceState(target.name, Standing.UNREADABLE, str(exc))

    with ThreadPoolExecutor(max_workers=concurrency) as pool:
        found = list(pool.map(standing_of, targets))
    findings = []
    for standing, (name, detail, fix) in FAILING.items():
        namespaces = [n.namespace for n in found if n.state is standing]
        if namespaces:
            text = detail.format(count=len(namespaces), shown=shown(namespaces), secret=settings.secret_name)
            findings.append(Finding(name, Status.FAILED, text, fix))
    return found, findings


def judged(
    namespace: str,
    state: SecretState | None,
    api: PreflightApi,
    settings: Settings,
    registries: Registries,
    *,
    now: datetime,
) -> NamespaceState:
    if state is None:
        return NamespaceState(namespace, Standing.MISSING, "created on the next run")
    if not registries.credentials:  # no token to judge freshness with: what the annotations say
        expiry = recorded_expiry(state)
        standing = Standing.MANAGED if expiry else Standing.UNKNOWN
        return NamespaceState(namespace, standing, f"expires {expiry}" if expiry else "")
    verdict = decide(state, registries, settings, now=now)
    if verdict.action is Action.READ:
        state = api.read_secret(namespace, settings.secret_name)
        verdict = decide(state, registries, settings, now=now)
    expiry = recorded_expiry(state)
    until = f"expires {expiry.isoformat(timespec='minutes')}" if expiry else ""
    if verdict.action is Action.ADOPT and state is not None:
        # The policy admits adoptions for the hosts the manifest was rendered with: a manifest rendered
        # without the function's own registry, or before a registry was added, refuses this update.
        desired = desired_secret(state, registries, namespace=namespace, secret_name=settings.secret_name, now=now)
        answer = admission(api, desired)
        if answer not in (Answer.ADMITTED, Answer.UNASKED):
            detail = f"the kubectl recipe's secret; admission refuses adopting it: {answer}"
            return NamespaceState(namespace, Standing.REFUSED, detail)
    if verdict.outcome is Outcome.REPAIRED:
        return NamespaceState(namespace, Standing.SUSPECT, f"{verdict.reason}; rewritten on the next run")
    described = {
        Action.CREATE: (Standing.MISSING, "created on the next run"),
        Action.UPDATE: (Standing.MANAGED, f"{until}; renewed on the next run"),
        Action.ADOPT: (Standing.ADOPTABLE, "the kubectl recipe's secret: adopted on the next run"),
    }
    if verdict.action in described:
        return NamespaceState(namespace, *described[verdict.action])
    if verdict.foreign:
        return NamespaceState(namespace, Standing.FOREIGN, "skipped: " + verdict.reason)
    if verdict.kept:
        return NamespaceState(namespace, Standing.MANAGED, f"{until}; {verdict.reason}")
    if verdict.outcome is Outcome.FAILED:
        return NamespaceState(namespace, Standing.BROKEN, verdict.reason)
    return NamespaceState(namespace, Standing.MANAGED, f"{until}; fresh")
