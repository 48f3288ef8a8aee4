"""No credential in any log at any level: a run with the root logger at DEBUG (what Lambda's log-level
setting does) writes neither the ECR token nor its password, the EKS token nor its signature, nor the
role's or an assumed role's keys, from the Lambda and from the CLI. The same run with botocore unpinned
shows what the pin prevents."""

from __future__ import annotations

import base64
import io
import logging
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from moto.sts.models import sts_backends

from lambda_fn.cli import main
from lambda_fn.library_logs import LIBRARY_LOGGERS
from localkube import LocalKube
from sandbox.eks_cluster import CLUSTER_NAME
from sandbox.moto_aws import ACCOUNT, AwsCredentials

Invoke = Callable[..., dict[str, Any]]
PULLER = "arn:aws:iam::210987654321:role/puller"


def credentials_in_play(kube: LocalKube, role: AwsCredentials) -> list[str]:
    """Every secret the run handled: the ECR passwords and auth strings, the EKS tokens and their
    signatures, the function role's keys and those of every role it assumed."""
    found = [role.secret_access_key, role.session_token]
    for account in (ACCOUNT, "210987654321"):
        for assumed in sts_backends[account]["global"].assumed_roles:
            found += [assumed.secret_access_key, assumed.session_token]
    for token in list(kube.eks._verified) if kube.eks is not None else []:
        url = base64.urlsafe_b64decode(token.removeprefix("k8s-aws-v1.") + "==").decode()
        found += [token, parse_qs(urlsplit(url).query)["X-Amz-Signature"][0]]
    for account in (ACCOUNT, "210987654321"):
        password = f"{account}-auth-token"
        found += [password, base64.b64encode(f"AWS:{password}".encode()).decode()]
    return found


@pytest.fixture
def debug_root(caplog: pytest.LogCaptureFixture) -> Iterator[pytest.LogCaptureFixture]:
    caplog.set_level(logging.DEBUG)  # the root logger, as Lambda's DEBUG log level sets it
    yield caplog
    logging.getLogger("botocore").setLevel(logging.WARNING)


@pytest.fixture
def with_an_assumed_role(monkeypatch: pytest.MonkeyPatch, credentials: AwsCredentials) -> AwsCredentials:
    monkeypatch.setenv("REGISTRIES", f"210987654321.dkr.ecr.us-east-1.amazonaws.com={PULLER}")
    return credentials


def test_a_debug_run_logs_no_credential(
    kube: LocalKube,
    with_an_assumed_role: AwsCredentials,
    invoke: Invoke,
    debug_root: pytest.LogCaptureFixture,
    logs: Callable[[], str],
) -> None:
    assert invoke()["ok"]
    written = logs() + debug_root.text
    assert debug_root.records  # the root logger did take DEBUG records
    secrets = credentials_in_play(kube, with_an_assumed_role)
    assert len(secrets) >= 8
    assert [secret[:6] for secret in secrets if secret in written] == []


def test_without_the_pin_botocore_would_log_them(
    kube: LocalKube,
    invoke: Invoke,
    debug_root: pytest.LogCaptureFixture,
    logs: Callable[[], str],
    seen: list[str],
) -> None:
    """The control: the check above can fail, and the pin is what makes it pass."""
    logging.getLogger("botocore").setLevel(logging.DEBUG)
    assert invoke()["ok"]
    written = logs() + debug_root.text
    assert "123456789012-auth-token" in written or base64.b64encode(b"AWS:123456789012-auth-token").decode() in written
    debug_root.clear()
    seen.clear()  # the leak was made on purpose: keep it out of the autouse check after this test


def test_a_debug_cli_run_logs_no_credential(
    kube: LocalKube, credentials: AwsCredentials, debug_root: pytest.LogCaptureFixture
) -> None:
    """The CLI pins the same loggers itself: it never loads the Lambda's telemetry."""
    for name in LIBRARY_LOGGERS:
        logging.getLogger(name).setLevel(logging.NOTSET)  # as in a fresh process, before anything pinned them
    argv = ["refresh", "--cluster", CLUSTER_NAME, "--region", "us-east-1", "--output", "json"]
    assert main(argv, stdout=io.StringIO(), stderr=io.StringIO()) == 0
    assert logging.getLogger().level == logging.DEBUG  # anything not pinned would have been captured
    secrets = credentials_in_play(kube, credentials)
    assert len(secrets) >= 4
    assert [secret[:6] for secret in secrets if secret in debug_root.text] == []
    assert {logging.getLogger(name).level for name in LIBRARY_LOGGERS} == {logging.WARNING}


def test_a_server_that_echoes_the_authorization_header_leaks_no_token(
    kube: LocalKube, invoke: Invoke, logs: Callable[[], str]
) -> None:
    """A server or proxy repeating the bearer token in the Status `reason` and `message` (a 403 on every
    write): neither the invocation's error, nor its log lines, nor the summary carries the EKS token."""
    from lambda_fn.errors import RefreshFailed  # noqa: PLC0415
    from localkube import FaultRule  # noqa: PLC0415

    kube.faults.append(FaultRule(method="POST", status=403, echo_authorization=True))
    with pytest.raises(RefreshFailed) as raised:
        invoke()
    tokens = list(kube.eks._verified) if kube.eks is not None else []
    assert tokens, "the run authenticated with an EKS token"
    texts = [str(raised.value), logs()]
    for token in tokens:
        for text in texts:
            assert token not in text
            assert token.removeprefix("k8s-aws-v1.")[:40] not in text
    assert "403 Forbidden: injected fault: 403 Bearer <redacted>" in logs()
