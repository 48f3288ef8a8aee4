"""The admission policy on a real kube-apiserver: with the rendered manifest as the only RBAC, a stolen
token of the function's role cannot create other secrets or touch another team's, while the refresher's
first, fresh and update runs, and its adoption of the kubectl recipe's secret, all pass."""

from __future__ import annotations

import subprocess
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest
from kubernetes import client as k8s
from kubernetes.client.exceptions import ApiException

from infra.rbac import render
from localkube.kubeconfig import write_kubeconfig
from sandbox.moto_aws import OWN_REGISTRY, AwsCredentials
from sandbox.real_apiserver import ADMIN_TOKEN, RealKube
from tests.integration.real_cluster import Cluster, Invoke, configure, outcomes, role_client, wait_for_policy

pytestmark = pytest.mark.apiserver
POLICY = "ValidatingAdmissionPolicy 'ecr-token-refresher'"
DOCKERCONFIG = "kubernetes.io/dockerconfigjson"


def secret(name: str, kind: str = "Opaque", **metadata: object) -> k8s.V1Secret:
    data = {".dockerconfigjson": "eyJhdXRocyI6e319"} if kind == DOCKERCONFIG else {"k": "dg=="}
    return k8s.V1Secret(metadata=k8s.V1ObjectMeta(name=name, **metadata), type=kind, data=data)


def denied_by_the_policy(call: Callable[[], object]) -> str:
    with pytest.raises(ApiException) as refused:
        call()
    assert refused.value.status == 422, refused.value.body
    assert POLICY in (refused.value.body or "")
    return str(refused.value.body)


def recipe_secret(kube: RealKube, namespace: str, tmp_path: Path, server: str = OWN_REGISTRY) -> None:
    """The classic cron job's secret, made by kubectl itself."""
    admin = write_kubeconfig(tmp_path / "admin", server=kube.url, ca_pem=kube.ca_pem, token=ADMIN_TOKEN)
    subprocess.run(  # noqa: S603 - kubectl from PATH, fixed arguments
        [  # noqa: S607
            "kubectl",
            f"--kubeconfig={admin}",
            "-n",
            namespace,
            "create",
            "secret",
            "docker-registry",
            "regcred",
            f"--docker-server={server}",
            "--docker-username=AWS",
            "--docker-password=from-the-cron-job",
        ],
        check=True,
        capture_output=True,
    )


@pytest.fixture
def confined(
    real: tuple[RealKube, Cluster], credentials: AwsCredentials, monkeypatch: pytest.MonkeyPatch
) -> tuple[RealKube, Cluster, Cluster, str]:
    """Team namespaces served by glob, the manifest (RBAC and policy) applied, the policy enforced."""
    kube, admin = real
    prefix = f"ap{uuid.uuid4().hex[:6]}"
    config = configure(monkeypatch, namespaces=[f"{prefix}-*"])
    admin.apply(render(config, own_registry=OWN_REGISTRY))
    for team in ("a", "b"):
        admin.namespace(f"{prefix}-{team}")
    identity = role_client(kube, credentials)
    wait_for_policy(identity, f"{prefix}-a", "'ecr-token-refresher'")
    return kube, admin, identity, prefix


def test_the_refreshers_runs_pass_under_the_policy(
    confined: tuple[RealKube, Cluster, Cluster, str], invoke: Invoke
) -> None:
    _, admin, _, prefix = confined
    names = [f"{prefix}-a", f"{prefix}-b"]
    assert outcomes(invoke()) == dict.fromkeys(names, "created")
    assert outcomes(invoke()) == dict.fromkeys(names, "unchanged")
    assert outcomes(invoke({"force": True})) == dict.fromkeys(names, "updated")
    assert admin.auths(names[0])[OWN_REGISTRY]["username"] == "AWS"


def test_a_stolen_token_cannot_create_other_secrets(confined: tuple[RealKube, Cluster, Cluster, str]) -> None:
    _, _, identity, prefix = confined
    token_secret = secret(
        "admin-token",
        "kubernetes.io/service-account-token",
        annotations={"kubernetes.io/service-account.name": "default"},
    )
    bootstrap = k8s.V1Secret(
        metadata=k8s.V1ObjectMeta(name="bootstrap-token-abcdef"),
        type="bootstrap.kubernetes.io/token",
        string_data={
            "token-id": "abcdef",
            "token-secret": "0123456789abcdef",
            "usage-bootstrap-authentication": "true",
        },
    )
    managed = {"app.kubernetes.io/managed-by": "ecr-token-refresher"}
    attacks = {
        "a service-account token in kube-system": lambda: identity.core.create_namespaced_secret(
            "kube-system", token_secret
        ),
        "a bootstrap token": lambda: identity.core.create_namespaced_secret("kube-system", bootstrap),
        "any secret in a target namespace": lambda: identity.core.create_namespaced_secret(
            f"{prefix}-a", secret("foo")
        ),
        "our name, without our label": lambda: identity.core.create_namespaced_secret(
            f"{prefix}-a", secret("regcred", DOCKERCONFIG)
        ),
        "our name and label, in kube-system": lambda: identity.core.create_namespaced_secret(
            "kube-system", secret("regcred", DOCKERCONFIG, labels=managed)
        ),
    }
    messages = {what: denied_by_the_policy(attack) for what, attack in attacks.items()}
    assert "may only write the secret named regcred" in messages["a bootstrap token"]
    assert "must carry the label" in messages["our name, without our label"]
    assert "kube-* namespaces" in messages["our name and label, in kube-system"]


def test_a_stolen_token_cannot_overwrite_another_teams_secret(
    confined: tuple[RealKube, Cluster, Cluster, str], invoke: Invoke, tmp_path: Path
) -> None:
    kube, admin, identity, prefix = confined
    other = f"{prefix}-b"
    recipe_secret(kube, other, tmp_path, server="ghcr.io")
    theirs = admin.core.read_namespaced_secret("regcred", other)
    theirs.metadata.labels = {"app.kubernetes.io/managed-by": "ecr-token-refresher"}
    message = denied_by_the_policy(lambda: identity.core.replace_namespaced_secret("regcred", other, theirs))
    assert "may only update a secret labelled" in message
    result = invoke()
    assert outcomes(result)[other] == "skipped"  # the refresher itself leaves it alone, too
    assert (
        admin.core.read_namespaced_secret("regcred", other).metadata.resource_version
        == theirs.metadata.resource_version
    )


def test_the_kubectl_recipes_secret_is_adopted_under_the_policy(
    confined: tuple[RealKube, Cluster, Cluster, str], invoke: Invoke, tmp_path: Path
) -> None:
    kube, admin, _, prefix = confined
    recipe_secret(kube, f"{prefix}-a", tmp_path)
    before = admin.core.read_namespaced_secret("regcred", f"{prefix}-a")
    assert before.metadata.labels is None
    assert outcomes(invoke()) == {f"{prefix}-a": "adopted", f"{prefix}-b": "created"}
    after = admin.core.read_namespaced_secret("regcred", f"{prefix}-a")
    assert after.metadata.uid == before.metadata.uid  # renewed in place, never deleted
    assert after.metadata.labels == {"app.kubernetes.io/managed-by": "ecr-token-refresher"}
    assert admin.auths(f"{prefix}-a")[OWN_REGISTRY]["password"] != "from-the-cron-job"
    assert outcomes(invoke()) == {f"{prefix}-a": "unchanged", f"{prefix}-b": "unchanged"}
