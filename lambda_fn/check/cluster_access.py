"""The Kubernetes side of `check` before any secret: who the API server sees, the target namespaces
(as refresh observes them), every permission the configuration needs, and the run's Lease."""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor

from lambda_fn.check.report import RBAC_FIX, Finding, Status, shown
from lambda_fn.config import Settings
from lambda_fn.errors import KubernetesError, Unauthorized, explain
from lambda_fn.models import LEASE_GROUP, LEASE_NAMESPACE
from lambda_fn.observation import Observation
from lambda_fn.ports import PreflightApi
from lambda_fn.tenancy import is_member

# A secret no configuration writes: may this identity read it, it may read every secret.
PROBE_SECRET = "ecr-token-refresher-probe"  # noqa: S105 - a Kubernetes object name


def kubernetes_identity(api: PreflightApi) -> tuple[bool, Finding]:
    """Whether the API server accepts this identity, and its finding."""
    try:
        user, groups = api.whoami()
    except Unauthorized as exc:
        return False, Finding(
            "Kubernetes authentication", Status.FAILED, str(exc), explain(exc).removeprefix(f"{exc}: ")
        )
    except KubernetesError as exc:
        fix = "is the endpoint reachable from where this runs (a private endpoint needs the function in its VPC)?"
        return False, Finding("Kubernetes API", Status.FAILED, str(exc), fix)
    return True, Finding("Kubernetes authentication", Status.OK, f"as {user} (groups {', '.join(groups) or 'none'})")


def target_namespaces(observed: Observation) -> Finding:
    """The targets as refresh found them; when the namespaces could not be listed, why."""
    if not observed.targets_known:
        return Finding("target namespaces", Status.FAILED, observed.errors[0], RBAC_FIX)
    names = [target.name for target in observed.targets]
    return Finding("target namespaces", Status.OK, f"{len(names)}: {shown(names)}" if names else "none match")


def tenant_scopes(settings: Settings, observed: Observation) -> list[Finding]:
    """Each tenant's target namespaces and registries: the scope its registries reach and no further."""
    findings = []
    targets = [target.name for target in observed.targets]
    for tenant in settings.tenants:
        label, hosts = f"tenant {tenant.name}", ", ".join(sorted(tenant.hosts))
        if observed.selected.get(tenant.name, frozenset()) is None:
            why = next((error for error in observed.errors if f"tenant {tenant.name}'s" in error), "")
            findings.append(Finding(label, Status.FAILED, why, RBAC_FIX))
            continue
        reached = [name for name in targets if is_member(tenant, name, observed.selected)]
        if reached:
            findings.append(Finding(label, Status.OK, f"{hosts} to {len(reached)}: {shown(reached)}"))
        else:
            detail = f"{hosts} reach no target namespace: its names, globs and selector match none of the targets"
            findings.append(Finding(label, Status.UNKNOWN, detail))
    return findings


def permissions(api: PreflightApi, settings: Settings, namespaces: Sequence[str]) -> list[Finding]:
    """Each permission the configuration needs: cluster-wide if so granted, else in each target namespace."""
    secret, discovers = settings.secret_name, settings.targets.discovers
    needed: list[tuple[str, str, str | None, bool]] = []  # verb, resource, name, asked per namespace
    if discovers:
        needed += [("list", "namespaces", None, False), ("list", "secrets", secret, False)]
    needed += [("get", "secrets", secret, True), ("create", "secrets", None, True)]
    needed += [("update", "secrets", secret, True)]
    for account in settings.service_accounts:
        if discovers:
            needed += [("list", "serviceaccounts", account, False)]
        needed += [("get", "serviceaccounts", account, True), ("patch", "serviceaccounts", account, True)]
    findings = [] if discovers else [no_wider_grant(api, secret)]
    with ThreadPoolExecutor(max_workers=settings.max_concurrency) as pool:
        for verb, resource, name, per_namespace in needed:
            label = f"may {verb} {resource}" + (f" {name!r}" if name else "")
            try:
                if api.may(verb, resource, name=name):
                    findings.append(Finding(label, Status.OK, "cluster-wide"))
                    continue
                if not per_namespace:
                    findings.append(Finding(label, Status.FAILED, "not granted cluster-wide", RBAC_FIX))
                    continue
                allowed = list(pool.map(lambda ns: api.may(verb, resource, namespace=ns, name=name), namespaces))  # noqa: B023 - used at once
            except KubernetesError as exc:
                findings.append(Finding(label, Status.FAILED, f"could not ask: {exc}"))
                continue
            missing = [ns for ns, ok in zip(namespaces, allowed, strict=True) if not ok]
            if missing:
                findings.append(Finding(label, Status.FAILED, f"not granted in {shown(missing)}", RBAC_FIX))
            else:
                findings.append(Finding(label, Status.OK, f"in all {len(namespaces)} target namespaces"))
    return findings


def no_wider_grant(api: PreflightApi, secret: str) -> Finding:
    """Names only need a Role per namespace: a grant on the secret in every namespace is left over
    from an earlier configuration (globs, a selector) and lets a stolen token read it everywhere."""
    label = "grants no wider than the configuration"
    try:
        wider = api.may("get", "secrets", name=secret)
        # Any other secret too: an administrator's identity (check run from a laptop), not the manifest's.
        anything = wider and api.may("get", "secrets", name=PROBE_SECRET)
    except KubernetesError as exc:
        return Finding(label, Status.UNKNOWN, f"could not ask: {exc}")
    if anything:
        return Finding(
            label,
            Status.UNKNOWN,
            "this identity may read every secret (an administrator?): run check as the function to judge it",
        )
    if wider:
        return Finding(
            label,
            Status.FAILED,
            f"this identity may read {secret!r} in every namespace, though only named namespaces are configured",
            'remove what this configuration no longer renders: `make apply CONTEXT="..."`',
        )
    return Finding(label, Status.OK, "only in the named namespaces")


def lease(api: PreflightApi, settings: Settings) -> list[Finding]:
    """The run's Lease, when runs take turns on one: it must exist (the manifest creates it; the
    identity may not) and be this identity's to update, or every run fails."""
    name = settings.run_lease
    if name is None:
        return []
    label = f"the run's Lease {LEASE_NAMESPACE}/{name}"
    try:
        found = api.read_lease(LEASE_NAMESPACE, name)
        updatable = api.may("update", "leases", namespace=LEASE_NAMESPACE, name=name, group=LEASE_GROUP)
    except KubernetesError as exc:
        return [Finding(label, Status.FAILED, f"could not read it: {exc}", RBAC_FIX)]
    if found is None:
        return [Finding(label, Status.FAILED, "does not exist, and this identity may not create it", RBAC_FIX)]
    if not updatable:
        return [Finding(label, Status.FAILED, "this identity may not update it", RBAC_FIX)]
    held = f"held by {found.holder}" if found.holder else "free"
    return [Finding(label, Status.OK, f"{held}; overlapping runs take turns on it")]
