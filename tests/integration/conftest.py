"""moto's server (once per session) and a local EKS cluster (per test), wired as the Lambda sees them."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from localkube import LocalKube
from sandbox.eks_cluster import CLUSTER_NAME, local_eks_cluster
from sandbox.lambda_context import FakeLambdaContext
from sandbox.moto_aws import AwsCredentials, MotoAws
from sandbox.real_apiserver import RealKube
from tests.integration.real_cluster import Cluster

SCHEDULED = json.loads((Path(__file__).parents[2] / "events" / "scheduled.json").read_text())


@pytest.fixture
def credentials(aws: MotoAws, monkeypatch: pytest.MonkeyPatch) -> AwsCredentials:
    """A fresh moto, and the environment the Lambda runtime would give the function."""
    aws.reset()
    role = aws.assume_refresher_role()
    for name, value in aws.environment(role).items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("CLUSTER_NAME", CLUSTER_NAME)
    return role


@pytest.fixture
def kube(aws: MotoAws, credentials: AwsCredentials) -> Iterator[LocalKube]:
    cluster = local_eks_cluster(aws, credentials)
    for name in ("default", "team-a", "team-b", "kube-system", "other"):
        cluster.store.add_namespace(name)
    yield cluster
    cluster.stop()


@pytest.fixture
def real(real_kube: RealKube, aws: MotoAws, credentials: AwsCredentials) -> Iterator[tuple[RealKube, Cluster]]:
    """The real server registered in moto as the EKS cluster; this test's role may sign tokens.
    What a test applies through the admin client is removed after it."""
    assert real_kube.authenticator is not None
    real_kube.authenticator.secret_keys = {credentials.access_key_id: credentials.secret_access_key}
    aws.create_eks_cluster(CLUSTER_NAME, endpoint=real_kube.url, ca_pem=real_kube.ca_pem)
    cluster = Cluster(real_kube)
    yield real_kube, cluster
    cluster.remove_applied()


@pytest.fixture(autouse=True)
def forget_cached_clusters() -> None:
    """Each test registers a new cluster endpoint under the same name; a warm container would not."""
    from lambda_fn.runner import CLUSTERS  # noqa: PLC0415

    CLUSTERS.forget(cluster_name=CLUSTER_NAME, region="us-east-1")


@pytest.fixture
def logs(capsys: pytest.CaptureFixture[str], seen: list[str]) -> Callable[[], str]:
    """Everything the function printed or logged so far (Logger, EMF metrics, stdout, stderr)."""

    def read() -> str:
        captured = capsys.readouterr()
        seen.append(captured.out + captured.err)
        return "".join(seen)

    return read


@pytest.fixture
def seen() -> list[str]:
    return []


# moto's ECR password for the sandbox account, the EKS token's prefix, the kubeconfig secrets' tokens.
SECRET_MATERIAL = (
    "123456789012-auth-token",
    "210987654321-auth-token",
    "k8s-aws-v1.",
    "onprem-refresher-token",
    "rotated-token",
)


@pytest.fixture(autouse=True)
def no_secret_material_anywhere(
    capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture, seen: list[str]
) -> Iterator[None]:
    """After every integration test: no password, auth or bearer token in anything captured."""
    yield
    captured = capsys.readouterr()
    everything = "".join(seen) + captured.out + captured.err + caplog.text
    for text in [*SECRET_MATERIAL, *(base64.b64encode(f"AWS:{m}".encode()).decode() for m in SECRET_MATERIAL[:2])]:
        assert text not in everything, f"secret material {text[:12]}... leaked into the output"


@pytest.fixture
def invoke() -> Callable[..., dict[str, Any]]:
    from lambda_fn.handler import lambda_handler  # noqa: PLC0415 - after the environment is set

    def call(event: dict[str, Any] | None = None, *, timeout: float = 120.0) -> dict[str, Any]:
        result: dict[str, Any] = lambda_handler(SCHEDULED if event is None else event, FakeLambdaContext(timeout))
        return result

    return call
