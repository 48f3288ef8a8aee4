"""Every test starts from an environment without the refresher's settings and with Powertools quiet."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator

import pytest

from lambda_fn.config import ENV_NAMES
from localkube import StsIdentityResolver
from localkube.eks_auth import AccessEntry, EksTokenAuthenticator
from sandbox import real_apiserver
from sandbox.eks_cluster import CLUSTER_NAME, KUBERNETES_GROUP
from sandbox.moto_aws import ROLE_ARN, MotoAws, moto_aws
from sandbox.real_apiserver import RealKube

SETTING_VARIABLES = [*ENV_NAMES.values(), "AWS_DEFAULT_REGION", "AWS_ENDPOINT_URL", "AWS_PROFILE", "KUBECONFIG"]


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in SETTING_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("POWERTOOLS_TRACE_DISABLED", "true")
    monkeypatch.setenv("POWERTOOLS_DEV", "false")


@pytest.fixture(scope="session")
def aws() -> Iterator[MotoAws]:
    """moto's server, once per session; integration tests reset it per test."""
    with moto_aws() as server:
        yield server


@pytest.fixture(scope="session")
def real_kube(aws: MotoAws) -> Iterator[RealKube]:
    """A real kube-apiserver + etcd, built from Go modules (apiserver/build.sh), authenticating
    EKS tokens through moto's STS; skipped LOUDLY where Go is missing."""
    if shutil.which("go") is None:
        message = "SKIPPING the real kube-apiserver tier: Go is not installed (apiserver/build.sh needs it)"
        print(f"\n*** {message} ***")
        pytest.skip(message)
    try:
        real_apiserver.build()
    except subprocess.CalledProcessError as exc:
        pytest.fail(f"apiserver/build.sh failed ({exc.returncode}); run it to see Go's output")
    authenticator = EksTokenAuthenticator(
        cluster_name=CLUSTER_NAME,
        resolve_arn=StsIdentityResolver(aws.url),
        access_entries={ROLE_ARN: AccessEntry("ecr-token-refresher", (KUBERNETES_GROUP,))},
        secret_keys={},  # filled per test with that test's role credentials
    )
    with RealKube(authenticator) as kube:
        print(f"\nkube-apiserver ready in {kube.startup_seconds:.1f}s")
        yield kube
