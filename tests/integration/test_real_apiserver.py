"""The refresher against a real kube-apiserver: EKS-style token authentication through moto's STS,
the RBAC manifest rendered by the CDK app proven exactly sufficient, and the errors for a missing
access entry (401) or missing RBAC (403)."""

from __future__ import annotations

import io
import json
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client as k8s
from kubernetes.client.exceptions import ApiException

from infra.config import DeploymentConfig
from infra.rbac import render
from lambda_fn.cli import main
from lambda_fn.errors import RefreshFailed
from lambda_fn.k8s import KubernetesCluster
from localkube.kubeconfig import write_kubeconfig
from sandbox.eks_cluster import CLUSTER_NAME
from sandbox.moto_aws import OWN_REGISTRY, AwsCredentials
from sandbox.real_apiserver import ADMIN_TOKEN, RealKube
from tests.integration.real_cluster import Cluster, Invoke, configure, outcomes, role_client

pytestmark = pytest.mark.apiserver


@pytest.mark.parametrize("with_service_accounts", [False, True])
def test_globs_create_update_unchanged_and_service_accounts_with_the_rendered_rbac(
    real: tuple[RealKube, Cluster], invoke: Invoke, monkeypatch: pytest.MonkeyPatch, with_service_accounts: bool
) -> None:
    kube, cluster = real
    run = uuid.uuid4().hex[:6]
    extra = {"serviceAccounts": ["default"]} if with_service_accounts else {}
    config = configure(monkeypatch, namespaces=[f"rt{run}-*"], **extra)
    cluster.apply(render(config))
    names = [cluster.namespace(f"rt{run}-{i}") for i in range(3)]
    foreign = cluster.namespace(f"rt{run}-foreign")
    cluster.core.create_namespaced_secret(
        foreign, k8s.V1Secret(metadata=k8s.V1ObjectMeta(name="regcred"), type="Opaque", data={"x": "eA=="})
    )
    before = cluster.core.read_namespaced_secret("regcred", foreign)

    first = invoke()
    assert outcomes(first) == {**dict.fromkeys(names, "created"), foreign: "skipped"}
    assert cluster.auths(names[0])[OWN_REGISTRY]["username"] == "AWS"
    with monkeypatch.context() as scoped:
        sent = requests_sent(scoped)
        assert outcomes(invoke()) == {**dict.fromkeys(names, "unchanged"), foreign: "skipped"}
    # The steady state is the lists alone, service accounts included (listed by name under the manifest),
    # and a read of the foreign secret (only its data tells whether it is the recipe's, to adopt).
    lists = ["/api/v1/namespaces", "/api/v1/secrets"] + ["/api/v1/serviceaccounts"] * with_service_accounts
    foreign_read = "/api/v1/namespaces/{namespace}/secrets/{name}"
    lease = "/apis/coordination.k8s.io/v1/namespaces/{namespace}/leases/{name}"
    held = [("GET", lease), ("PUT", lease)] * 2  # taken (it exists from the first run), then handed back
    assert sorted(sent) == sorted([*(("GET", path) for path in [*lists, foreign_read]), *held])
    uid = cluster.core.read_namespaced_secret("regcred", names[0]).metadata.uid
    assert outcomes(invoke({"force": True})) == {**dict.fromkeys(names, "updated"), foreign: "skipped"}
    assert cluster.core.read_namespaced_secret("regcred", names[0]).metadata.uid == uid  # updated in place
    assert cluster.core.read_namespaced_secret("regcred", foreign) == before
    if with_service_accounts:
        account = cluster.core.read_namespaced_service_account("default", names[0])
        assert [ref.name for ref in account.image_pull_secrets] == ["regcred"]
    assert "ecr-token-refresher" in {user for ok, user in kube.reviews if ok}


def requests_sent(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, str]]:
    """(method, path) of every request the refresher sends from now on."""
    sent: list[tuple[str, str]] = []
    original = KubernetesCluster._request

    def recorded(self: KubernetesCluster, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
        sent.append((method, path))
        return original(self, method, path, **kwargs)

    monkeypatch.setattr(KubernetesCluster, "_request", recorded)
    return sent


def test_names_only_rbac_and_nothing_more(
    real: tuple[RealKube, Cluster], invoke: Invoke, monkeypatch: pytest.MonkeyPatch, credentials: AwsCredentials
) -> None:
    kube, cluster = real
    run = uuid.uuid4().hex[:6]
    mine, other = cluster.namespace(f"rt{run}-mine"), cluster.namespace(f"rt{run}-other")
    config = configure(monkeypatch, namespaces=[mine])
    cluster.apply(render(config))
    cluster.core.create_namespaced_secret(
        other, k8s.V1Secret(metadata=k8s.V1ObjectMeta(name="db"), type="Opaque", data={})
    )
    assert outcomes(invoke()) == {mine: "created"}
    role = role_client(kube, credentials)
    forbidden: list[Callable[[], object]] = [
        lambda: role.core.read_namespaced_secret("db", other),
        lambda: role.core.read_namespaced_secret("regcred", other),
        lambda: role.core.list_namespaced_secret(mine),
        lambda: role.core.delete_namespaced_secret("regcred", mine),
        role.core.list_namespace,
        lambda: role.core.read_namespaced_secret("db", mine),
    ]
    for call in forbidden:
        with pytest.raises(ApiException) as refused:
            call()
        assert refused.value.status == 403


def test_more_namespaces_than_one_page(
    real: tuple[RealKube, Cluster], invoke: Invoke, monkeypatch: pytest.MonkeyPatch
) -> None:
    _, cluster = real
    run = uuid.uuid4().hex[:6]
    config = configure(monkeypatch, namespaces=[f"pg{run}-*"])
    cluster.apply(render(config))
    monkeypatch.setattr("lambda_fn.k8s.api.PAGE_SIZE", 100)
    for index in range(250):
        cluster.core.create_namespace(k8s.V1Namespace(metadata=k8s.V1ObjectMeta(name=f"pg{run}-{index:03d}")))
    assert invoke()["counts"]["created"] == 250
    assert invoke()["counts"]["unchanged"] == 250  # read from the paged list by name


def test_without_an_access_entry_401_names_the_fix(
    real: tuple[RealKube, Cluster], invoke: Invoke, monkeypatch: pytest.MonkeyPatch
) -> None:
    kube, cluster = real
    name = cluster.namespace(f"rt{uuid.uuid4().hex[:6]}")
    configure(monkeypatch, namespaces=[name])
    assert kube.authenticator is not None
    entries = kube.authenticator.access_entries
    kube.authenticator.access_entries = {}
    try:
        with pytest.raises(RefreshFailed):
            invoke()
    finally:
        kube.authenticator.access_entries = entries
    assert any(not ok and "no access entry" in reason for ok, reason in kube.reviews)


def test_with_the_entry_but_no_rbac_403_names_the_fix(
    real: tuple[RealKube, Cluster], invoke: Invoke, monkeypatch: pytest.MonkeyPatch, logs: Callable[[], str]
) -> None:
    _, cluster = real
    name = cluster.namespace(f"rt{uuid.uuid4().hex[:6]}")
    configure(monkeypatch, namespaces=[name])
    with pytest.raises(RefreshFailed, match=name):
        invoke()
    logged = logs()
    assert 'User \\"ecr-token-refresher\\" cannot get resource \\"secrets\\"' in logged
    assert "make apply" in logged


def test_the_cli_in_kubeconfig_mode_against_kube_apiserver(real: tuple[RealKube, Cluster], tmp_path: Path) -> None:
    """Any conforming API server, not only the project's own: the CLI through a kubeconfig."""
    kube, cluster = real
    namespace = cluster.namespace(f"kc{uuid.uuid4().hex[:6]}")
    kubeconfig = write_kubeconfig(tmp_path / "kubeconfig", server=kube.url, ca_pem=kube.ca_pem, token=ADMIN_TOKEN)
    stdout, stderr = io.StringIO(), io.StringIO()
    code = main(
        ["refresh", "--kubeconfig", str(kubeconfig), "--namespace", namespace, "--output", "json"],
        stdout=stdout,
        stderr=stderr,
    )
    assert (code, stderr.getvalue()) == (0, "")
    assert json.loads(stdout.getvalue())["namespaces"] == [{"namespace": namespace, "outcome": "created"}]
    written = cluster.core.read_namespaced_secret("regcred", namespace)
    assert written.type == "kubernetes.io/dockerconfigjson"
    assert (written.metadata.labels or {}).get("app.kubernetes.io/managed-by") == "ecr-token-refresher"
    assert cluster.auths(namespace)[OWN_REGISTRY]["username"] == "AWS"


def test_an_update_keeps_owner_references_finalizers_and_unknown_fields(
    real: tuple[RealKube, Cluster], invoke: Invoke, monkeypatch: pytest.MonkeyPatch
) -> None:
    _, cluster = real
    name = cluster.namespace(f"own{uuid.uuid4().hex[:6]}")
    configure(monkeypatch, namespaces=[name])
    cluster.apply(render(DeploymentConfig.from_context({"clusterName": CLUSTER_NAME, "namespaces": [name]})))
    assert outcomes(invoke()) == {name: "created"}
    owner = cluster.core.create_namespaced_config_map(name, k8s.V1ConfigMap(metadata=k8s.V1ObjectMeta(name="owner")))
    reference = {"apiVersion": "v1", "kind": "ConfigMap", "name": "owner", "uid": owner.metadata.uid}
    cluster.core.patch_namespaced_secret(
        "regcred",
        name,
        {"metadata": {"ownerReferences": [reference], "finalizers": ["example.com/keep"], "labels": {"team": "a"}}},
    )
    assert outcomes(invoke({"force": True})) == {name: "updated"}
    secret = cluster.core.read_namespaced_secret("regcred", name)
    assert [(ref.kind, ref.uid) for ref in secret.metadata.owner_references] == [("ConfigMap", owner.metadata.uid)]
    assert secret.metadata.finalizers == ["example.com/keep"]
    assert (secret.metadata.labels or {}).get("team") == "a"
    cluster.core.patch_namespaced_secret("regcred", name, {"metadata": {"finalizers": None}})


def test_an_immutable_stale_secret_fails_naming_the_fix_and_is_not_touched(
    real: tuple[RealKube, Cluster], invoke: Invoke, monkeypatch: pytest.MonkeyPatch, logs: Callable[[], str]
) -> None:
    _, cluster = real
    name = cluster.namespace(f"imm{uuid.uuid4().hex[:6]}")
    configure(monkeypatch, namespaces=[name])
    cluster.apply(render(DeploymentConfig.from_context({"clusterName": CLUSTER_NAME, "namespaces": [name]})))
    assert outcomes(invoke()) == {name: "created"}
    secret = cluster.core.read_namespaced_secret("regcred", name)
    secret.immutable = True
    secret.metadata.annotations = (secret.metadata.annotations or {}) | {
        "ecr-token-refresher/expires-at": "2026-01-01T00:00:00+00:00"
    }
    cluster.core.replace_namespaced_secret("regcred", name, secret)
    before = cluster.core.read_namespaced_secret("regcred", name)
    with pytest.raises(RefreshFailed, match=name):
        invoke()
    assert "the secret is marked immutable, so its token cannot be renewed in place; delete it" in logs()
    assert cluster.core.read_namespaced_secret("regcred", name).metadata.resource_version == (
        before.metadata.resource_version
    )
