"""The RBAC manifest the CDK app renders is exactly sufficient: the refresher, bound by nothing else,
creates, updates and patches without a single 403, and cannot do more than it needs."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from infra.config import DeploymentConfig
from infra.rbac import render
from localkube import LocalKube, Rule, User
from sandbox.eks_cluster import CLUSTER_NAME, local_eks_cluster
from sandbox.moto_aws import AwsCredentials, MotoAws

CONFIGURATIONS: dict[str, dict[str, Any]] = {
    "names only": {"namespaces": ["default", "team-a"]},
    "globs and a selector": {"namespaces": ["team-*"], "namespaceSelector": "ecr-pull=enabled"},
    "with service accounts": {"namespaces": ["team-*"], "serviceAccounts": ["default", "builder"]},
}


def rules_from_manifest(manifests: list[dict[str, Any]]) -> list[Rule]:
    """The manifest's (Cluster)Roles as the local API server's rules."""
    rules = []
    for manifest in manifests:
        if manifest["kind"] not in ("Role", "ClusterRole"):
            continue
        namespace = manifest["metadata"].get("namespace")
        rules += [
            Rule.of(
                ",".join(rule["verbs"]),
                ",".join(rule["resources"]),
                namespaces=namespace,
                resource_names=",".join(rule["resourceNames"]) if "resourceNames" in rule else None,
            )
            for rule in manifest["rules"]
        ]
    return rules


@pytest.fixture(params=list(CONFIGURATIONS))
def deployed(
    request: pytest.FixtureRequest, aws: MotoAws, credentials: AwsCredentials, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[LocalKube, DeploymentConfig]]:
    context = {"clusterName": CLUSTER_NAME, **CONFIGURATIONS[request.param]}
    config = DeploymentConfig.from_context(context)
    for name, value in config.environment(config.clusters[0]).items():
        monkeypatch.setenv(name, value)
    manifests = render(config)
    kube = local_eks_cluster(aws, credentials, rules=rules_from_manifest(manifests))
    for name in ("default", "team-a", "team-b", "other", "kube-system"):  # kube-system: the run's Lease
        kube.store.add_namespace(name)
    kube.store.add_namespace("labelled", labels={"ecr-pull": "enabled"})
    for lease in (m for m in manifests if m["kind"] == "Lease"):  # as `make apply` creates it
        kube.store.create("leases", "kube-system", {"metadata": {"name": lease["metadata"]["name"]}, "spec": {}})
    kube.store.create("secrets", "other", {"metadata": {"name": "db-password"}, "type": "Opaque", "data": {}})
    yield kube, config
    kube.stop()


def test_every_call_the_refresher_makes_is_granted(
    deployed: tuple[LocalKube, DeploymentConfig], invoke: Callable[..., dict[str, Any]]
) -> None:
    kube, config = deployed
    for event in ({}, {}, {"force": True}):  # create, unchanged, update
        result = invoke(event or None)
        assert result["ok"], result
    assert {r.status for r in kube.requests if r.user == "ecr-token-refresher"} <= {200, 201, 404}
    assert [r.method for r in kube.requests if "/leases" in r.path][:2] == ["GET", "PUT"]  # the run's Lease
    if config.settings.service_accounts:
        patched = [r for r in kube.requests if r.method == "PATCH"]
        assert patched
        assert all(r.status == 200 for r in patched)


def test_nothing_more_is_granted(deployed: tuple[LocalKube, DeploymentConfig]) -> None:
    kube, config = deployed
    role = kube.with_group_rules(User("refresher", groups=("ecr-token-refresher",)))
    secret = config.settings.secret_name
    assert not any(rule.allows("get", "secrets", "other", "db-password") for rule in role.rules)
    assert not any(rule.allows("list", "secrets", "other", None) for rule in role.rules)
    assert not any(rule.allows("delete", "secrets", "team-a", secret) for rule in role.rules)
    assert not any(rule.allows("update", "configmaps", "team-a", secret) for rule in role.rules)
    lists_namespaces = any(rule.allows("list", "namespaces", None, None) for rule in role.rules)
    assert lists_namespaces is config.lists_namespaces
    patches_accounts = any(rule.allows("patch", "serviceaccounts", "team-a", "default") for rule in role.rules)
    assert patches_accounts is bool(config.settings.service_accounts)
    assert not any(rule.allows("patch", "serviceaccounts", "team-a", "admin") for rule in role.rules)
