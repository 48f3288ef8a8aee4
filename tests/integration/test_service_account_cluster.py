"""A cluster outside EKS, on the real kube-apiserver: the rendered manifest (its service account, RBAC
and admission policy) is the only grant, the credential is a TokenRequest token (or a client
certificate) in a kubeconfig that Secrets Manager holds, and the Lambda creates, keeps and updates the
secrets, picking up a rotated token on the next run."""

from __future__ import annotations

import base64
import os
import subprocess
import sys
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client as k8s

from infra.rbac import render
from localkube.kubeconfig import write_kubeconfig
from sandbox.moto_aws import MotoAws
from sandbox.real_apiserver import ADMIN_TOKEN, ROOT, RealKube
from tests.integration.real_cluster import Cluster, Invoke, configure, outcomes

pytestmark = pytest.mark.apiserver
SECRET_ARN = "arn:aws:secretsmanager:us-east-1:123456789012:secret:onprem-kubeconfig-AbCdEf"


def kubeconfig(kube: RealKube, user: dict[str, Any]) -> str:
    cluster = {"server": kube.url, "certificate-authority-data": base64.b64encode(kube.ca_pem).decode()}
    return yaml.safe_dump(
        {
            "clusters": [{"name": "onprem", "cluster": cluster}],
            "users": [{"name": "refresher", "user": user}],
            "contexts": [{"name": "onprem", "context": {"cluster": "onprem", "user": "refresher"}}],
            "current-context": "onprem",
        }
    )


def service_account_token(admin: Cluster, namespace: str, name: str) -> str:
    """What `kubectl create token` asks for: a TokenRequest for the account (1 hour)."""
    request = k8s.AuthenticationV1TokenRequest(spec=k8s.V1TokenRequestSpec(audiences=[], expiration_seconds=3600))
    return str(admin.core.create_namespaced_service_account_token(name, namespace, request).status.token)


@pytest.fixture
def onprem(
    real: tuple[RealKube, Cluster], aws: MotoAws, monkeypatch: pytest.MonkeyPatch
) -> tuple[RealKube, Cluster, str, str]:
    kube, admin = real
    prefix = f"sa{uuid.uuid4().hex[:6]}"
    account = f"refresher-{prefix}"
    config = configure(
        monkeypatch,
        clusters=[{"name": "onprem", "kubeconfigSecretArn": SECRET_ARN}],
        namespaces=[f"{prefix}-*"],
        serviceAccounts=["default"],
        kubernetesServiceAccount=f"kube-system/{account}",
    )
    admin.apply(render(config))
    for team in ("a", "b"):
        admin.namespace(f"{prefix}-{team}")
    document = kubeconfig(kube, {"token": service_account_token(admin, "kube-system", account)})
    aws.client("secretsmanager").create_secret(Name="onprem-kubeconfig", SecretString=document)
    monkeypatch.setenv("KUBECONFIG_SECRET", "onprem-kubeconfig")
    monkeypatch.delenv("CLUSTER_NAME")
    return kube, admin, prefix, account


def test_create_fresh_update_and_a_rotated_token_that_is_never_logged(
    onprem: tuple[RealKube, Cluster, str, str], aws: MotoAws, invoke: Invoke, logs: Callable[[], str]
) -> None:
    kube, admin, prefix, account = onprem
    names = [f"{prefix}-a", f"{prefix}-b"]
    assert outcomes(invoke()) == dict.fromkeys(names, "created")
    assert outcomes(invoke()) == dict.fromkeys(names, "unchanged")
    # Rotation: the account is recreated, so every token issued before it stops working.
    admin.core.delete_namespaced_service_account(account, "kube-system")
    admin.core.create_namespaced_service_account(
        "kube-system", k8s.V1ServiceAccount(metadata=k8s.V1ObjectMeta(name=account))
    )
    rotated = kubeconfig(kube, {"token": service_account_token(admin, "kube-system", account)})
    aws.client("secretsmanager").put_secret_value(SecretId="onprem-kubeconfig", SecretString=rotated)
    assert outcomes(invoke({"force": True})) == dict.fromkeys(names, "updated")
    pulls = admin.core.read_namespaced_service_account("default", names[0]).image_pull_secrets
    assert [ref.name for ref in pulls] == ["regcred"]
    written = logs()
    tokens = [yaml.safe_load(rotated)["users"][0]["user"]["token"]]
    assert written
    assert [token[:8] for token in tokens if token in written or token.split(".")[-1] in written] == []


def test_a_client_certificate_works_from_memory(
    onprem: tuple[RealKube, Cluster, str, str], aws: MotoAws, invoke: Invoke
) -> None:
    kube, admin, prefix, account = onprem
    certificate, key = kube.client_certificate(f"system:serviceaccount:kube-system:{account}", "clients")
    document = kubeconfig(
        kube,
        {
            "client-certificate-data": base64.b64encode(certificate).decode(),
            "client-key-data": base64.b64encode(key).decode(),
        },
    )
    aws.client("secretsmanager").put_secret_value(SecretId="onprem-kubeconfig", SecretString=document)
    assert set(outcomes(invoke()).values()) == {"created"}
    assert admin.auths(f"{prefix}-a")


def test_the_shipped_script_builds_a_kubeconfig_that_works(
    onprem: tuple[RealKube, Cluster, str, str], aws: MotoAws, invoke: Invoke, tmp_path: Path
) -> None:
    """deploy/kubeconfig-for-service-account.sh, run with the admin's kubectl: its output, stored as
    the secret, is all the Lambda needs (a TokenRequest token for one hour)."""
    kube, _, _, account = onprem
    admin = write_kubeconfig(tmp_path / "admin", server=kube.url, ca_pem=kube.ca_pem, token=ADMIN_TOKEN, name="onprem")
    script = ROOT / "deploy" / "kubeconfig-for-service-account.sh"
    made = subprocess.run(  # noqa: S603 - our own script
        [str(script), f"kube-system/{account}", "1h"],
        env=os.environ | {"KUBECONFIG": str(admin)},
        capture_output=True,
        text=True,
        check=True,
    )
    document = yaml.safe_load(made.stdout)
    assert document["users"][0]["user"]["token"].count(".") == 2  # a JWT from the TokenRequest API
    aws.client("secretsmanager").put_secret_value(SecretId="onprem-kubeconfig", SecretString=made.stdout)
    assert set(outcomes(invoke()).values()) == {"created"}


def test_a_cluster_served_from_a_host_gets_its_confined_identity_from_make_rbac(
    real: tuple[RealKube, Cluster], aws: MotoAws, tmp_path: Path
) -> None:
    """No Lambda and no kubeconfig secret: `make rbac HOST=1` renders the service account and its grants
    for an EKS-style configuration, and the CLI on the host runs with that account's token only."""
    kube, admin = real
    prefix = f"ho{uuid.uuid4().hex[:6]}"
    account = f"refresher-{prefix}"
    rendered = subprocess.run(  # noqa: S603 - our own module, as `make rbac HOST=1` runs it
        [
            sys.executable,
            "-m",
            "infra.rbac",
            "--host",
            "clusterName=onprem",
            f"stackName=Host{prefix}",
            f"namespaces={prefix}-*",
            f"kubernetesServiceAccount=kube-system/{account}",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    manifest = list(yaml.safe_load_all(rendered.stdout))
    identity = {"kind": "ServiceAccount", "namespace": "kube-system", "name": account}
    subjects = [subject for item in manifest for subject in item.get("subjects", [])]
    assert subjects
    assert all(subject == identity for subject in subjects)  # no EKS group bound
    assert ("ServiceAccount", account) in [(item["kind"], item["metadata"]["name"]) for item in manifest]
    admin.apply(manifest)
    admin.namespace(f"{prefix}-a")
    path = tmp_path / "kubeconfig"
    path.write_text(kubeconfig(kube, {"token": service_account_token(admin, "kube-system", account)}))
    argv = ["--kubeconfig", str(path), "--namespace", f"{prefix}-*", "--output", "json"]
    for command, expected in (("refresh", 0), ("check", 0)):
        completed = subprocess.run(  # noqa: S603 - our own module
            [sys.executable, "-m", "lambda_fn", command, *argv],
            capture_output=True,
            text=True,
            env={**os.environ, "AWS_REGION": "us-east-1"},
            timeout=120,
            check=False,
        )
        assert completed.returncode == expected, completed.stdout + completed.stderr
    assert admin.core.read_namespaced_secret("regcred", f"{prefix}-a").metadata.labels
