"""Clusters outside EKS: the Lambda reaches a cluster through a kubeconfig held in Secrets Manager
(moto's), read afresh every run, never written to disk; each way it can be wrong names the secret or
the context and the fix, and nothing is written."""

from __future__ import annotations

import base64
import io
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import trustme
import yaml

from lambda_fn.cli import main
from lambda_fn.errors import ClusterLookupError, ConfigError, RefreshFailed
from localkube import LocalKube, User
from sandbox.eks_cluster import refresher_rules
from sandbox.moto_aws import MotoAws

Invoke = Callable[..., dict[str, Any]]
SECRET_NAME = "onprem/kubeconfig"
TOKEN = "onprem-refresher-token"


def kubeconfig(server: str, ca_pem: bytes, user: dict[str, Any], *, context: str = "onprem") -> str:
    return yaml.safe_dump(
        {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [
                {
                    "name": "c",
                    "cluster": {"server": server, "certificate-authority-data": base64.b64encode(ca_pem).decode()},
                }
            ],
            "users": [{"name": "u", "user": user}],
            "contexts": [{"name": context, "context": {"cluster": "c", "user": "u"}}],
            "current-context": context,
        }
    )


@pytest.fixture
def onprem(aws: MotoAws, kube: LocalKube, monkeypatch: pytest.MonkeyPatch) -> LocalKube:
    """The local API server as a cluster outside EKS: a token user with the refresher's rules, its
    kubeconfig in Secrets Manager, and the function pointed at it (no CLUSTER_NAME)."""
    kube.users[TOKEN] = User(
        "system:serviceaccount:kube-system:ecr-token-refresher", token=TOKEN, rules=refresher_rules()
    )
    aws.client("secretsmanager").create_secret(
        Name=SECRET_NAME, SecretString=kubeconfig(kube.url, kube.ca_pem, {"token": TOKEN})
    )
    monkeypatch.delenv("CLUSTER_NAME")
    monkeypatch.setenv("KUBECONFIG_SECRET", SECRET_NAME)
    monkeypatch.setenv("NAMESPACES", "team-*")
    return kube


def put(aws: MotoAws, document: str) -> None:
    aws.client("secretsmanager").put_secret_value(SecretId=SECRET_NAME, SecretString=document)


def test_the_lambda_reaches_a_cluster_through_its_kubeconfig_secret(onprem: LocalKube, invoke: Invoke) -> None:
    first = invoke()
    assert (first["cluster"], first["counts"]["created"]) == ("onprem", 2)  # named by its context
    assert invoke()["counts"]["unchanged"] == 2
    assert {r.user for r in onprem.requests} == {"system:serviceaccount:kube-system:ecr-token-refresher"}


def test_a_secret_in_another_region_is_read_in_that_region(
    aws: MotoAws, onprem: LocalKube, invoke: Invoke, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The function runs in us-east-1; the kubeconfig is held in eu-west-1 and named by its ARN."""
    elsewhere = aws.client("secretsmanager", region_name="eu-west-1").create_secret(
        Name="onprem-elsewhere",
        SecretString=aws.client("secretsmanager").get_secret_value(SecretId=SECRET_NAME)["SecretString"],
    )
    monkeypatch.setenv("KUBECONFIG_SECRET", elsewhere["ARN"])
    assert ":eu-west-1:" in elsewhere["ARN"]
    result = invoke()
    assert {r["outcome"] for r in result["namespaces"]} == {"created"}


def test_the_cli_reads_the_same_secret(onprem: LocalKube, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("KUBECONFIG_SECRET")
    stdout, stderr = io.StringIO(), io.StringIO()
    argv = ["refresh", "--kubeconfig-secret", SECRET_NAME, "--namespace", "team-a", "--output", "json"]
    code = main(argv, stdout=stdout, stderr=stderr)
    assert stderr.getvalue() == ""
    result = json.loads(stdout.getvalue())
    assert (code, result["target"]) == (0, f"context onprem of kubeconfig secret {SECRET_NAME} ({onprem.url})")
    assert result["namespaces"] == [{"namespace": "team-a", "outcome": "created"}]


def test_a_rotated_token_is_used_on_the_next_run(aws: MotoAws, onprem: LocalKube, invoke: Invoke) -> None:
    invoke()
    onprem.users["rotated-token"] = onprem.users.pop(TOKEN)  # the old token no longer works
    put(aws, kubeconfig(onprem.url, onprem.ca_pem, {"token": "rotated-token"}))
    assert invoke({"force": True})["counts"]["updated"] == 2


@pytest.mark.parametrize(
    ("document", "message"),
    [
        ("clusters: [not, a, kubeconfig", f"KUBECONFIG_SECRET: {SECRET_NAME}: does not hold a kubeconfig"),
        ("exec", "a user with exec cannot run in the Lambda (it runs no binaries"),
        ("auth-provider", "a user with auth-provider cannot run in the Lambda"),
        ("tokenFile", "the user names files, which cannot run in the Lambda"),
        ("http", "the server must be an https:// URL"),
    ],
)
def test_a_kubeconfig_the_lambda_cannot_use_is_refused_before_any_request(
    aws: MotoAws, onprem: LocalKube, invoke: Invoke, document: str, message: str
) -> None:
    users: dict[str, dict[str, Any]] = {
        "exec": {"exec": {"command": "aws"}},
        "auth-provider": {"auth-provider": {"name": "oidc"}},
        "tokenFile": {"tokenFile": "/var/run/token"},
    }
    if document in users:
        document = kubeconfig(onprem.url, onprem.ca_pem, users[document])
    elif document == "http":
        document = kubeconfig(onprem.url.replace("https:", "http:"), onprem.ca_pem, {"token": TOKEN})
    put(aws, document)
    with pytest.raises(ConfigError, match="invalid kubeconfig secret") as refused:
        invoke()
    assert message in str(refused.value)
    assert TOKEN not in str(refused.value)
    assert onprem.requests == []


def test_an_unknown_context_names_the_ones_there_are(
    onprem: LocalKube, invoke: Invoke, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KUBECONFIG_CONTEXT", "elsewhere")
    with pytest.raises(ConfigError, match=r"context 'elsewhere' is not in it \(contexts: onprem\); set KUBECONFIG_CON"):
        invoke()
    assert onprem.requests == []


def test_a_missing_secret_names_it_and_the_fix(
    onprem: LocalKube, invoke: Invoke, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KUBECONFIG_SECRET", "onprem/nope")
    with pytest.raises(ClusterLookupError, match="kubeconfig secret 'onprem/nope' could not be read") as missing:
        invoke()
    assert "ResourceNotFoundException" in str(missing.value)
    assert "create it, or set KUBECONFIG_SECRET" in str(missing.value)
    assert onprem.requests == []


@pytest.mark.parametrize("wrong", ["ca", "token"])
def test_a_wrong_ca_or_token_fails_every_namespace_and_writes_nothing(
    aws: MotoAws, onprem: LocalKube, invoke: Invoke, logs: Callable[[], str], wrong: str
) -> None:
    ca = bytes(trustme.CA().cert_pem.bytes()) if wrong == "ca" else onprem.ca_pem
    put(aws, kubeconfig(onprem.url, ca, {"token": "not-a-known-token" if wrong == "token" else TOKEN}))
    with pytest.raises(RefreshFailed):
        invoke()
    expected = "CERTIFICATE_VERIFY_FAILED" if wrong == "ca" else "401 Unauthorized"
    assert expected in logs()
    assert onprem.store.find("secrets", "team-a", "regcred") is None


def test_the_kubeconfig_is_never_written_to_disk(onprem: LocalKube, invoke: Invoke, tmp_path: Path) -> None:
    """The client's own loader writes certificate data to temporary files; this path does not."""
    import tempfile  # noqa: PLC0415

    before = set(Path(tempfile.gettempdir()).iterdir())
    invoke()
    created = {path for path in set(Path(tempfile.gettempdir()).iterdir()) - before if path.is_file()}
    assert [
        path for path in created if TOKEN.encode() in path.read_bytes() or b"CERTIFICATE" in path.read_bytes()
    ] == []
