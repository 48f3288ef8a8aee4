"""The ValidatingAdmissionPolicy that confines the function's Kubernetes identity to its own pull secret.

RBAC cannot narrow `create` by name, so on its own a ClusterRole lets a stolen token create any secret
anywhere (a service-account token in kube-system, a bootstrap token) or overwrite another team's
same-named secret. For requests by the function's group or service account, this policy allows a
secret to be created or updated only if it has the configured name, type dockerconfigjson and the
managed-by label, outside kube-* namespaces (unless one is configured by name), and, on update, only
if it carried the label already or is the kubectl recipe's pull secret for one of the registries
served here. Deletes are denied. Denials are 422 answers naming the policy.

admissionregistration.k8s.io/v1: Kubernetes 1.30 and later. Verified on kube-apiserver v1.34, where
admission CEL has no base64 or JSON decoding: the recipe's secret is recognised by a regex over its
base64 text (infra/base64_pattern.py).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from infra.base64_pattern import recipe_secret_pattern
from infra.config import DeploymentConfig
from lambda_fn.models import DOCKERCONFIGJSON_KEY, DOCKERCONFIGJSON_TYPE, MANAGED_BY_LABEL, MANAGED_BY_VALUE

ADMISSION = "admissionregistration.k8s.io/v1"


def _cel(value: str) -> str:
    """A CEL string literal (JSON's escaping is valid CEL for these strings)."""
    return json.dumps(value)


def identity(who: dict[str, str]) -> str:
    """CEL true for requests by the function's identity only: other users are never evaluated."""
    if who["kind"] == "Group":
        return f"has(request.userInfo.groups) && {_cel(who['name'])} in request.userInfo.groups"
    username = f"system:serviceaccount:{who['namespace']}:{who['name']}"
    return f"request.userInfo.username == {_cel(username)}"


def variables(config: DeploymentConfig, adoptable_hosts: Sequence[str]) -> list[dict[str, str]]:
    # Optional chaining keeps each expression total: a secret without labels or data is no error.
    label = f"metadata.?labels[?{_cel(MANAGED_BY_LABEL)}].orValue('') == {_cel(MANAGED_BY_VALUE)}"
    system = sorted(name for name in config.settings.targets.names if name.startswith("kube-"))
    found = [
        {"name": "newManaged", "expression": f"object.{label}"},
        {"name": "oldManaged", "expression": f"oldObject != null && oldObject.{label}"},
        {"name": "systemNamespaces", "expression": json.dumps(system)},
    ]
    adoptable = "false"
    if config.settings.adopt_existing and adoptable_hosts:
        # Data values reach CEL as base64 strings (the schema says bytes): string(dyn(...)) takes both.
        data = f"string(dyn(oldObject.?data[?{_cel(DOCKERCONFIGJSON_KEY)}].orValue(b'')))"
        adoptable = (
            f"oldObject != null && oldObject.?type.orValue('') == {_cel(DOCKERCONFIGJSON_TYPE)} && "
            f"{data}.matches({_cel(recipe_secret_pattern(adoptable_hosts))})"
        )
    found.append({"name": "oldAdoptable", "expression": adoptable})
    return found


def validations(config: DeploymentConfig) -> list[dict[str, str]]:
    secret = config.settings.secret_name
    writing = "request.operation == 'DELETE' || "
    return [
        {"expression": "request.operation != 'DELETE'", "message": "this identity never deletes secrets"},
        {
            "expression": f"{writing}object.metadata.name == {_cel(secret)}",
            "message": f"this identity may only write the secret named {secret}",
        },
        {
            "expression": f"{writing}object.?type.orValue('') == {_cel(DOCKERCONFIGJSON_TYPE)}",
            "message": f"this identity may only write secrets of type {DOCKERCONFIGJSON_TYPE}",
        },
        {
            "expression": f"{writing}variables.newManaged",
            "message": f"the secret must carry the label {MANAGED_BY_LABEL}={MANAGED_BY_VALUE}",
        },
        {
            "expression": "request.operation != 'UPDATE' || variables.oldManaged || variables.oldAdoptable",
            "message": f"this identity may only update a secret labelled {MANAGED_BY_LABEL}={MANAGED_BY_VALUE}, "
            "or adopt the kubectl recipe's pull secret for one registry served here",
        },
        {
            "expression": "!request.namespace.startsWith('kube-') || request.namespace in variables.systemNamespaces",
            "message": "this identity may not write secrets in kube-* namespaces that are not configured by name",
        },
    ]


def admission_policy(
    config: DeploymentConfig, who: dict[str, str], *, metadata: dict[str, Any], adoptable_hosts: Sequence[str]
) -> list[dict[str, Any]]:
    """The policy and its binding (both named like the deployment's other cluster-wide objects)."""
    return [
        {
            "apiVersion": ADMISSION,
            "kind": "ValidatingAdmissionPolicy",
            "metadata": metadata,
            "spec": {
                "failurePolicy": "Fail",
                "matchConstraints": {
                    "resourceRules": [
                        {
                            "apiGroups": [""],
                            "apiVersions": ["v1"],
                            "operations": ["CREATE", "UPDATE", "DELETE"],
                            "resources": ["secrets"],
                        }
                    ]
                },
                "matchConditions": [{"name": "the-refresher", "expression": identity(who)}],
                "variables": variables(config, adoptable_hosts),
                "validations": validations(config),
            },
        },
        {
            "apiVersion": ADMISSION,
            "kind": "ValidatingAdmissionPolicyBinding",
            "metadata": metadata,
            "spec": {"policyName": metadata["name"], "validationActions": ["Deny"]},
        },
    ]
