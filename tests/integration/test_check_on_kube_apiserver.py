"""`check` on the real kube-apiserver: a complete setup (the rendered manifest applied) passes, a
missing RBAC rule, a stale admission policy and a missing access entry (401) each fail with their fix,
another policy is not mistaken for ours, and in every case not a single object changes."""

from __future__ import annotations

import base64
import io
import json
import uuid
from typing import Any

import pytest
from kubernetes import client as k8s

from infra.config import DeploymentConfig
from infra.rbac import render
from lambda_fn.cli import main
from lambda_fn.secret_contract import MANAGED_BY_LABEL, MANAGED_BY_VALUE
from sandbox.eks_cluster import CLUSTER_NAME
from sandbox.moto_aws import OWN_REGISTRY, AwsCredentials
from sandbox.real_apiserver import RealKube
from tests.integration.real_cluster import (
    DOCKERCONFIG,
    Cluster,
    configure,
    role_client,
    secret,
    wait_for_policy,
    wait_for_policy_answer,
    wait_for_policy_gone,
)

pytestmark = pytest.mark.apiserver
MANAGED = {MANAGED_BY_LABEL: MANAGED_BY_VALUE}


def check(*namespaces: str) -> tuple[int, dict[str, Any]]:
    stdout = io.StringIO()
    argv = ["check", "--cluster", CLUSTER_NAME, "--region", "us-east-1", "--output", "json"]
    argv += [argument for namespace in namespaces for argument in ("--namespace", namespace)]
    code = main(argv, stdout=stdout, stderr=io.StringIO())
    return code, json.loads(stdout.getvalue())


def statuses(report: dict[str, Any]) -> dict[str, tuple[str, str]]:
    return {f["check"]: (f["status"], f["detail"]) for f in report["checks"]}


def failed(report: dict[str, Any]) -> dict[str, str]:
    return {f["check"]: f"{f['detail']} | {f.get('fix', '')}" for f in report["checks"] if f["status"] == "failed"}


def secrets_version(admin: Cluster, namespaces: list[str]) -> list[tuple[str, str]]:
    """Every secret in the namespaces with its resourceVersion: any write would change this."""
    return sorted(
        (f"{s.metadata.namespace}/{s.metadata.name}", str(s.metadata.resource_version))
        for namespace in namespaces
        for s in admin.core.list_namespaced_secret(namespace).items
    )


@pytest.fixture
def teams(real: tuple[RealKube, Cluster], monkeypatch: pytest.MonkeyPatch) -> tuple[RealKube, Cluster, str, list[str]]:
    kube, admin = real
    prefix = f"ck{uuid.uuid4().hex[:6]}"
    names = [admin.namespace(f"{prefix}-{team}") for team in ("a", "b")]
    configure(monkeypatch, namespaces=[f"{prefix}-*"])
    return kube, admin, prefix, names


def test_a_complete_setup_passes(
    teams: tuple[RealKube, Cluster, str, list[str]], monkeypatch: pytest.MonkeyPatch, credentials: AwsCredentials
) -> None:
    kube, admin, prefix, names = teams
    admin.apply(render(configure(monkeypatch, namespaces=[f"{prefix}-*"])))
    wait_for_policy(role_client(kube, credentials), names[0], "'ecr-token-refresher'")
    before = secrets_version(admin, names)
    code, report = check(f"{prefix}-*")
    assert (code, failed(report)) == (0, {})
    assert statuses(report)["admission policy"] == (
        "ok",
        "'ecr-token-refresher' confines this identity (a dry-run create of 'ecr-token-refresher-probe' was refused)",
    )
    assert statuses(report)["admission of 'regcred'"][0] == "ok"
    assert statuses(report)["the run's Lease kube-system/ecr-token-refresher"] == (
        "ok",
        "free; overlapping runs take turns on it",
    )
    assert [n["state"] for n in report["namespaces"]] == ["missing", "missing"]
    assert secrets_version(admin, names) == before


def test_a_manifest_without_the_runs_lease_fails_naming_it(
    teams: tuple[RealKube, Cluster, str, list[str]], monkeypatch: pytest.MonkeyPatch, credentials: AwsCredentials
) -> None:
    """A manifest applied before the Lease existed: the identity may not create it, so every run would fail."""
    kube, admin, prefix, names = teams
    manifest = render(configure(monkeypatch, namespaces=[f"{prefix}-*"]))
    admin.apply([item for item in manifest if item["kind"] != "Lease"])
    wait_for_policy(role_client(kube, credentials), names[0], "'ecr-token-refresher'")
    code, report = check(f"{prefix}-*")
    assert code == 1
    assert list(failed(report)) == ["the run's Lease kube-system/ecr-token-refresher"]
    assert (
        "does not exist, and this identity may not create it"
        in failed(report)["the run's Lease kube-system/ecr-token-refresher"]
    )
    assert "make apply" in failed(report)["the run's Lease kube-system/ecr-token-refresher"]


def test_without_the_admission_policy_the_check_says_so(
    teams: tuple[RealKube, Cluster, str, list[str]], monkeypatch: pytest.MonkeyPatch, credentials: AwsCredentials
) -> None:
    kube, admin, prefix, names = teams
    admin.apply(render(configure(monkeypatch, namespaces=[f"{prefix}-*"], admissionPolicy=False)))
    wait_for_policy_gone(role_client(kube, credentials), names[0], "'ecr-token-refresher'")
    code, report = check(f"{prefix}-*")
    assert (code, failed(report)) == (0, {})
    status, detail = statuses(report)["admission policy"]
    assert status == "unknown"
    assert f"a dry-run create of a secret named 'ecr-token-refresher-probe' in {names[0]} was allowed" in detail
    assert secrets_version(admin, names) == []


def test_a_stale_admission_policy_fails_naming_the_namespaces_it_refuses(
    teams: tuple[RealKube, Cluster, str, list[str]], credentials: AwsCredentials
) -> None:
    """The manifest applied was rendered before a namespace joined the targets (here: while it was
    excluded): RBAC allows the write there, the policy refuses it, and every run would fail in it."""
    kube, admin, prefix, names = teams
    stale = {"clusterName": CLUSTER_NAME, "namespaces": [f"{prefix}-*"], "excludeNamespaces": [names[1]]}
    admin.apply(render(DeploymentConfig.from_context(stale)))
    identity = role_client(kube, credentials)
    ours = secret("regcred", DOCKERCONFIG, labels=MANAGED)
    wait_for_policy(
        identity,
        names[0],
        "'ecr-token-refresher'",
        denied=lambda: identity.core.create_namespaced_secret(names[1], ours, dry_run="All"),
        admitted=lambda: identity.core.create_namespaced_secret(names[0], ours, dry_run="All"),
    )
    code, report = check(f"{prefix}-*")
    assert code == 1
    assert list(failed(report)) == ["admission of 'regcred'"]
    detail = failed(report)["admission of 'regcred'"]
    assert f"refused in {names[1]}; first: " in detail
    assert "this identity may only write in its target namespaces" in detail
    assert "re-apply the manifest rendered for this configuration" in detail
    assert statuses(report)["admission policy"][0] == "ok"
    assert secrets_version(admin, names) == []


def test_another_policy_refusing_the_probe_is_not_taken_for_ours(
    teams: tuple[RealKube, Cluster, str, list[str]], monkeypatch: pytest.MonkeyPatch, credentials: AwsCredentials
) -> None:
    """A policy of the cluster's own that happens to refuse the probe's name proves nothing about what
    this identity may create elsewhere: unknown, not ok."""
    kube, admin, prefix, names = teams
    admin.apply(render(configure(monkeypatch, namespaces=[f"{prefix}-*"], admissionPolicy=False)))
    admin.apply(unrelated_policy(f"{prefix}-unrelated", names))
    identity = role_client(kube, credentials)
    probe = secret("ecr-token-refresher-probe")
    wait_for_policy(
        identity,
        names[0],
        f"'{prefix}-unrelated'",
        denied=lambda: identity.core.create_namespaced_secret(names[0], probe, dry_run="All"),
    )
    code, report = check(f"{prefix}-*")
    assert (code, failed(report)) == (0, {})
    status, detail = statuses(report)["admission policy"]
    assert status == "unknown"
    assert (
        "not by the shipped policy's rule ('denied request: this identity may only write the secret named ')" in detail
    )
    assert "no probes here" in detail
    assert statuses(report)["admission of 'regcred'"] == (
        "ok",
        "a dry-run create is admitted in all 2 target namespaces",
    )
    assert secrets_version(admin, names) == []


def test_a_policy_that_refuses_with_403_is_a_refusal_not_rbac(
    teams: tuple[RealKube, Cluster, str, list[str]], monkeypatch: pytest.MonkeyPatch, credentials: AwsCredentials
) -> None:
    """A policy may answer 403 (reason Forbidden), as a webhook or a quota does: only RBAC's own wording
    is RBAC; anything else refuses the write, and every run would fail there."""
    kube, admin, prefix, names = teams
    admin.apply(render(configure(monkeypatch, namespaces=[f"{prefix}-*"], admissionPolicy=False)))
    refusing = unrelated_policy(f"{prefix}-frozen", [names[1]])
    refusing[0]["spec"]["validations"] = [
        {"expression": "false", "message": "this namespace is frozen", "reason": "Forbidden"}
    ]
    admin.apply(refusing)
    identity, ours = role_client(kube, credentials), secret("regcred", DOCKERCONFIG, labels=MANAGED)
    wait_for_policy_answer(identity, lambda: identity.core.create_namespaced_secret(names[1], ours, dry_run="All"), 403)
    code, report = check(f"{prefix}-*")
    assert code == 1
    assert list(failed(report)) == ["admission of 'regcred'"]
    assert f"refused in {names[1]}; first: 403 Forbidden:" in failed(report)["admission of 'regcred'"]
    assert "this namespace is frozen" in failed(report)["admission of 'regcred'"]
    assert secrets_version(admin, names) == []


def test_an_adoption_the_policy_refuses_is_a_failed_line(
    teams: tuple[RealKube, Cluster, str, list[str]], monkeypatch: pytest.MonkeyPatch, credentials: AwsCredentials
) -> None:
    """The manifest rendered without the deploy's credentials does not know the function's own registry:
    its policy refuses adopting the recipe's secret for it, and `check` says so before a run fails."""
    kube, admin, prefix, names = teams
    admin.apply(render(configure(monkeypatch, namespaces=[f"{prefix}-*"]), own_registry=None))
    identity = role_client(kube, credentials)
    wait_for_policy(identity, names[0], "'ecr-token-refresher'")
    recipe = json.dumps({"auths": {OWN_REGISTRY: {"username": "AWS", "password": "x", "auth": "QVdTOng="}}})
    data: dict[str, bytes | str] = {".dockerconfigjson": base64.b64encode(recipe.replace(" ", "").encode()).decode()}
    admin.core.create_namespaced_secret(
        names[0], k8s.V1Secret(metadata=k8s.V1ObjectMeta(name="regcred"), type=DOCKERCONFIG, data=data)
    )
    before = secrets_version(admin, names)
    code, report = check(f"{prefix}-*")
    assert code == 1
    assert list(failed(report)) == ["adoption"]
    assert f"adopting the kubectl recipe's secret in {names[0]}" in failed(report)["adoption"]
    assert "the deploy's AWS credentials" in failed(report)["adoption"]
    assert [n["state"] for n in report["namespaces"]] == ["refused", "missing"]
    assert "may only update a secret labelled" in report["namespaces"][0]["detail"]
    assert secrets_version(admin, names) == before


def unrelated_policy(name: str, namespaces: list[str]) -> list[dict[str, Any]]:
    """A cluster's own policy: no secret named like our probe, in these namespaces only."""
    metadata = {"name": name}
    selector = {"matchExpressions": [{"key": "kubernetes.io/metadata.name", "operator": "In", "values": namespaces}]}
    rule = {"apiGroups": [""], "apiVersions": ["v1"], "operations": ["CREATE"], "resources": ["secrets"]}
    return [
        {
            "apiVersion": "admissionregistration.k8s.io/v1",
            "kind": "ValidatingAdmissionPolicy",
            "metadata": metadata,
            "spec": {
                "failurePolicy": "Fail",
                "matchConstraints": {"resourceRules": [rule], "namespaceSelector": selector},
                "validations": [
                    {"expression": "object.metadata.name != 'ecr-token-refresher-probe'", "message": "no probes here"}
                ],
            },
        },
        {
            "apiVersion": "admissionregistration.k8s.io/v1",
            "kind": "ValidatingAdmissionPolicyBinding",
            "metadata": metadata,
            "spec": {"policyName": name, "validationActions": ["Deny"]},
        },
    ]


def test_a_missing_rbac_rule_fails_naming_it(
    teams: tuple[RealKube, Cluster, str, list[str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    _, admin, prefix, names = teams
    manifest = render(configure(monkeypatch, namespaces=[f"{prefix}-*"]))
    role = next(document for document in manifest if document["kind"] == "ClusterRole")
    role["rules"] = [rule for rule in role["rules"] if rule["verbs"] != ["create"]]
    admin.apply(manifest)
    before = secrets_version(admin, names)
    code, report = check(f"{prefix}-*")
    assert code == 1
    assert list(failed(report)) == ["may create secrets"]
    assert "not granted in " + ", ".join(names) in failed(report)["may create secrets"]
    assert "make apply" in failed(report)["may create secrets"]
    assert secrets_version(admin, names) == before


def test_without_an_access_entry_authentication_fails(teams: tuple[RealKube, Cluster, str, list[str]]) -> None:
    kube, admin, prefix, names = teams
    assert kube.authenticator is not None
    entries, kube.authenticator.access_entries = kube.authenticator.access_entries, {}
    try:
        code, report = check(f"{prefix}-*")
    finally:
        kube.authenticator.access_entries = entries
    assert code == 1
    assert "401 Unauthorized" in failed(report)["Kubernetes authentication"]
    assert secrets_version(admin, names) == []


def test_a_grant_left_by_a_wider_configuration_fails(
    teams: tuple[RealKube, Cluster, str, list[str]], monkeypatch: pytest.MonkeyPatch, credentials: AwsCredentials
) -> None:
    """Applied for a glob, then configured by name (the security model's advice) without removing the ClusterRole:
    the identity may still read the secret everywhere, and check says so with the fix."""
    kube, admin, prefix, names = teams
    admin.apply(render(configure(monkeypatch, namespaces=[f"{prefix}-*"])))
    by_name = render(configure(monkeypatch, namespaces=names))
    # The namespaces' Roles, beside the ClusterRole (the policies and the Lease's Role are applied already).
    admin.apply([m for m in by_name if m["kind"] in ("Role", "RoleBinding") and m["metadata"]["namespace"] in names])
    wait_for_policy(role_client(kube, credentials), names[0], "'ecr-token-refresher'")
    code, report = check(*names)
    assert code == 1
    assert list(failed(report)) == ["grants no wider than the configuration"]
    assert "may read 'regcred' in every namespace" in failed(report)["grants no wider than the configuration"]
    assert "make apply" in failed(report)["grants no wider than the configuration"]
