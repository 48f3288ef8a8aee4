"""The RBAC manifest, rendered from the same configuration as the stack: exactly the verbs needed.

`python -m infra.rbac` prints it for `kubectl apply -f -` (make rbac).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import yaml

from infra.config import DeploymentConfig
from lambda_fn.errors import ConfigError
from lambda_fn.models import is_glob

NAME = "ecr-token-refresher"
LABELS = {"app.kubernetes.io/name": NAME, "app.kubernetes.io/managed-by": "cdk"}


def rules(config: DeploymentConfig) -> list[dict[str, Any]]:
    """PolicyRules for what the refresher calls (lambda_fn/k8s/api.py), and nothing else.

    Secrets: get and update (PUT) narrowed to the secret's name, and with globs or a selector list,
    which the name narrows too: kube-apiserver then allows only `?fieldSelector=metadata.name=<it>`.
    Create cannot be narrowed by name (the admission policy does that). Namespaces: list, only for
    globs and selectors. Service accounts: get and patch, by name.
    """
    settings = config.settings
    found: list[dict[str, Any]] = [
        {
            "apiGroups": [""],
            "resources": ["secrets"],
            "verbs": ["get", "list", "update"] if config.lists_namespaces else ["get", "update"],
            "resourceNames": [settings.secret_name],
        },
        {"apiGroups": [""], "resources": ["secrets"], "verbs": ["create"]},
    ]
    if settings.service_accounts:
        found.append(
            {
                "apiGroups": [""],
                "resources": ["serviceaccounts"],
                "verbs": ["get", "patch"],
                "resourceNames": list(settings.service_accounts),
            }
        )
    return found


def render(config: DeploymentConfig) -> list[dict[str, Any]]:
    """ClusterRole + binding when targets are discovered (globs, selector); else a Role per namespace."""
    subject = [{"kind": "Group", "apiGroup": "rbac.authorization.k8s.io", "name": config.kubernetes_group}]
    metadata = {"name": NAME, "labels": LABELS}
    if config.lists_namespaces:
        cluster_rules = [*rules(config), {"apiGroups": [""], "resources": ["namespaces"], "verbs": ["list"]}]
        return [
            {
                "apiVersion": "rbac.authorization.k8s.io/v1",
                "kind": "ClusterRole",
                "metadata": metadata,
                "rules": cluster_rules,
            },
            {
                "apiVersion": "rbac.authorization.k8s.io/v1",
                "kind": "ClusterRoleBinding",
                "metadata": metadata,
                "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": NAME},
                "subjects": subject,
            },
        ]
    manifests: list[dict[str, Any]] = []
    for namespace in sorted(n for n in config.settings.namespaces if not is_glob(n)):
        namespaced = {**metadata, "namespace": namespace}
        manifests += [
            {
                "apiVersion": "rbac.authorization.k8s.io/v1",
                "kind": "Role",
                "metadata": namespaced,
                "rules": rules(config),
            },
            {
                "apiVersion": "rbac.authorization.k8s.io/v1",
                "kind": "RoleBinding",
                "metadata": namespaced,
                "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": NAME},
                "subjects": subject,
            },
        ]
    return manifests


def to_yaml(config: DeploymentConfig) -> str:
    header = f"# RBAC for ecr-token-refresher, group {config.kubernetes_group!r}: kubectl apply -f <this file>\n"
    return header + yaml.safe_dump_all(render(config), sort_keys=False)


def context_from_cdk_json(path: Path, overrides: list[str]) -> dict[str, Any]:
    """cdk.json's context with `key=value` overrides, as `cdk synth -c key=value` would see it."""
    context: dict[str, Any] = json.loads(path.read_text()).get("context", {})
    for override in overrides:
        key, _, value = override.partition("=")
        context[key] = value
    return context


def main(argv: list[str]) -> int:
    context = context_from_cdk_json(Path("cdk.json"), argv)
    try:
        config = DeploymentConfig.from_context(context.get)
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    sys.stdout.write(to_yaml(config))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
