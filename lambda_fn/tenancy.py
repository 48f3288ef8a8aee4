"""Which registries each target namespace receives: the shared ones (`registries`, the function's own)
and those of every tenant whose names, globs or selector match it — no other tenant's, so a team's
secret never holds another team's login.

A tenant whose selector could not be listed this run is unknown for every namespace its names and
globs do not match: its hosts count there as registries without a token (a secret that holds one is
kept as it is, none is written with it, the namespace's expiry reads unknown), never as not configured.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from fnmatch import fnmatchcase
from functools import cache

from lambda_fn.config import Tenant
from lambda_fn.decisions import TENANT_UNLISTED, Registries

NO_REGISTRY = "no registry is configured for this namespace: no tenant matches it and none is shared"
# Tenants by name → the namespaces their selector matched; None when the selector could not be listed.
Selected = Mapping[str, frozenset[str] | None]


def registries_by_namespace(
    registries: Registries, tenants: Sequence[Tenant], selected: Selected
) -> Callable[[str], Registries]:
    """A function from a target namespace to the part of `registries` it receives."""
    if not tenants:
        return lambda _namespace: registries
    tenant_only = frozenset().union(*(tenant.hosts for tenant in tenants))
    by_name = {tenant.name: tenant for tenant in tenants}

    @cache  # one Registries per combination of tenants, shared by the namespaces that have it
    def receiving(matched: frozenset[str], unknown: frozenset[str]) -> Registries:
        hosts = frozenset().union(*(by_name[name].hosts for name in matched))
        unsure = frozenset().union(*(by_name[name].hosts for name in unknown)) - hosts
        served = {credential.host for credential in registries.credentials} | set(registries.unavailable)
        keep = (served - tenant_only) | hosts
        unavailable = {host: why for host, why in registries.unavailable.items() if host in keep}
        unavailable |= {
            host: TENANT_UNLISTED.format(name)
            for name in sorted(unknown)
            for host in sorted(by_name[name].hosts & unsure)
        }
        return Registries(
            tuple(credential for credential in registries.credentials if credential.host in keep), unavailable
        )

    @cache  # a run asks for a namespace's registries at each step; its tenants are matched once
    def of(namespace: str) -> Registries:
        membership = {tenant.name: is_member(tenant, namespace, selected) for tenant in tenants}
        matched = frozenset(name for name, member in membership.items() if member)
        unknown = frozenset(name for name, member in membership.items() if member is None)
        return receiving(matched, unknown)

    return of


def is_member(tenant: Tenant, namespace: str, selected: Selected) -> bool | None:
    """Whether the tenant's names, globs or selector match `namespace`; None when only its selector could
    tell and it could not be listed."""
    if any(fnmatchcase(namespace, pattern) for pattern in tenant.namespaces):
        return True
    members = selected.get(tenant.name, frozenset())
    return None if members is None else namespace in members
