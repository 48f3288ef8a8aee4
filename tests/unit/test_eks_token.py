"""The EKS bearer token: built like `aws eks get-token`, bound to one cluster by its signature."""

from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs, urlsplit

import boto3
import pytest

from lambda_fn.aws import generate_eks_token, registry_host
from lambda_fn.config import RegistrySpec
from localkube.eks_auth import STS_HOST, AccessEntry, EksTokenAuthenticator, TokenRejected

ARN = "arn:aws:sts::123456789012:assumed-role/ecr-token-refresher/lambda"
ROLE = "arn:aws:iam::123456789012:role/ecr-token-refresher"


@pytest.fixture
def session() -> boto3.Session:
    return boto3.Session(
        aws_access_key_id="AKIDEXAMPLE", aws_secret_access_key="secret-example", region_name="eu-west-1"
    )


def decode(token: str) -> str:
    body = token.removeprefix("k8s-aws-v1.")
    return base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)).decode()


def authenticator(cluster: str = "prod", **changes: object) -> EksTokenAuthenticator:
    options: dict[str, object] = {
        "resolve_arn": lambda url, name: ARN,
        "access_entries": {ROLE: AccessEntry("refresher", ("ecr-token-refresher",))},
        "secret_keys": {"AKIDEXAMPLE": "secret-example"},
    }
    return EksTokenAuthenticator(cluster_name=cluster, **(options | changes))  # type: ignore[arg-type]


def test_the_token_is_a_presigned_regional_sts_url_with_the_cluster_header_signed(session: boto3.Session) -> None:
    token = generate_eks_token(session, cluster_name="prod", region="eu-west-1")
    assert token.startswith("k8s-aws-v1.")
    assert "=" not in token
    url = urlsplit(decode(token))
    query = parse_qs(url.query)
    assert (url.scheme, url.hostname, url.path) == ("https", "sts.eu-west-1.amazonaws.com", "/")
    assert query["Action"] == ["GetCallerIdentity"]
    assert query["X-Amz-Expires"] == ["60"]
    assert "x-k8s-aws-id" in query["X-Amz-SignedHeaders"][0].split(";")


def test_the_local_authenticator_accepts_it_for_its_cluster_only(session: boto3.Session) -> None:
    token = generate_eks_token(session, cluster_name="prod", region="eu-west-1")
    assert authenticator().authenticate(token) == AccessEntry("refresher", ("ecr-token-refresher",))
    with pytest.raises(TokenRejected, match="not signed for cluster 'staging'"):
        authenticator("staging").authenticate(token)


def test_the_endpoint_override_does_not_leak_into_the_token(
    session: boto3.Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:5000")
    monkeypatch.setenv("AWS_ENDPOINT_URL_STS", "http://127.0.0.1:5000")
    token = generate_eks_token(
        boto3.Session(aws_access_key_id="AKIDEXAMPLE", aws_secret_access_key="secret-example", region_name="eu-west-1"),
        cluster_name="prod",
        region="eu-west-1",
    )
    assert urlsplit(decode(token)).hostname == "sts.eu-west-1.amazonaws.com"


def test_expired_tokens_are_rejected(session: boto3.Session) -> None:
    token = generate_eks_token(session, cluster_name="prod", region="eu-west-1")
    later = authenticator(now=lambda: datetime.now(UTC) + timedelta(minutes=16))
    with pytest.raises(TokenRejected, match="expired"):
        later.authenticate(token)


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("https://sts.amazonaws.com/?Action=GetCallerIdentity", "regional STS host"),
        ("http://sts.eu-west-1.amazonaws.com/?Action=GetCallerIdentity", "regional STS host"),
        ("https://evil.example/?Action=GetCallerIdentity", "regional STS host"),
        ("https://sts.eu-west-1.amazonaws.com/x?Action=GetCallerIdentity", "unexpected path"),
        ("https://sts.eu-west-1.amazonaws.com/?Action=GetCallerIdentity&Foo=1", "unexpected query parameters"),
        ("https://sts.eu-west-1.amazonaws.com/?Action=AssumeRole", "not GetCallerIdentity"),
        ("https://sts.eu-west-1.amazonaws.com/?Action=GetCallerIdentity&X-Amz-SignedHeaders=host", "x-k8s-aws-id"),
    ],
)
def test_malformed_tokens_are_rejected(url: str, reason: str) -> None:
    token = "k8s-aws-v1." + base64.urlsafe_b64encode(url.encode()).decode().rstrip("=")
    with pytest.raises(TokenRejected, match=reason):
        authenticator().authenticate(token)


def test_a_principal_without_access_entry_is_rejected(session: boto3.Session) -> None:
    token = generate_eks_token(session, cluster_name="prod", region="eu-west-1")
    with pytest.raises(TokenRejected, match="no access entry"):
        authenticator(access_entries={}).authenticate(token)


@pytest.mark.parametrize(
    ("region", "host"),
    [("cn-north-1", "sts.cn-north-1.amazonaws.com.cn"), ("us-gov-west-1", "sts.us-gov-west-1.amazonaws.com")],
)
def test_the_sts_host_comes_from_the_regions_partition(session: boto3.Session, region: str, host: str) -> None:
    url = urlsplit(decode(generate_eks_token(session, cluster_name="prod", region=region)))
    assert url.hostname == host
    assert f"/{region}/sts/aws4_request" in parse_qs(url.query)["X-Amz-Credential"][0]
    assert STS_HOST.match(host)  # the verifier accepts both partitions' suffixes


@pytest.mark.parametrize(
    ("account", "region", "host"),
    [
        ("123456789012", "cn-north-1", "123456789012.dkr.ecr.cn-north-1.amazonaws.com.cn"),
        ("123456789012", "us-gov-west-1", "123456789012.dkr.ecr.us-gov-west-1.amazonaws.com"),
    ],
)
def test_registry_hosts_follow_the_partition(account: str, region: str, host: str) -> None:
    assert registry_host(account, region) == host
    assert RegistrySpec.parse(f"{host}=arn:{'aws-cn' if 'cn' in region else 'aws-us-gov'}:iam::{account}:role/puller")
