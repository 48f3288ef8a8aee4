"""The Kubernetes manifest grants exactly what each configuration needs, names its cluster-wide objects
after the stack, and confines the identity with an admission policy; rendered from the same config."""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from infra.base64_pattern import base64_fragments
from infra.config import Cluster
from infra.rbac import manifest_files, render, to_yaml
from tests.infra.conftest import config_for

GROUP = [{"kind": "Group", "apiGroup": "rbac.authorization.k8s.io", "name": "ecr-token-refresher"}]
SECRET_RULES = [
    {"apiGroups": [""], "resources": ["secrets"], "verbs": ["get", "update"], "resourceNames": ["regcred"]},
    {"apiGroups": [""], "resources": ["secrets"], "verbs": ["create"]},
]
SECRET_ARN = "arn:aws:secretsmanager:eu-west-1:111122223333:secret:onprem-kubeconfig-AbCdEf"
ADMISSION = ["ValidatingAdmissionPolicy", "ValidatingAdmissionPolicyBinding"]


def kinds(manifests: list[dict[str, object]]) -> list[str]:
    return [str(manifest["kind"]) for manifest in manifests]


def of_kind(manifests: list[dict[str, Any]], kind: str) -> dict[str, Any]:
    """The first manifest of `kind` (the policies come first, then the grants)."""
    return next(manifest for manifest in manifests if manifest["kind"] == kind)


def test_names_only_get_a_role_per_namespace_and_no_listing() -> None:
    manifests = render(config_for(namespaces=["team-b", "team-a"]))
    assert [(m["kind"], m["metadata"].get("namespace")) for m in manifests] == [
        ("ValidatingAdmissionPolicy", None),
        ("ValidatingAdmissionPolicyBinding", None),
        ("Role", "team-a"),
        ("RoleBinding", "team-a"),
        ("Role", "team-b"),
        ("RoleBinding", "team-b"),
        ("Lease", "kube-system"),  # the run's, and its grant
        ("Role", "kube-system"),
        ("RoleBinding", "kube-system"),
    ]
    assert of_kind(manifests, "Role")["rules"] == SECRET_RULES
    assert of_kind(manifests, "RoleBinding")["subjects"] == GROUP
    assert of_kind(manifests, "RoleBinding")["roleRef"] == {
        "apiGroup": "rbac.authorization.k8s.io",
        "kind": "Role",
        "name": "ecr-token-refresher",
    }


def test_globs_and_selectors_need_a_cluster_role_that_lists_namespaces_and_the_secret_by_name() -> None:
    for context in ({"namespaces": ["team-*"]}, {"namespaces": [], "namespaceSelector": "ecr=yes"}):
        *admission, role, binding, _, _, _ = render(config_for(**context))
        assert (role["kind"], binding["kind"], kinds(admission)) == ("ClusterRole", "ClusterRoleBinding", ADMISSION)
        assert role["rules"] == [
            {**SECRET_RULES[0], "verbs": ["get", "list", "update"]},
            SECRET_RULES[1],
            {"apiGroups": [""], "resources": ["namespaces"], "verbs": ["list"]},
        ]
        assert binding["subjects"] == GROUP


def test_service_accounts_add_get_and_patch_on_those_accounts_only() -> None:
    role = of_kind(
        render(config_for(namespaces=["default"], serviceAccounts=["default", "builder"], secretName="pull")), "Role"
    )
    assert role["rules"] == [
        {"apiGroups": [""], "resources": ["secrets"], "verbs": ["get", "update"], "resourceNames": ["pull"]},
        {"apiGroups": [""], "resources": ["secrets"], "verbs": ["create"]},
        {
            "apiGroups": [""],
            "resources": ["serviceaccounts"],
            "verbs": ["get", "patch"],
            "resourceNames": ["default", "builder"],
        },
    ]


def test_two_deployments_in_one_cluster_never_share_an_object_name() -> None:
    first = render(config_for(namespaces=["team-*"]))
    second = render(config_for(namespaces=["team-*"], stackName="Staging", secretName="staging-pull"))
    assert {m["metadata"]["name"] for m in first} == {"ecr-token-refresher", "ecr-token-refresher-lease"}
    assert {m["metadata"]["name"] for m in second} == {
        "ecr-token-refresher-staging",
        "ecr-token-refresher-staging-lease",
    }
    assert of_kind(second, "ClusterRoleBinding")["subjects"][0]["name"] == "ecr-token-refresher-staging"  # its group
    assert of_kind(second, ADMISSION[1])["spec"]["policyName"] == "ecr-token-refresher-staging"


def test_two_deployments_outside_eks_get_their_own_service_accounts() -> None:
    onprem = {"clusters": [{"name": "onprem", "kubeconfigSecretArn": SECRET_ARN}], "namespaces": ["team-*"]}
    first, second = render(config_for(**onprem)), render(config_for(**onprem, stackName="Staging"))
    accounts = [
        (a["kind"], a["metadata"]["namespace"], a["metadata"]["name"])
        for a in (of_kind(first, "ServiceAccount"), of_kind(second, "ServiceAccount"))
    ]
    assert accounts == [
        ("ServiceAccount", "kube-system", "ecr-token-refresher"),
        ("ServiceAccount", "kube-system", "ecr-token-refresher-staging"),
    ]
    assert of_kind(second, "ClusterRoleBinding")["subjects"] == [
        {"kind": "ServiceAccount", "namespace": "kube-system", "name": "ecr-token-refresher-staging"}
    ]


def test_a_cluster_outside_eks_binds_a_service_account_it_declares() -> None:
    config = config_for(
        clusters=[{"name": "onprem", "kubeconfigSecretArn": SECRET_ARN}],
        namespaces=["team-*"],
        kubernetesServiceAccount="kube-system/pull-secrets",
    )
    manifests = render(config)
    account, role, binding, policy = (
        of_kind(manifests, kind) for kind in ("ServiceAccount", "ClusterRole", "ClusterRoleBinding", ADMISSION[0])
    )
    assert (account["kind"], account["metadata"]["namespace"], account["metadata"]["name"]) == (
        "ServiceAccount",
        "kube-system",
        "pull-secrets",
    )
    assert binding["subjects"] == [{"kind": "ServiceAccount", "namespace": "kube-system", "name": "pull-secrets"}]
    condition = policy["spec"]["matchConditions"][0]["expression"]
    assert condition == 'request.userInfo.username == "system:serviceaccount:kube-system:pull-secrets"'
    assert role["kind"] == "ClusterRole"


def test_the_admission_policy_can_be_left_out() -> None:
    assert ADMISSION[0] not in kinds(render(config_for(namespaces=["team-*"], admissionPolicy=False)))


def test_adoption_under_the_policy_needs_the_registries_it_may_adopt() -> None:
    def adoptable(**kwargs: object) -> str:
        policy = of_kind(render(config_for(namespaces=["team-*"]), **kwargs), ADMISSION[0])  # type: ignore[arg-type]
        return str(next(v["expression"] for v in policy["spec"]["variables"] if v["name"] == "oldAdoptable"))

    assert adoptable() == "false"  # the function's own account is unknown at an offline synth
    assert ".matches(" in adoptable(own_registry="123456789012.dkr.ecr.us-east-1.amazonaws.com")
    only_others = of_kind(
        render(config_for(namespaces=["team-*"], adoptExisting=False), own_registry="x"), ADMISSION[0]
    )
    assert {v["name"]: v["expression"] for v in only_others["spec"]["variables"]}["oldAdoptable"] == "false"


def test_synth_writes_one_manifest_for_the_eks_clusters_and_one_per_kubeconfig_cluster() -> None:
    config = config_for(clusters=["blue", "green", {"name": "onprem", "kubeconfigSecretArn": SECRET_ARN}])
    files = manifest_files(config)
    assert sorted(files) == ["rbac-onprem.yaml", "rbac.yaml"]
    assert "Group 'ecr-token-refresher'" in files["rbac.yaml"]
    assert "ServiceAccount 'ecr-token-refresher'" in files["rbac-onprem.yaml"]
    assert config.clusters[2] == Cluster("onprem", SECRET_ARN, manage_access_entry=False)


def test_the_yaml_is_what_kubectl_applies() -> None:
    documents = list(yaml.safe_load_all(to_yaml(config_for(namespaces=["team-*"], kubernetesGroup="pullers"))))
    assert kinds(documents) == [*ADMISSION, "ClusterRole", "ClusterRoleBinding", "Lease", "Role", "RoleBinding"]
    assert of_kind(documents, "ClusterRoleBinding")["subjects"][0]["name"] == "pullers"
    assert "pullers" in of_kind(documents, ADMISSION[0])["spec"]["matchConditions"][0]["expression"]


@pytest.mark.parametrize("context", [{"namespaces": ["team-*"]}, {"namespaces": ["team-a", "team-b"]}])
def test_the_policies_and_their_bindings_come_before_any_grant(context: dict[str, object]) -> None:
    """`kubectl apply` creates in file order: no moment where the identity is bound by RBAC and unconfined."""
    kinds = [manifest["kind"] for manifest in render(config_for(**context))]
    policy_kinds = {"ValidatingAdmissionPolicy", "ValidatingAdmissionPolicyBinding"}
    grants = {"ClusterRoleBinding", "RoleBinding", "ClusterRole", "Role"}
    last_policy = max(index for index, kind in enumerate(kinds) if kind in policy_kinds)
    first_grant = min(index for index, kind in enumerate(kinds) if kind in grants)
    assert last_policy < first_grant, kinds


def test_the_runs_lease_is_in_the_manifest_and_granted_by_name_only() -> None:
    """The Lease is created by whoever applies the manifest; the identity may get and update it, and
    create nothing in kube-system."""
    config = config_for(namespaces=["team-*"], stackName="Staging")
    manifests = render(config)
    lease, role, binding = manifests[-3:]
    assert (lease["kind"], lease["metadata"]["namespace"], lease["metadata"]["name"]) == (
        "Lease",
        "kube-system",
        "ecr-token-refresher-staging",
    )
    assert config.environment(config.clusters[0])["RUN_LEASE"] == "ecr-token-refresher-staging"
    assert role["metadata"]["name"] == "ecr-token-refresher-staging-lease"
    assert role["rules"] == [
        {
            "apiGroups": ["coordination.k8s.io"],
            "resources": ["leases"],
            "verbs": ["get", "update"],
            "resourceNames": ["ecr-token-refresher-staging"],
        }
    ]
    assert binding["roleRef"]["name"] == "ecr-token-refresher-staging-lease"


def test_the_policy_refuses_a_tenants_host_outside_its_tenants_namespaces() -> None:
    host, other = "222222222222.dkr.ecr.eu-west-1.amazonaws.com", "333333333333.dkr.ecr.eu-west-1.amazonaws.com"
    tenants = [
        {
            "name": "team-a",
            "namespaces": ["team-a", "team-a-*"],
            "namespaceSelector": "builds=all",
            "registries": [f"{host}=arn:aws:iam::222222222222:role/pull"],
        },
        {"name": "team-b", "namespaces": ["team-b"], "registries": [f"{other}=arn:aws:iam::333333333333:role/pull"]},
    ]
    policy = of_kind(render(config_for(namespaces=["team-*"], tenants=tenants)), "ValidatingAdmissionPolicy")
    rules = [rule for rule in policy["spec"]["validations"] if host in rule["message"]]
    assert len(rules) == 1  # one rule per host, allowed where its tenant's names, globs or selector match
    expression = rules[0]["expression"]
    assert "request.namespace.matches" in expression
    assert "variables.namespaceLabels" in expression
    assert all(f'.contains("{fragment}")' in expression for fragment in base64_fragments(host.encode()))
    assert not [
        rule
        for rule in of_kind(render(config_for()), "ValidatingAdmissionPolicy")["spec"]["validations"]
        if "tenants" in rule["message"]
    ]
