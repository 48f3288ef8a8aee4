"""moto's server in this process, with what the refresher needs from AWS made realistic."""

from __future__ import annotations

import base64
import logging
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
from moto.core.exceptions import ServiceException
from moto.ecr.responses import ECRResponse
from moto.eks.models import eks_backends
from moto.server import ThreadedMotoServer

ACCOUNT = "123456789012"
REGION = "us-east-1"
ROLE_NAME = "ecr-token-refresher"
ROLE_ARN = f"arn:aws:iam::{ACCOUNT}:role/{ROLE_NAME}"
OWN_REGISTRY = f"{ACCOUNT}.dkr.ecr.{REGION}.amazonaws.com"


@dataclass(frozen=True)
class AwsCredentials:
    access_key_id: str
    secret_access_key: str = field(repr=False)
    session_token: str = field(repr=False)


class MotoAws:
    """moto's ThreadedMotoServer on a free loopback port.

    moto's ECR tokens expire on 2015-01-01; while started, tokens expire `token_lifetime` from now
    (12 hours, as ECR's do; set a negative lifetime to test that expired tokens are refused).
    """

    def __init__(self) -> None:
        logging.getLogger("werkzeug").setLevel(logging.ERROR)  # moto's server logs every request
        self.token_lifetime = timedelta(hours=12)
        # moto's passwords are 23 characters; ECR's are ~2.4 KB (a token ~3.2 KB). The bench pads them.
        self.password_padding = 0
        self.token_calls = 0  # GetAuthorizationToken calls answered since start
        # Error codes (e.g. ThrottlingException) the next GetAuthorizationToken calls fail with, one each.
        self.ecr_errors: list[str] = []
        self._server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        self._original_token_call = ECRResponse.get_authorization_token

    @property
    def url(self) -> str:
        host, port = self._server.get_host_and_port()
        return f"http://{host}:{port}"

    def start(self) -> MotoAws:
        self._server.start()
        sandbox = self
        original = self._original_token_call

        def get_authorization_token(response: ECRResponse) -> Any:
            sandbox.token_calls += 1
            if sandbox.ecr_errors:
                code = sandbox.ecr_errors.pop(0)
                # moto serializes an error with the model of the service its class's module names.
                error = type(code, (ServiceException,), {"code": code, "__module__": "moto.ecr.exceptions"})
                raise error(f"injected by the sandbox: {code}")
            result = original(response)
            answer: Any = result.result
            for item in answer["authorizationData"]:
                item["expiresAt"] = datetime.now(UTC) + sandbox.token_lifetime
                if sandbox.password_padding:
                    password = base64.b64decode(item["authorizationToken"]).decode().partition(":")[2]
                    padded = password + "-" + "x" * sandbox.password_padding
                    item["authorizationToken"] = base64.b64encode(f"AWS:{padded}".encode()).decode()
            return result

        ECRResponse.get_authorization_token = get_authorization_token  # type: ignore[method-assign,assignment]
        return self

    def stop(self) -> None:
        ECRResponse.get_authorization_token = self._original_token_call  # type: ignore[method-assign]
        self._server.stop()

    def reset(self) -> None:
        """Forget every resource (moto's reset API) and restore the realistic token lifetime."""
        self.token_lifetime = timedelta(hours=12)
        self.password_padding = 0
        self.ecr_errors.clear()
        request = urllib.request.Request(f"{self.url}/moto-api/reset", method="POST")  # noqa: S310 - loopback
        urllib.request.urlopen(request, timeout=5).close()  # noqa: S310

    def client(self, service: str, *, region_name: str = REGION, credentials: AwsCredentials | None = None) -> Any:
        """A client of moto's `service`, as account ACCOUNT (moto's test keys) or as `credentials` (moto
        keys its backends by the account the credentials belong to)."""
        make_client: Any = boto3.client  # typed per service name; here the name is a variable
        keys = (
            {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}  # moto's test keys
            if credentials is None
            else {
                "aws_access_key_id": credentials.access_key_id,
                "aws_secret_access_key": credentials.secret_access_key,
                "aws_session_token": credentials.session_token,
            }
        )
        return make_client(service, region_name=region_name, endpoint_url=self.url, **keys)

    def account_credentials(self, account: str) -> AwsCredentials | None:
        """Credentials of `account`: a session of a role there, which moto ties to that account (None for
        ACCOUNT, whose test keys are the default)."""
        if account == ACCOUNT:
            return None
        role = f"arn:aws:iam::{account}:role/administrator"
        keys = self.client("sts").assume_role(RoleArn=role, RoleSessionName="sandbox")["Credentials"]
        return AwsCredentials(keys["AccessKeyId"], keys["SecretAccessKey"], keys["SessionToken"])

    def assume_refresher_role(self) -> AwsCredentials:
        """Credentials as the Lambda has them: a session of the function's role."""
        answer = self.client("sts").assume_role(RoleArn=ROLE_ARN, RoleSessionName="ecr-token-refresher")
        credentials = answer["Credentials"]
        return AwsCredentials(credentials["AccessKeyId"], credentials["SecretAccessKey"], credentials["SessionToken"])

    def create_eks_cluster(
        self, name: str, *, endpoint: str, ca_pem: bytes, account: str = ACCOUNT, region: str = REGION
    ) -> None:
        """An EKS cluster in moto (in `account` and `region`) whose endpoint and CA are the local API server's."""
        self.client("eks", region_name=region, credentials=self.account_credentials(account)).create_cluster(
            name=name,
            roleArn=f"arn:aws:iam::{account}:role/eks-cluster",
            resourcesVpcConfig={"subnetIds": ["subnet-1"]},
        )
        cluster = eks_backends[account][region].clusters[name]
        cluster.endpoint = endpoint
        cluster.certificate_authority = {"data": base64.b64encode(ca_pem).decode()}
        # moto keeps no access configuration; EKS creates clusters with access entries on by default.
        cluster.access_config = {"authenticationMode": "API_AND_CONFIG_MAP"}  # type: ignore[attr-defined]

    def environment(self, credentials: AwsCredentials, region: str = REGION) -> dict[str, str]:
        """What the Lambda runtime would set, with every AWS endpoint pointing at moto."""
        return {
            "AWS_ENDPOINT_URL": self.url,
            "AWS_REGION": region,
            "AWS_DEFAULT_REGION": region,
            "AWS_ACCESS_KEY_ID": credentials.access_key_id,
            "AWS_SECRET_ACCESS_KEY": credentials.secret_access_key,
            "AWS_SESSION_TOKEN": credentials.session_token,
        }


@contextmanager
def moto_aws() -> Iterator[MotoAws]:
    aws = MotoAws().start()
    try:
        yield aws
    finally:
        aws.stop()
