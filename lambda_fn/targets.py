"""Which namespaces a run serves: explicit names, globs and a label selector, minus exclusions.

A manual Lambda event may narrow that set (a subset of it), never widen it: `narrow_targets`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from fnmatch import fnmatchcase

from lambda_fn.errors import ConfigError, Problem
from lambda_fn.models import TargetSpec
from lambda_fn.ports import ClusterApi

# System namespaces are left alone unless named explicitly: kube-system, kube-public, kube-node-lease.
DEFAULT_EXCLUSIONS = ("kube-*",)


@dataclass(frozen=True)
class Target:
    name: str
    terminating: bool = False
    named: bool = False  # named explicitly (not found by a glob or the selector)


def resolve_targets(cluster: ClusterApi, spec: TargetSpec) -> list[Target]:
    """The target namespaces, sorted; lists namespaces only when a glob or a selector needs it.

    Explicit names are always served (even `kube-system`, even if excluded): naming one is a
    deliberate choice, and a missing one is reported as failed rather than dropped.
    """
    explicit = set(spec.names)
    exclusions = (*DEFAULT_EXCLUSIONS, *spec.exclusions)
    found: dict[str, Target] = {name: Target(name, named=True) for name in explicit}
    if spec.globs:
        for namespace in cluster.list_namespaces(label_selector=None):
            if _matches(namespace.name, spec.globs) and (
                namespace.name in explicit or not _matches(namespace.name, exclusions)
            ):
                found[namespace.name] = Target(namespace.name, namespace.terminating, namespace.name in explicit)
    if spec.selector:
        for namespace in cluster.list_namespaces(label_selector=spec.selector):
            if namespace.name in explicit or not _matches(namespace.name, exclusions):
                found[namespace.name] = Target(namespace.name, namespace.terminating, namespace.name in explicit)
    return [found[name] for name in sorted(found)]


def narrow_targets(
    cluster: ClusterApi, targets: Sequence[Target], narrowing: TargetSpec, *, complete: bool = True
) -> list[Target]:
    """The part of `targets` that `narrowing` selects; ConfigError if it names a namespace outside them.

    Names must be targets already; globs and the selector only filter; exclusions only remove.
    `complete`: whether `targets` are all of them (False when the namespaces could not be listed: a name
    outside them may be a glob's match, so it is left out, not refused).
    """
    by_name = {target.name: target for target in targets}
    outside = sorted(name for name in narrowing.names if name not in by_name)
    if outside and complete:
        raise ConfigError(
            [
                Problem(
                    "namespaces",
                    f"{', '.join(outside)} outside the configured namespaces: a manual event may only choose among "
                    "them (NAMESPACES, NAMESPACE_SELECTOR); widen the configuration to serve more",
                )
            ],
            source="event",
        )
    chosen = set(narrowing.names) | {name for name in by_name if _matches(name, narrowing.globs)}
    if narrowing.selector:
        chosen |= {ns.name for ns in cluster.list_namespaces(label_selector=narrowing.selector)} & set(by_name)
    if not narrowing.patterns and not narrowing.selector:
        chosen = set(by_name)
    return [by_name[name] for name in sorted(chosen & set(by_name)) if not _matches(name, narrowing.exclusions)]


def _matches(name: str, patterns: Sequence[str]) -> bool:
    return any(fnmatchcase(name, pattern) for pattern in patterns)
