"""The RBAC manifest grants exactly what each configuration needs, rendered from the same config."""

from __future__ import annotations

import yaml

from infra.rbac import render, to_yaml
from tests.infra.conftest import config_for

GROUP = [{"kind": "Group", "apiGroup": "rbac.authorization.k8s.io", "name": "ecr-token-refresher"}]
SECRET_RULES = [
    {"apiGroups": [""], "resources": ["secrets"], "verbs": ["get", "update"], "resourceNames": ["regcred"]},
    {"apiGroups": [""], "resources": ["secrets"], "verbs": ["create"]},
]


def test_names_only_get_a_role_per_namespace_and_no_namespace_listing() -> None:
    manifests = render(config_for(namespaces=["team-b", "team-a"]))
    assert [(m["kind"], m["metadata"]["namespace"]) for m in manifests] == [
        ("Role", "team-a"),
        ("RoleBinding", "team-a"),
        ("Role", "team-b"),
        ("RoleBinding", "team-b"),
    ]
    assert manifests[0]["rules"] == SECRET_RULES
    assert manifests[1]["subjects"] == GROUP
    assert manifests[1]["roleRef"] == {
        "apiGroup": "rbac.authorization.k8s.io",
        "kind": "Role",
        "name": "ecr-token-refresher",
    }


def test_globs_and_selectors_need_a_cluster_role_with_namespace_listing() -> None:
    for context in ({"namespaces": ["team-*"]}, {"namespaces": [], "namespaceSelector": "ecr=yes"}):
        role, binding = render(config_for(**context))
        assert role["kind"] == "ClusterRole"
        assert role["rules"] == [
            {
                "apiGroups": [""],
                "resources": ["secrets"],
                "verbs": ["get", "list", "update"],
                "resourceNames": ["regcred"],
            },
            SECRET_RULES[1],
            {"apiGroups": [""], "resources": ["namespaces"], "verbs": ["list"]},
        ]
        assert binding["kind"] == "ClusterRoleBinding"
        assert binding["subjects"] == GROUP


def test_service_accounts_add_get_and_patch_on_those_accounts_only() -> None:
    role, _ = render(config_for(namespaces=["default"], serviceAccounts=["default", "builder"], secretName="pull"))
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


def test_the_yaml_is_what_kubectl_applies() -> None:
    documents = list(yaml.safe_load_all(to_yaml(config_for(namespaces=["team-*"], kubernetesGroup="pullers"))))
    assert [d["kind"] for d in documents] == ["ClusterRole", "ClusterRoleBinding"]
    assert documents[1]["subjects"][0]["name"] == "pullers"
