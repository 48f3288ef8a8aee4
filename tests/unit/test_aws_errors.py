"""AWS refusals moto cannot produce (DescribeCluster denied, AssumeRole denied), with botocore's
Stubber: each becomes the project's error with the fix, and nothing after it runs."""

from __future__ import annotations

from typing import Any, Literal

import boto3
import pytest
from botocore.stub import Stubber

from lambda_fn.aws import ClusterDirectory, EcrTokenSource, KubeconfigSecrets
from lambda_fn.errors import ClusterLookupError, CredentialError


class StubbedSession:
    """A boto3 Session whose clients are stubbed; records the services asked for."""

    def __init__(self) -> None:
        self._session = boto3.Session(
            aws_access_key_id="AKIDEXAMPLE", aws_secret_access_key="x", region_name="eu-west-1"
        )
        self.stubs: dict[str, Stubber] = {}
        self.clients: dict[str, Any] = {}

    def stub(self, service: Literal["ecr", "eks", "lambda", "secretsmanager", "sts"]) -> Stubber:
        self.clients[service] = self._session.client(service, region_name="eu-west-1")
        self.stubs[service] = Stubber(self.clients[service])
        self.stubs[service].activate()
        return self.stubs[service]

    def client(self, service: str, **_: Any) -> Any:
        return self.clients[service]


def test_describe_cluster_denied_names_the_permission() -> None:
    session = StubbedSession()
    session.stub("eks").add_client_error(
        "describe_cluster",
        service_error_code="AccessDeniedException",
        service_message="not authorized",
        http_status_code=403,
    )
    with pytest.raises(ClusterLookupError) as caught:
        ClusterDirectory().endpoint(session, cluster_name="prod", region="eu-west-1")  # type: ignore[arg-type]
    assert "AccessDeniedException: not authorized" in str(caught.value)
    assert "eks:DescribeCluster" in str(caught.value)


def test_a_cluster_ca_that_is_not_pem_is_refused() -> None:
    session = StubbedSession()
    session.stub("eks").add_response(
        "describe_cluster",
        {
            "cluster": {
                "name": "prod",
                "endpoint": "https://x.eks.amazonaws.com",
                "certificateAuthority": {"data": "bm90IGEgY2VydA=="},
            }
        },
    )
    with pytest.raises(ClusterLookupError, match="not PEM"):
        ClusterDirectory().endpoint(session, cluster_name="prod", region="eu-west-1")  # type: ignore[arg-type]


def test_assume_role_denied_names_the_trust_policy_and_fetches_no_token() -> None:
    session = StubbedSession()
    session.stub("sts").add_client_error(
        "assume_role",
        service_error_code="AccessDenied",
        service_message="not authorized to assume",
        http_status_code=403,
    )
    session.stub("ecr")  # no response queued: any ECR call would fail the test
    with pytest.raises(CredentialError) as caught:
        EcrTokenSource(session).fetch(region="eu-west-1", role_arn="arn:aws:iam::210987654321:role/puller")  # type: ignore[arg-type]
    assert "could not assume arn:aws:iam::210987654321:role/puller (AccessDenied: not authorized to assume)" in str(
        caught.value
    )
    assert "trust policy" in str(caught.value)
    session.stubs["ecr"].assert_no_pending_responses()


@pytest.mark.parametrize(
    ("code", "fix"),
    [
        ("AccessDeniedException", "grant the function's role secretsmanager:GetSecretValue on it"),
        ("DecryptionFailure", "grant the function's role kms:Decrypt on the secret's key"),
    ],
)
def test_a_kubeconfig_secret_the_role_may_not_read_names_the_grant(code: str, fix: str) -> None:
    session = StubbedSession()
    session.stub("secretsmanager").add_client_error(
        "get_secret_value", service_error_code=code, service_message="not for you", http_status_code=400
    )
    with pytest.raises(ClusterLookupError) as refused:
        KubeconfigSecrets(session).read("onprem/kubeconfig")  # type: ignore[arg-type]
    assert f"kubeconfig secret 'onprem/kubeconfig' could not be read ({code}: not for you): {fix}" in str(refused.value)
