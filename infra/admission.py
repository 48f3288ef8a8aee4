"""The ValidatingAdmissionPolicies that confine the function's Kubernetes identity to its own pull secret
in its own namespaces.

RBAC cannot narrow `create` by name, nor any verb by namespace once namespaces are discovered (globs, a
selector), so on its own a ClusterRole lets a stolen token create any secret anywhere (a service-account
token in kube-system, a bootstrap token), overwrite another team's same-named secret, or rewrite the
named service accounts in every namespace. For requests by the function's group or service account:

- secrets: created or updated only in a target namespace (the configured names, globs, selector and
  exclusions, evaluated on the namespace's labels at admission), with the configured name, type
  dockerconfigjson, the managed-by label, never immutable (which would block every later renewal), and
  no owner or finalizer of its making (an owner's deletion would take the secret with it); on update
  only if it carried the label already or is the kubectl recipe's pull secret for one of the registries
  served here. Deletes are denied.
- service accounts: updated only in a target namespace, and only by adding the secret to
  `imagePullSecrets`; token automount, `secrets`, labels, annotations, owners and finalizers unchanged.

Denials are 422 answers naming the policy. What no policy can confine: reads. With globs or a selector,
the identity may read every secret of the configured name, cluster-wide (docs/security.md).

admissionregistration.k8s.io/v1: Kubernetes 1.30 and later. Verified on kube-apiserver v1.34, where
admission CEL has no base64 or JSON decoding: the recipe's secret is recognised by a regex over its
base64 text (infra/base64_pattern.py).
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from typing import Any

from infra.base64_pattern import base64_fragments, recipe_secret_pattern
from infra.config import SERVICE_ACCOUNTS_SUFFIX, DeploymentConfig
from lambda_fn.config import INT64_MAX, Requirement, Tenant, parse_selector
from lambda_fn.models import TargetSpec
from lambda_fn.secret_contract import (
    DATA_RULE,
    DELETE_RULE,
    DOCKERCONFIGJSON_KEY,
    DOCKERCONFIGJSON_TYPE,
    IMMUTABLE_RULE,
    LABEL_RULE,
    MANAGED_BY_LABEL,
    MANAGED_BY_VALUE,
    NAME_RULE,
    SCOPE_RULE,
    TENANT_RULE,
    TYPE_RULE,
    UPDATE_RULE,
    recipe_keys,
)
from lambda_fn.targets import DEFAULT_EXCLUSIONS

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


def glob_regex(glob: str) -> str:
    """A namespace glob (fnmatch's `*`, `?`, `[...]`, `[!...]`) as an anchored RE2 regex. By hand:
    fnmatch.translate writes `\\Z` and atomic groups, which RE2 (CEL's `matches`) does not know."""
    parts, index = ["^"], 0
    while index < len(glob):
        char = glob[index]
        end = glob.find("]", index + 2) if char == "[" else -1
        if char == "*":
            parts.append(".*")
        elif char == "?":
            parts.append(".")
        elif end != -1:
            inside = glob[index + 1 : end]
            parts.append("[" + ("^" + inside[1:] if inside.startswith("!") else inside) + "]")
            index = end
        else:
            parts.append(re.escape(char))
        index += 1
    return "".join(parts) + "$"


def _matches_any(patterns: Sequence[str]) -> str:
    regex = "|".join(f"(?:{glob_regex(pattern)})" for pattern in patterns)
    return f"request.namespace.matches({_cel(regex)})" if patterns else "false"


def _requirement(requirement: Requirement) -> str:
    """One selector requirement over the namespace's labels, as kube-apiserver matches it."""
    has = f"{_cel(requirement.key)} in variables.namespaceLabels"
    value = f"variables.namespaceLabels[{_cel(requirement.key)}]"
    operator, values = requirement.operator, requirement.values
    if operator in ("", "!"):
        return has if operator == "" else f"!({has})"
    if operator in ("=", "!="):
        return (
            f"({has} && {value} == {_cel(values[0])})"
            if operator == "="
            else f"(!({has}) || {value} != {_cel(values[0])})"
        )
    if operator in ("in", "notin"):
        listed = json.dumps(list(values))
        return f"({has} && {value} in {listed})" if operator == "in" else f"(!({has}) || !({value} in {listed}))"
    # `<` and `>` compare int64s as kube-apiserver parses label values (strconv.ParseInt): leading zeros
    # allowed, a value out of range or not an integer never matches (label values cannot start with `-`).
    # The guard keeps int() from failing, as a failure would deny the request instead.
    fits = (
        f"({value}.matches('^0*[0-9]{{1,18}}$') || ({value}.matches('^0*[0-9]{{19}}$') && "
        f"{value}.substring(size({value}) - 19) <= '{INT64_MAX}'))"
    )
    return f"({has} && {fits} && int({value}) {operator} {int(values[0])})"


def _selected(selector: str) -> str:
    """CEL true when the namespace's labels match `selector`, as kube-apiserver matches it."""
    requirements = parse_selector(selector)
    if requirements is None:
        raise ValueError(f"not a label selector: {selector!r}")
    return "(" + " && ".join(_requirement(requirement) for requirement in requirements) + ")"


def in_scope(targets: TargetSpec) -> str:
    """CEL true when the request's namespace is a target: named, or found by a glob or the selector and
    not excluded (kube-* always), as lambda_fn/targets.py resolves them."""
    named = f"request.namespace in {json.dumps(sorted(set(targets.names)))}"
    found = [_matches_any(targets.globs)] if targets.globs else []
    if targets.selector:
        found.append(_selected(targets.selector))
    if not found:
        return named
    excluded = _matches_any([*DEFAULT_EXCLUSIONS, *targets.exclusions])
    return f"{named} || (({' || '.join(found)}) && !{excluded})"


def scope_variables(config: DeploymentConfig) -> list[dict[str, str]]:
    return [
        # Optional chaining keeps each expression total: an object without labels or data is no error.
        {"name": "namespaceLabels", "expression": "namespaceObject.metadata.?labels.orValue({})"},
        {"name": "inScope", "expression": in_scope(config.settings.targets)},
    ]


def variables(config: DeploymentConfig, adoptable_hosts: Sequence[str]) -> list[dict[str, str]]:
    label = f"metadata.?labels[?{_cel(MANAGED_BY_LABEL)}].orValue('') == {_cel(MANAGED_BY_VALUE)}"
    found = [
        *scope_variables(config),
        {"name": "newManaged", "expression": f"object.{label}"},
        {"name": "oldManaged", "expression": f"oldObject != null && oldObject.{label}"},
    ]
    adoptable = "false"
    if config.settings.adopt_existing and adoptable_hosts:
        # Data values reach CEL as base64 strings (the schema says bytes): string(dyn(...)) takes both.
        data = f"string(dyn(oldObject.?data[?{_cel(DOCKERCONFIGJSON_KEY)}].orValue(b'')))"
        keys = [key for host in adoptable_hosts for key in recipe_keys(host)]
        adoptable = (
            f"oldObject != null && oldObject.?type.orValue('') == {_cel(DOCKERCONFIGJSON_TYPE)} && "
            f"{data}.matches({_cel(recipe_secret_pattern(keys))})"
        )
    found.append({"name": "oldAdoptable", "expression": adoptable})
    return found


def validations(config: DeploymentConfig) -> list[dict[str, str]]:
    secret = config.settings.secret_name
    writing = "request.operation == 'DELETE' || "
    return [
        {"expression": "request.operation != 'DELETE'", "message": DELETE_RULE},
        {
            "expression": f"{writing}object.metadata.name == {_cel(secret)}",
            "message": NAME_RULE.format(secret),
        },
        {
            "expression": f"{writing}object.?type.orValue('') == {_cel(DOCKERCONFIGJSON_TYPE)}",
            "message": TYPE_RULE,
        },
        {
            "expression": f"{writing}variables.newManaged",
            "message": LABEL_RULE,
        },
        {
            "expression": "request.operation != 'UPDATE' || variables.oldManaged || variables.oldAdoptable",
            "message": UPDATE_RULE,
        },
        {
            # The shape the refresher writes and nothing more: one key, of a size a login per served
            # registry fills (an ECR login is ~5.7 KB of JSON, ~7.6 KB in base64), so a stolen token cannot
            # plant another key or a large payload in the secret every target namespace pulls with.
            "expression": f"{writing}(has(object.data) && object.data.size() == 1 && "
            f"{_cel(DOCKERCONFIGJSON_KEY)} in object.data && "
            f"size(dyn(object.data[{_cel(DOCKERCONFIGJSON_KEY)}])) <= {data_cap(config)})",
            "message": f"{DATA_RULE.format(data_cap(config))} ({DATA_BYTES_PER_REGISTRY} per served registry)",
        },
        {
            "expression": f"{writing}!object.?immutable.orValue(false)",
            "message": IMMUTABLE_RULE,
        },
        SCOPE_VALIDATION,
        *tenant_validations(config),
        *[
            {
                # An owner the garbage collector deletes takes the secret with it; a finalizer blocks its
                # deletion. The refresher sets neither and keeps what others set.
                "expression": f"request.operation == 'DELETE' || (request.operation == 'CREATE' ? "
                f"!has(object.metadata.{field}) : {unchanged('metadata.' + field)})",
                "message": f"this identity may not set or change metadata.{field}",
            }
            for field in OWNERSHIP
        ],
    ]


# Room for one registry's login in `.dockerconfigjson`, base64 as stored: ~7.6 KB measured, with margin.
DATA_BYTES_PER_REGISTRY = 10240


def data_cap(config: DeploymentConfig) -> int:
    served = len(config.registries) + config.settings.include_own_registry
    return DATA_BYTES_PER_REGISTRY * served


def tenant_validations(config: DeploymentConfig) -> list[dict[str, str]]:
    """A tenant's registry host written only where one of the tenants that list it matches the namespace
    (names, globs, selector). The stored payload is base64: the host is found by its three base64
    fragments (infra/base64_pattern.py), one `contains` each, as a regex over a whole written secret
    runs out of CEL's cost budget on kube-apiserver (docs/security.md)."""
    tenants = config.settings.tenants
    data = f"string(dyn(object.?data[?{_cel(DOCKERCONFIGJSON_KEY)}].orValue(b'')))"
    found = []
    for host in sorted(frozenset().union(*(tenant.hosts for tenant in tenants))):
        allowed = " || ".join(f"({tenant_scope(tenant)})" for tenant in tenants if host in tenant.hosts)
        held = " || ".join(f"{data}.contains({_cel(fragment)})" for fragment in base64_fragments(host.encode()))
        found.append(
            {
                "expression": f"request.operation == 'DELETE' || {allowed} || !({held})",
                "message": TENANT_RULE.format(host),
            }
        )
    return found


def tenant_scope(tenant: Tenant) -> str:
    """CEL true when the request's namespace is one of the tenant's, as lambda_fn/tenancy.py matches it."""
    matched = [_matches_any(tenant.namespaces)] if tenant.namespaces else []
    if tenant.namespace_selector:
        matched.append(_selected(tenant.namespace_selector))
    return " || ".join(matched)


def unchanged(path: str) -> str:
    """CEL true when an update leaves `path` as it was: has() on both sides, as an absent field and a
    present one differ while two absent ones do not."""
    new, old = f"object.{path}", f"oldObject.{path}"
    return f"has({new}) == has({old}) && (!has({new}) || {new} == {old})"


SCOPE_VALIDATION = {
    "expression": "variables.inScope",
    "message": f"{SCOPE_RULE} (the configured names, globs and selector, less the exclusions and kube-*)",
}
OWNERSHIP = ["ownerReferences", "finalizers"]
UNCHANGED = ["automountServiceAccountToken", "secrets"]
METADATA_UNCHANGED = ["labels", "annotations", *OWNERSHIP]


def account_validations(config: DeploymentConfig) -> list[dict[str, str]]:
    """A service account may only gain the secret in `imagePullSecrets`; nothing else of it changes."""
    secret = config.settings.secret_name
    old, new = "oldObject.?imagePullSecrets.orValue([])", "object.?imagePullSecrets.orValue([])"
    found = [
        {"expression": "request.operation == 'UPDATE'", "message": "this identity never creates or deletes them"},
        SCOPE_VALIDATION,
        {
            "expression": f"{old}.all(ref, ref in {new}) && "
            f"{new}.all(ref, ref in {old} || ref.?name.orValue('') == {_cel(secret)})",
            "message": f"this identity may only add {secret} to imagePullSecrets",
        },
    ]
    paths = [*UNCHANGED, *(f"metadata.{field}" for field in METADATA_UNCHANGED)]
    found += [{"expression": unchanged(path), "message": f"this identity may not change {path}"} for path in paths]
    return found


def _policy(
    who: dict[str, str],
    metadata: dict[str, Any],
    resource: str,
    variables: list[dict[str, str]],
    validations: list[dict[str, str]],
) -> list[dict[str, Any]]:
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
                            "resources": [resource],
                        }
                    ]
                },
                "matchConditions": [{"name": "the-refresher", "expression": identity(who)}],
                "variables": variables,
                "validations": validations,
            },
        },
        {
            "apiVersion": ADMISSION,
            "kind": "ValidatingAdmissionPolicyBinding",
            "metadata": metadata,
            "spec": {"policyName": metadata["name"], "validationActions": ["Deny"]},
        },
    ]


def admission_policy(
    config: DeploymentConfig, who: dict[str, str], *, metadata: dict[str, Any], adoptable_hosts: Sequence[str]
) -> list[dict[str, Any]]:
    """The policies and their bindings: the secrets' named like the deployment's other cluster-wide
    objects, the service accounts' (when any are configured) with `-serviceaccounts` after it."""
    found = _policy(who, metadata, "secrets", variables(config, adoptable_hosts), validations(config))
    if config.settings.service_accounts:
        accounts = {**metadata, "name": metadata["name"] + SERVICE_ACCOUNTS_SUFFIX}
        found += _policy(who, accounts, "serviceaccounts", scope_variables(config), account_validations(config))
    return found
