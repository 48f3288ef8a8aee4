"""Which namespaces a run serves: explicit names, globs and a label selector, minus exclusions."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from fnmatch import fnmatchcase

from lambda_fn.config import is_glob
from lambda_fn.models import NamespaceInfo
from lambda_fn.ports import ClusterApi

# System namespaces are left alone unless named explicitly: kube-system, kube-public, kube-node-lease.
DEFAULT_EXCLUSIONS = ("kube-*",)


@dataclass(frozen=True)
class TargetSpec:
    patterns: tuple[str, ...]
    selector: str | None
    exclusions: tuple[str, ...]


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
    explicit = {name for name in spec.patterns if not is_glob(name)}
    globs = [pattern for pattern in spec.patterns if is_glob(pattern)]
    exclusions = (*DEFAULT_EXCLUSIONS, *spec.exclusions)
    found: dict[str, Target] = {name: Target(name, named=True) for name in explicit}
    listings: list[Sequence[NamespaceInfo]] = []
    if globs:
        listings.append([ns for ns in cluster.list_namespaces(label_selector=None) if _matches(ns.name, globs)])
    if spec.selector:
        listings.append(cluster.list_namespaces(label_selector=spec.selector))
    for listing in listings:
        for namespace in listing:
            if namespace.name in explicit or not _matches(namespace.name, exclusions):
                found[namespace.name] = Target(
                    namespace.name, terminating=namespace.terminating, named=namespace.name in explicit
                )
    return [found[name] for name in sorted(found)]


def _matches(name: str, patterns: Sequence[str]) -> bool:
    return any(fnmatchcase(name, pattern) for pattern in patterns)
