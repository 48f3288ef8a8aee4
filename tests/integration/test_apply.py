"""`make apply` and `make remove` on the real kube-apiserver: a re-apply for a narrower configuration
removes the grants it no longer renders (the ClusterRole of a glob, the Role of a namespace dropped),
a removal removes everything, and another deployment's objects on the same cluster are never touched."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
from kubernetes import client as k8s

from infra import apply
from infra.config import kubernetes_name
from localkube.kubeconfig import write_kubeconfig
from sandbox.real_apiserver import ADMIN_TOKEN, RealKube
from tests.integration.real_cluster import Cluster

pytestmark = pytest.mark.apiserver


def may_read_the_secret(admin: Cluster, group: str, namespace: str) -> bool:
    review = k8s.V1SubjectAccessReview(
        spec=k8s.V1SubjectAccessReviewSpec(
            user="someone",
            groups=[group],
            resource_attributes=k8s.V1ResourceAttributes(
                verb="get", resource="secrets", name="regcred", namespace=namespace
            ),
        )
    )
    return bool(k8s.AuthorizationV1Api(admin.api).create_subject_access_review(review).status.allowed)


def named(admin: Cluster, name: str) -> list[str]:
    """Every RBAC and admission object called `name` (or its service-account policy), by kind."""
    found = [f"ClusterRole {r.metadata.name}" for r in admin.rbac.list_cluster_role().items]
    found += [f"ClusterRoleBinding {r.metadata.name}" for r in admin.rbac.list_cluster_role_binding().items]
    found += [f"Role {r.metadata.namespace}/{r.metadata.name}" for r in admin.rbac.list_role_for_all_namespaces().items]
    found += [
        f"RoleBinding {r.metadata.namespace}/{r.metadata.name}"
        for r in admin.rbac.list_role_binding_for_all_namespaces().items
    ]
    found += [f"Policy {p.metadata.name}" for p in admin.admission.list_validating_admission_policy().items]
    found += [f"Binding {p.metadata.name}" for p in admin.admission.list_validating_admission_policy_binding().items]
    return sorted(entry for entry in found if entry.endswith((f" {name}", f"/{name}")))


def test_apply_removes_what_the_configuration_no_longer_renders_and_remove_removes_all(
    real_kube: RealKube, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    admin = Cluster(real_kube)
    prefix = f"apl{uuid.uuid4().hex[:6]}"
    a, b, other = (admin.namespace(f"{prefix}-{team}") for team in ("a", "b", "c"))
    kubeconfig = write_kubeconfig(tmp_path / "admin", server=real_kube.url, ca_pem=real_kube.ca_pem, token=ADMIN_TOKEN)
    # The neighbour once collided: its name was ours with "-serviceaccounts" after it.
    stack = f"Apply{prefix}"
    neighbour = f"{stack}Serviceaccounts"
    name, neighbours = kubernetes_name(stack), kubernetes_name(neighbour)

    def make(*context: str, delete: bool = False) -> str:
        argv = [f"--kubectl-arg=--kubeconfig={kubeconfig}", "clusterName=demo", *context]
        assert apply.main(["--delete", *argv] if delete else argv) == 0
        return capsys.readouterr().err

    make(f"stackName={neighbour}", f"namespaces={other}")
    make(f"stackName={stack}", f"namespaces={prefix}-*")
    assert may_read_the_secret(admin, name, other)
    said = make(f"stackName={stack}", f"namespaces={a},{b}")
    assert f"ClusterRole {name}" in said
    assert f"ClusterRoleBinding {name}" in said
    assert not may_read_the_secret(admin, name, other)
    assert may_read_the_secret(admin, name, b)
    make(f"stackName={stack}", f"namespaces={a}")
    assert not may_read_the_secret(admin, name, b)
    assert may_read_the_secret(admin, name, a)
    assert named(admin, name) == [f"Binding {name}", f"Policy {name}", f"Role {a}/{name}", f"RoleBinding {a}/{name}"]
    lease = f"{name}-lease"  # the grant of the run's Lease, a Role in kube-system
    assert named(admin, lease) == [f"Role kube-system/{lease}", f"RoleBinding kube-system/{lease}"]
    said = make(f"stackName={stack}", f"namespaces={a}", delete=True)
    assert "removed 7 objects" in said  # the Role, its binding and policy, and the Lease with its grant
    assert not may_read_the_secret(admin, name, a)
    assert named(admin, name) == []
    assert named(admin, lease) == []
    assert len(named(admin, neighbours)) == 4  # the neighbour's, untouched
    assert may_read_the_secret(admin, neighbours, other)
    make(f"stackName={neighbour}", f"namespaces={other}", delete=True)
