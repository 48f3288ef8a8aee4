"""What a run sees of the cluster before it decides anything: the target namespaces and, with globs
or a selector, the secret's metadata and the configured service accounts, listed cluster-wide side by
side (one list's round trips hide the others'). A list that fails leaves its part unknown (None: read
one by one instead) and names the fix in `errors`, so the run fails and the outdated RBAC is re-applied.
"""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from lambda_fn.config import Settings
from lambda_fn.errors import KubernetesError, explain
from lambda_fn.models import SecretState, ServiceAccountState
from lambda_fn.ports import ClusterApi
from lambda_fn.targets import Target, narrow_targets, resolve_targets


@dataclass(frozen=True)
class Observation:
    targets: list[Target]
    # False when the namespaces could not be listed: `targets` are then only the configured names.
    targets_known: bool
    states: dict[str, SecretState] | None  # each target's secret, metadata only; None: not listed
    accounts: dict[tuple[str, str], ServiceAccountState] | None  # by (namespace, name); None: not listed
    errors: tuple[str, ...]
    # Each tenant with a selector → the namespaces it matched; None when it could not be listed.
    selected: dict[str, frozenset[str] | None] = field(default_factory=dict)


def observe(cluster: ClusterApi, settings: Settings) -> Observation:
    """The targets and what the lists tell of them. Raises ConfigError, before anything is written, if a
    manual event's narrowing names a namespace outside the configured targets."""
    errors: list[str] = []
    targets_known = True
    lists_accounts = settings.targets.discovers and bool(settings.service_accounts)
    lister = ThreadPoolExecutor(max_workers=2)
    try:
        discovers = settings.targets.discovers
        listing = lister.submit(_listed_states, cluster, settings.secret_name) if discovers else None
        account_names = settings.service_accounts
        account_listing = lister.submit(_listed_accounts, cluster, account_names) if lists_accounts else None
        try:
            targets = resolve_targets(cluster, settings.targets)
        except KubernetesError as exc:
            errors.append(f"could not list namespaces, so the globs and selector reached none: {explain(exc)}")
            targets = [Target(name, named=True) for name in sorted(set(settings.targets.names))]
            targets_known = False
        if settings.narrowing is not None:
            try:
                targets = narrow_targets(cluster, targets, settings.narrowing, complete=targets_known)
            except KubernetesError as exc:  # the event's selector: without its answer, serve none (never widen)
                errors.append(
                    f"could not list the namespaces the event's selector chose, so none was served: {explain(exc)}"
                )
                targets, targets_known = [], False
        states: dict[str, SecretState] | None = None
        if listing is not None:
            try:
                listed = listing.result()
            except KubernetesError as exc:
                errors.append(
                    f"could not list the {settings.secret_name!r} secrets (read one by one instead): {explain(exc)}"
                )
            else:
                states = {target.name: listed[target.name] for target in targets if target.name in listed}
        accounts: dict[tuple[str, str], ServiceAccountState] | None = None
        if account_listing is not None:
            try:
                accounts = account_listing.result()
            except KubernetesError as exc:
                names = ", ".join(settings.service_accounts)
                errors.append(f"could not list the service accounts {names} (read one by one instead): {explain(exc)}")
    except BaseException:
        # Ctrl-C, or a narrowing refused: return now, without waiting for the lists still running.
        lister.shutdown(wait=False, cancel_futures=True)
        raise
    lister.shutdown()
    selected = _selected_by_tenants(cluster, settings, errors) if targets else {}
    return Observation(targets, targets_known, states, accounts, tuple(errors), selected)


def _selected_by_tenants(
    cluster: ClusterApi, settings: Settings, errors: list[str]
) -> dict[str, frozenset[str] | None]:
    """Each tenant's selector's namespaces: one list per selector (names and globs need none)."""
    selected: dict[str, frozenset[str] | None] = {}
    for tenant in settings.tenants:
        if tenant.namespace_selector is None:
            continue
        try:
            listed = cluster.list_namespaces(label_selector=tenant.namespace_selector)
            selected[tenant.name] = frozenset(namespace.name for namespace in listed)
        except KubernetesError as exc:
            errors.append(
                f"could not list tenant {tenant.name}'s namespaces by its selector, so its registries were written "
                f"nowhere new (secrets holding them kept as they are): {explain(exc)}"
            )
            selected[tenant.name] = None
    return selected


def _listed_states(cluster: ClusterApi, secret_name: str) -> dict[str, SecretState]:
    """Every namespace's `secret_name` secret, from one paged list by name (metadata only; each page
    is dropped once read)."""
    return {state.namespace: state for state in cluster.list_secret_metadata(secret_name)}


def _listed_accounts(cluster: ClusterApi, names: Sequence[str]) -> dict[tuple[str, str], ServiceAccountState]:
    """Every service account of these names, cluster-wide, by (namespace, name): one paged list per name."""
    return {
        (account.namespace, account.name): account for name in names for account in cluster.list_service_accounts(name)
    }
