"""Who may do what: bearer-token users with RBAC-like rules, and the apiserver's 403 messages."""

from __future__ import annotations

from dataclasses import dataclass, field

from localkube.status import StatusError


@dataclass(frozen=True)
class Rule:
    """Like one RBAC PolicyRule (core API group only); None means any namespace / any name."""

    verbs: frozenset[str]
    resources: frozenset[str]
    namespaces: frozenset[str] | None = None
    resource_names: frozenset[str] | None = None

    @classmethod
    def of(
        cls,
        verbs: str,
        resources: str,
        *,
        namespaces: str | None = None,
        resource_names: str | None = None,
    ) -> Rule:
        """Rule.of("get,update", "secrets", namespaces="a,b", resource_names="regcred")."""

        def split(text: str) -> frozenset[str]:
            return frozenset(part.strip() for part in text.split(",") if part.strip())

        return cls(
            split(verbs),
            split(resources),
            None if namespaces is None else split(namespaces),
            None if resource_names is None else split(resource_names),
        )

    def allows(self, verb: str, resource: str, namespace: str | None, name: str | None) -> bool:
        return (
            ("*" in self.verbs or verb in self.verbs)
            and ("*" in self.resources or resource in self.resources)
            and (self.namespaces is None or namespace in self.namespaces)
            # As in RBAC, resourceNames cannot restrict create or list (no name is known yet).
            and (self.resource_names is None or (name is not None and name in self.resource_names))
        )


@dataclass(frozen=True)
class User:
    name: str
    token: str | None = None
    groups: tuple[str, ...] = ()
    rules: tuple[Rule, ...] = field(default_factory=tuple)

    def allows(self, verb: str, resource: str, namespace: str | None, name: str | None) -> bool:
        return any(rule.allows(verb, resource, namespace, name) for rule in self.rules)

    def authorize(self, verb: str, resource: str, namespace: str | None, name: str | None) -> None:
        """StatusError 403 with kube-apiserver's message when no rule allows the call."""
        if self.allows(verb, resource, namespace, name):
            return
        subject = f'{resource} "{name}"' if name else resource
        scope = f'in the namespace "{namespace}"' if namespace else "at the cluster scope"
        raise StatusError(
            403,
            "Forbidden",
            f'{subject} is forbidden: User "{self.name}" cannot {verb} resource "{resource}" in API group "" {scope}',
            details={"name": name, "kind": resource} if name else {"kind": resource},
        )


ADMIN = User(
    "admin",
    token="admin-token",  # noqa: S106 - the local test cluster's admin
    groups=("system:masters",),
    rules=(Rule.of("*", "*"),),
)
