"""boto3 adapters: ECR tokens, the EKS cluster's endpoint, the EKS bearer token.

Endpoints come from boto3's own resolution (AWS_ENDPOINT_URL_ECR, AWS_ENDPOINT_URL_EKS, ...), except
the STS URL inside the EKS token: presigning makes no call, and EKS accepts only the regional host,
which botocore's partition data names (amazonaws.com, amazonaws.com.cn in China).
"""

from __future__ import annotations

import base64
import binascii
import functools
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import boto3
import botocore.loaders
import botocore.regions
import botocore.session
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from lambda_fn.errors import ClusterLookupError, ConfigError, CredentialError, Problem
from lambda_fn.ports import AuthorizationToken

BOTO_ATTEMPTS = 5
# botocore's standard retry mode retries throttling (ECR allows ~20 GetAuthorizationToken calls/s)
# and transient errors with backoff; the timeouts keep a hung endpoint well inside the Lambda's.
BOTO_CONFIG = Config(
    retries={"mode": "standard", "total_max_attempts": BOTO_ATTEMPTS},
    connect_timeout=5,
    read_timeout=10,
    user_agent_extra="ecr-token-refresher",
)
EKS_TOKEN_PREFIX = "k8s-aws-v1."  # noqa: S105 - a prefix, not a secret
EKS_CLUSTER_HEADER = "x-k8s-aws-id"
# The presigned URL is valid for 60 s; EKS accepts the token for 15 minutes from signing.
PRESIGN_SECONDS = 60
SESSION_NAME = "ecr-token-refresher"
ASSUMED_ROLE = re.compile(r"^arn:(?P<partition>[^:]+):sts::(?P<account>\d{12}):assumed-role/(?P<role>[^/]+)/.+$")


# Standard mode sleeps up to 1, 2, 4, 8 s before the 2nd to 5th attempts (attempts count the first).
BACKOFF_BOUND = {BOTO_ATTEMPTS: 15.0, 3: 3.0, 1: 0.0}
MIN_TIMEOUT = 0.5


def boto_config(seconds_left: float | None) -> Config:
    """BOTO_CONFIG, with attempts and timeouts that let one AWS call (all its attempts and backoff)
    take at most half the time left: asked afresh before every call, a run's calls together never
    outlast it. Read timeouts bound each socket read, as botocore has no whole-response timeout."""
    if seconds_left is None:
        return BOTO_CONFIG
    share = max(seconds_left, 0) / 2
    attempts = BOTO_ATTEMPTS if share >= 60 else 3 if share >= 10 else 1
    per_attempt = (share - BACKOFF_BOUND[attempts]) / attempts
    return BOTO_CONFIG.merge(
        Config(
            retries={"mode": "standard", "total_max_attempts": attempts},
            connect_timeout=max(MIN_TIMEOUT, min(5.0, per_attempt / 3)),
            read_timeout=max(MIN_TIMEOUT, min(10.0, per_attempt * 2 / 3)),
        )
    )


ConfigSource = Callable[[], Config]  # the Config for the next AWS call


def deadline_configs(seconds_left: Callable[[], float | None]) -> ConfigSource:
    """Configs for the calls of one run, each sized by boto_config from the time left when it is made."""
    return lambda: boto_config(seconds_left())


def unbounded() -> Config:
    return BOTO_CONFIG


@functools.cache
def dns_suffix(region: str) -> str:
    """The DNS suffix of `region`'s partition, from botocore's endpoint data: nothing hard-codes it."""
    resolver = botocore.regions.EndpointResolver(botocore.loaders.create_loader().load_data("endpoints"))
    suffix: str = resolver.get_partition_dns_suffix(resolver.get_partition_for_region(region))
    return suffix


def registry_host(account: str, region: str) -> str:
    """An account's ECR registry host in `region`, as GetAuthorizationToken's proxyEndpoint names it."""
    return f"{account}.dkr.ecr.{region}.{dns_suffix(region)}"


def caller_registry_host(session: boto3.Session) -> str | None:
    """The caller's own registry host (STS GetCallerIdentity, the session's region); None without
    credentials or a region."""
    if not session.region_name:
        return None
    try:
        account = session.client("sts", config=BOTO_CONFIG).get_caller_identity()["Account"]
    except (ClientError, BotoCoreError):
        return None
    return registry_host(account, session.region_name)


def new_session(region: str | None, *, profile: str | None) -> boto3.Session:
    """A boto3 session; ConfigError (not botocore's traceback) when `profile` (AWS_PROFILE) is unknown."""
    if profile:
        known = botocore.session.Session().available_profiles
        if profile not in known:
            raise ConfigError(
                [
                    Problem(
                        "AWS_PROFILE",
                        f"profile {profile!r} is not in ~/.aws/config or ~/.aws/credentials "
                        f"(known: {', '.join(sorted(known)) or 'none'}); set AWS_PROFILE to one of them or unset it",
                    )
                ],
                source="AWS configuration",
            )
    return boto3.Session(region_name=region)


def describe_error(exc: BaseException) -> str:
    """`Code: message` of an AWS error; never the request's credentials (nor an HTML error page)."""
    if isinstance(exc, ClientError):
        error = exc.response.get("Error", {})
        message = " ".join(str(error.get("Message", "")).split())
        if message.startswith("<"):
            message = "the endpoint does not offer this call"
        return f"{error.get('Code', 'Error')}: {message[:300]}".rstrip(": ")
    return str(exc)


class EcrTokenSource:
    """RegistryTokenSource over ECR GetAuthorizationToken, optionally as an assumed role."""

    def __init__(self, session: boto3.Session, *, configs: ConfigSource = unbounded) -> None:
        self._session = session
        self._configs = configs

    def fetch(self, *, region: str, role_arn: str | None) -> AuthorizationToken:
        session = self._session if role_arn is None else self._assume(role_arn, region)
        ecr = session.client("ecr", region_name=region, config=self._configs())
        try:
            data = ecr.get_authorization_token()["authorizationData"][0]
        except (ClientError, BotoCoreError) as exc:
            raise CredentialError(f"ECR GetAuthorizationToken in {region} failed ({describe_error(exc)})") from exc
        return AuthorizationToken(
            token=data["authorizationToken"],
            expires_at=data["expiresAt"],
            proxy_endpoint=data["proxyEndpoint"],
        )

    def _assume(self, role_arn: str, region: str) -> boto3.Session:
        sts = self._session.client("sts", region_name=region, config=self._configs())
        try:
            credentials = sts.assume_role(RoleArn=role_arn, RoleSessionName=SESSION_NAME)["Credentials"]
        except (ClientError, BotoCoreError) as exc:
            raise CredentialError(
                f"could not assume {role_arn} ({describe_error(exc)}): its trust policy must allow this function's role"
            ) from exc
        return boto3.Session(
            aws_access_key_id=credentials["AccessKeyId"],
            aws_secret_access_key=credentials["SecretAccessKey"],
            aws_session_token=credentials["SessionToken"],
            region_name=region,
        )


class KubeconfigSecrets:
    """Kubeconfigs held in Secrets Manager, read on every run (a rotation takes effect on the next)."""

    def __init__(self, session: boto3.Session, *, configs: ConfigSource = unbounded) -> None:
        self._session = session
        self._configs = configs

    def read(self, secret_id: str) -> str:
        """The secret's string; ClusterLookupError naming the secret and the fix (never its value).

        A secret given by ARN is read in the ARN's region, which may not be the function's own."""
        region = secret_id.split(":")[3] if secret_id.startswith("arn:") and secret_id.count(":") >= 6 else None
        client = self._session.client("secretsmanager", region_name=region or None, config=self._configs())
        try:
            answer = client.get_secret_value(SecretId=secret_id)
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code", "")
            fix = {
                "ResourceNotFoundException": "create it, or set KUBECONFIG_SECRET to an existing secret's ARN",
                "AccessDeniedException": "grant the function's role secretsmanager:GetSecretValue on it "
                "(and kms:Decrypt on its key, if it has its own)",
                "DecryptionFailure": "grant the function's role kms:Decrypt on the secret's key",
            }.get(code, "check the secret and the role's permissions")
            raise ClusterLookupError(
                f"kubeconfig secret {secret_id!r} could not be read ({describe_error(exc)}): {fix}; nothing was written"
            ) from exc
        except BotoCoreError as exc:
            raise ClusterLookupError(f"kubeconfig secret {secret_id!r} could not be read ({exc})") from exc
        text = answer.get("SecretString")
        if not text:
            raise ClusterLookupError(
                f"kubeconfig secret {secret_id!r} holds no string: store the kubeconfig (YAML or JSON) as its "
                "SecretString; nothing was written"
            )
        return str(text)


@dataclass(frozen=True)
class ClusterEndpoint:
    """Where the cluster's API server is and the CA that signs its certificate (PEM)."""

    url: str
    ca_pem: bytes = field(repr=False)


class ClusterDirectory:
    """DescribeCluster, cached for the life of a warm Lambda container (endpoints rarely change)."""

    def __init__(self) -> None:
        self._cache: dict[tuple[str, str], ClusterEndpoint] = {}
        self._lock = threading.Lock()

    def endpoint(
        self, session: boto3.Session, *, cluster_name: str, region: str, configs: ConfigSource = unbounded
    ) -> ClusterEndpoint:
        key = (cluster_name, region)
        with self._lock:
            if key not in self._cache:
                self._cache[key] = _describe_cluster(session, cluster_name=cluster_name, region=region, configs=configs)
            return self._cache[key]

    def forget(self, *, cluster_name: str, region: str) -> None:
        """Drop a cached endpoint, e.g. after the cluster was recreated and TLS or the host failed."""
        with self._lock:
            self._cache.pop((cluster_name, region), None)


@dataclass(frozen=True)
class EksClusterFacts:
    """What `check` reads of an EKS cluster: whether access entries can work and how it is reached."""

    status: str
    endpoint: str | None
    authentication_mode: str  # API, API_AND_CONFIG_MAP or CONFIG_MAP
    public_endpoint: bool
    private_endpoint: bool
    public_access_cidrs: tuple[str, ...]
    vpc_id: str | None = None


def describe_eks_cluster(
    session: boto3.Session, *, cluster_name: str, region: str, configs: ConfigSource
) -> EksClusterFacts:
    cluster = _described(session, cluster_name=cluster_name, region=region, configs=configs)
    vpc = cluster.get("resourcesVpcConfig") or {}
    return EksClusterFacts(
        status=str(cluster.get("status", "UNKNOWN")),
        endpoint=cluster.get("endpoint"),
        authentication_mode=str((cluster.get("accessConfig") or {}).get("authenticationMode", "CONFIG_MAP")),
        public_endpoint=bool(vpc.get("endpointPublicAccess", True)),
        private_endpoint=bool(vpc.get("endpointPrivateAccess", False)),
        public_access_cidrs=tuple(vpc.get("publicAccessCidrs") or ("0.0.0.0/0",)),
        vpc_id=vpc.get("vpcId") or None,
    )


def function_vpc(session: boto3.Session, *, function_name: str, region: str, configs: ConfigSource) -> str | None:
    """The VPC the function itself runs in (None: outside any VPC), from its own configuration: what
    decides whether it reaches a private endpoint. ClusterLookupError if it cannot be read."""
    # One short attempt: in a VPC without a Lambda endpoint, retries would only spend the run's time.
    once = configs().merge(Config(connect_timeout=3, read_timeout=5, retries={"total_max_attempts": 1}))
    try:  # the client too: a bundle without botocore's model of the service fails here, not in `check`
        client = session.client("lambda", region_name=region, config=once)
        configuration = client.get_function_configuration(FunctionName=function_name)
    except (ClientError, BotoCoreError) as exc:
        raise ClusterLookupError(
            f"the function's own network settings could not be read ({describe_error(exc)})"
        ) from exc
    return (configuration.get("VpcConfig") or {}).get("VpcId") or None


class AccessEntryMissing(ClusterLookupError):
    """The cluster has no access entry for the principal."""


def access_entry_groups(
    session: boto3.Session, *, cluster_name: str, principal_arn: str, region: str, configs: ConfigSource
) -> tuple[str, ...]:
    """The Kubernetes groups the principal's access entry maps it to; AccessEntryMissing if it has
    none, ClusterLookupError if the entry cannot be read."""
    eks = session.client("eks", region_name=region, config=configs())
    try:
        entry = eks.describe_access_entry(clusterName=cluster_name, principalArn=principal_arn)["accessEntry"]
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") == "ResourceNotFoundException":
            raise AccessEntryMissing(f"no access entry for {principal_arn} on {cluster_name}") from exc
        raise ClusterLookupError(f"the access entry could not be read ({describe_error(exc)})") from exc
    except BotoCoreError as exc:
        raise ClusterLookupError(f"the access entry could not be read ({exc})") from exc
    return tuple(entry.get("kubernetesGroups") or ())


def caller_arn(session: boto3.Session, *, configs: ConfigSource = unbounded) -> str:
    """Who the AWS calls are made as; an assumed role's session stands for its role, as EKS sees it."""
    try:
        arn = str(session.client("sts", config=configs()).get_caller_identity()["Arn"])
    except (ClientError, BotoCoreError) as exc:
        raise CredentialError(f"AWS refused the credentials ({describe_error(exc)})") from exc
    match = ASSUMED_ROLE.match(arn)
    return f"arn:{match['partition']}:iam::{match['account']}:role/{match['role']}" if match else arn


def _described(session: boto3.Session, *, cluster_name: str, region: str, configs: ConfigSource) -> dict[str, Any]:
    eks = session.client("eks", region_name=region, config=configs())
    try:
        cluster: dict[str, Any] = dict(eks.describe_cluster(name=cluster_name)["cluster"])
    except (ClientError, BotoCoreError) as exc:
        hint = "check CLUSTER_NAME and the region, and that the role may call eks:DescribeCluster on it"
        raise ClusterLookupError(
            f"EKS DescribeCluster {cluster_name!r} in {region} failed ({describe_error(exc)}): {hint}"
        ) from exc
    return cluster


def _describe_cluster(
    session: boto3.Session, *, cluster_name: str, region: str, configs: ConfigSource
) -> ClusterEndpoint:
    cluster = _described(session, cluster_name=cluster_name, region=region, configs=configs)
    endpoint = cluster.get("endpoint")
    if not endpoint:
        raise ClusterLookupError(f"EKS cluster {cluster_name!r} has no endpoint yet (status {cluster.get('status')})")
    try:
        ca_pem = base64.b64decode(cluster["certificateAuthority"]["data"], validate=True)
    except (KeyError, TypeError, binascii.Error) as exc:
        raise ClusterLookupError(f"EKS cluster {cluster_name!r} returned no readable certificate authority") from exc
    if b"-----BEGIN CERTIFICATE-----" not in ca_pem:
        raise ClusterLookupError(f"EKS cluster {cluster_name!r} returned a certificate authority that is not PEM")
    return ClusterEndpoint(url=endpoint, ca_pem=ca_pem)


def generate_eks_token(session: boto3.Session, *, cluster_name: str, region: str) -> str:
    """A bearer token for the EKS API server, as `aws eks get-token` makes it (valid 15 minutes)."""
    sts = session.client(
        "sts", region_name=region, endpoint_url=f"https://sts.{region}.{dns_suffix(region)}", config=BOTO_CONFIG
    )

    def name_the_cluster(request: Any, **_: Any) -> None:
        # Signed, so EKS knows the token was made for this cluster and no other.
        request.headers[EKS_CLUSTER_HEADER] = cluster_name

    sts.meta.events.register("before-sign.sts.GetCallerIdentity", name_the_cluster)
    try:
        url = sts.generate_presigned_url("get_caller_identity", Params={}, ExpiresIn=PRESIGN_SECONDS, HttpMethod="GET")
    except BotoCoreError as exc:
        raise CredentialError(f"could not sign the EKS token: {describe_error(exc)}") from exc
    return EKS_TOKEN_PREFIX + base64.urlsafe_b64encode(url.encode()).decode().rstrip("=")
