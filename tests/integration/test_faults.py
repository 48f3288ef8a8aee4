"""Fault matrix: each failure of the Kubernetes API or AWS, its outcome, and that no good secret is lost.

The kubernetes client retries some failures by itself (lambda_fn.k8s.retry_policy); the assertions
read the server's request log, so a retry cannot hide.
"""

from __future__ import annotations

import base64
import json
import threading
import time
from collections.abc import Callable
from typing import Any

import pytest

from lambda_fn.errors import CredentialError, RefreshFailed
from localkube import FaultRule, LocalKube, Rule
from sandbox.eks_cluster import local_eks_cluster
from sandbox.lambda_context import FakeLambdaContext
from sandbox.moto_aws import AwsCredentials, MotoAws
from tests.integration.conftest import SCHEDULED

Invoke = Callable[..., dict[str, Any]]


def outcomes(result: dict[str, Any]) -> dict[str, str]:
    return {entry["namespace"]: entry["outcome"] for entry in result["namespaces"]}


def log_of(kube: LocalKube, namespace: str) -> list[tuple[str, int]]:
    return [(r.method, r.status) for r in kube.requests if f"/namespaces/{namespace}/" in r.path]


def valid_secret(kube: LocalKube, namespace: str) -> bool:
    secret = kube.store.find("secrets", namespace, "regcred")
    if secret is None:
        return False
    auths = json.loads(base64.b64decode(secret["data"][".dockerconfigjson"]))["auths"]
    return all(base64.b64decode(entry["auth"]).startswith(b"AWS:") for entry in auths.values()) and bool(auths)


@pytest.fixture
def expiring(kube: LocalKube, invoke: Invoke) -> dict[str, Any]:
    """`default` holds a managed secret whose token is about to expire: the next run updates it."""
    invoke()
    secret = kube.store.get("secrets", "default", "regcred")
    secret["metadata"]["annotations"]["ecr-token-refresher/expires-at"] = "2026-01-01T00:00:00+00:00"
    kube.clear_log()
    # Time passing, not an edit: written as the refresher's own field manager.
    return kube.store.replace("secrets", "default", "regcred", secret, manager="ecr-token-refresher")


def test_a_500_once_is_retried_and_recovers(kube: LocalKube, invoke: Invoke) -> None:
    kube.faults.append(FaultRule(method="POST", status=500, times=1))
    assert outcomes(invoke()) == {"default": "created"}
    assert log_of(kube, "default") == [("GET", 404), ("POST", 500), ("POST", 201)]


@pytest.mark.parametrize("status", [429, 503])
def test_throttling_with_retry_after_is_honoured(kube: LocalKube, invoke: Invoke, status: int) -> None:
    kube.faults.append(FaultRule(method="GET", path="/secrets/", status=status, retry_after=1, times=1))
    started = time.monotonic()
    assert outcomes(invoke()) == {"default": "created"}
    assert time.monotonic() - started >= 1.0  # waited as told
    assert log_of(kube, "default") == [("GET", status), ("GET", 404), ("POST", 201)]


def test_a_connection_dropped_mid_update_is_retried(kube: LocalKube, invoke: Invoke, expiring: dict[str, Any]) -> None:
    kube.faults.append(FaultRule(method="PUT", drop=True, times=1))
    assert outcomes(invoke()) == {"default": "updated"}
    assert log_of(kube, "default") == [("GET", 200), ("PUT", 0), ("PUT", 200)]
    assert valid_secret(kube, "default")


def test_a_conflict_on_update_is_re_read_and_retried(kube: LocalKube, invoke: Invoke, expiring: dict[str, Any]) -> None:
    kube.faults.append(FaultRule(method="PUT", status=409, times=1))
    assert outcomes(invoke()) == {"default": "updated"}
    assert log_of(kube, "default") == [("GET", 200), ("PUT", 409), ("GET", 200), ("PUT", 200)]


def test_endless_conflicts_fail_that_namespace_and_keep_its_secret(
    kube: LocalKube, invoke: Invoke, expiring: dict[str, Any]
) -> None:
    kube.faults.append(FaultRule(method="PUT", status=409))
    with pytest.raises(RefreshFailed, match="default"):
        invoke()
    assert [method for method, _ in log_of(kube, "default")].count("PUT") == 3
    assert kube.store.get("secrets", "default", "regcred") == expiring


def test_a_secret_deleted_between_read_and_update_is_created_again(
    kube: LocalKube, invoke: Invoke, expiring: dict[str, Any]
) -> None:
    def delete_it() -> None:
        kube.store.delete("secrets", "default", "regcred")

    kube.faults.append(FaultRule(method="PUT", before=delete_it, times=1))
    assert outcomes(invoke()) == {"default": "created"}
    assert log_of(kube, "default") == [("GET", 200), ("PUT", 404), ("GET", 404), ("POST", 201)]
    assert valid_secret(kube, "default")


def test_a_namespace_deleted_after_listing_is_skipped(
    kube: LocalKube, invoke: Invoke, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("NAMESPACES", "team-*")

    def delete_namespace() -> None:
        kube.store.remove_namespace("team-a")

    kube.faults.append(FaultRule(method="POST", path="/namespaces/team-a/secrets", before=delete_namespace, times=1))
    result = invoke()
    assert result["namespaces"][0] == {
        "namespace": "team-a",
        "outcome": "skipped",
        "reason": "namespace was deleted during the run",
    }
    assert outcomes(result)["team-b"] == "created"


def test_a_namespace_terminating_after_listing_is_skipped(
    kube: LocalKube, invoke: Invoke, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("NAMESPACES", "team-*")

    def terminate() -> None:
        kube.store.add_namespace("team-a", terminating=True)

    kube.faults.append(FaultRule(method="POST", path="/namespaces/team-a/secrets", before=terminate, times=1))
    assert outcomes(invoke()) == {"team-a": "skipped", "team-b": "created"}


def test_403_on_one_namespace_names_the_missing_rule(
    aws: MotoAws, credentials: AwsCredentials, invoke: Invoke, monkeypatch: pytest.MonkeyPatch
) -> None:
    kube = local_eks_cluster(aws, credentials, rules=[Rule.of("get,create,update", "secrets", namespaces="default")])
    for name in ("default", "team-a"):
        kube.store.add_namespace(name)
    monkeypatch.setenv("NAMESPACES", "default,team-a")
    try:
        with pytest.raises(RefreshFailed, match="team-a"):
            invoke()
        assert valid_secret(kube, "default")
    finally:
        kube.stop()


def test_a_slow_server_stops_new_namespaces_before_the_deadline(
    kube: LocalKube, monkeypatch: pytest.MonkeyPatch
) -> None:
    from lambda_fn.handler import lambda_handler  # noqa: PLC0415

    for index in range(6):
        kube.store.add_namespace(f"slow-{index}")
    monkeypatch.setenv("NAMESPACES", "slow-*")
    monkeypatch.setenv("MAX_CONCURRENCY", "1")
    monkeypatch.setenv("DEADLINE_MARGIN_SECONDS", "10")
    kube.faults.append(FaultRule(method="POST", path="/secrets", delay=0.4))
    with pytest.raises(RefreshFailed) as failure:
        lambda_handler({"namespaces": ["slow-*"]}, FakeLambdaContext(timeout_seconds=11.2))
    created = [n for n in (f"slow-{i}" for i in range(6)) if kube.store.find("secrets", n, "regcred")]
    assert 1 <= len(created) < 6
    assert "slow-5" in str(failure.value)
    assert not any("/namespaces/slow-5/" in r.path for r in kube.requests)


@pytest.mark.parametrize(
    "fault",
    [
        FaultRule(method="POST", delay=60.0),  # a request that hangs
        FaultRule(method="POST", status=503, retry_after=3600),  # a server asking to wait an hour
        FaultRule(method="POST", drop=True),  # connections dropped, retried with backoff
    ],
    ids=["hang", "retry-after-an-hour", "dropped"],
)
def test_a_run_ends_with_its_summary_before_the_lambda_timeout(
    kube: LocalKube, monkeypatch: pytest.MonkeyPatch, logs: Callable[[], str], fault: FaultRule
) -> None:
    from lambda_fn.handler import lambda_handler  # noqa: PLC0415

    monkeypatch.setenv("NAMESPACES", "team-*")
    monkeypatch.setenv("DEADLINE_MARGIN_SECONDS", "2")
    kube.faults.append(fault)
    timeout = 8.0
    started = time.monotonic()
    with pytest.raises(RefreshFailed, match="team-a"):
        lambda_handler(SCHEDULED, FakeLambdaContext(timeout_seconds=timeout))
    assert time.monotonic() - started < timeout - 1  # the summary and the metrics still had time
    assert '"message":"refresh finished"' in logs()
    assert kube.store.find("secrets", "team-a", "regcred") is None


def test_ecr_throttling_is_retried_by_botocore_one_logical_call(kube: LocalKube, aws: MotoAws, invoke: Invoke) -> None:
    calls = aws.token_calls
    aws.ecr_errors = ["ThrottlingException", "ThrottlingException"]
    assert outcomes(invoke()) == {"default": "created"}
    assert aws.token_calls - calls == 3


def test_ecr_access_denied_writes_nothing(kube: LocalKube, aws: MotoAws, invoke: Invoke) -> None:
    aws.ecr_errors = ["AccessDeniedException"]
    with pytest.raises(CredentialError, match="AccessDeniedException"):
        invoke()
    assert kube.requests == []


def test_an_unreachable_ecr_endpoint_fails_fast_and_writes_nothing(
    kube: LocalKube, invoke: Invoke, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL_ECR", "http://127.0.0.1:9")  # discard port: refused
    started = time.monotonic()
    with pytest.raises(CredentialError, match="GetAuthorizationToken in us-east-1 failed"):
        invoke()
    assert time.monotonic() - started < 30
    assert kube.requests == []


def test_two_overlapping_runs_leave_valid_secrets(
    kube: LocalKube, invoke: Invoke, monkeypatch: pytest.MonkeyPatch
) -> None:
    for index in range(30):
        kube.store.add_namespace(f"both-{index:02d}")
    monkeypatch.setenv("NAMESPACES", "both-*")
    results: list[dict[str, Any]] = []
    runs = [threading.Thread(target=lambda: results.append(invoke({"force": True}))) for _ in range(2)]
    for run in runs:
        run.start()
    for run in runs:
        run.join()
    assert len(results) == 2
    assert all(all(o in ("created", "updated") for o in outcomes(r).values()) for r in results)
    assert all(valid_secret(kube, f"both-{index:02d}") for index in range(30))
    assert not any(r.method == "DELETE" for r in kube.requests)


@pytest.fixture
def paged(kube: LocalKube, invoke: Invoke, monkeypatch: pytest.MonkeyPatch) -> LocalKube:
    """Globs over 30 namespaces, 10 to a page, every secret already in place."""
    monkeypatch.setattr("lambda_fn.k8s.api.PAGE_SIZE", 10)
    monkeypatch.setenv("NAMESPACES", "page-*")
    for index in range(30):
        kube.store.add_namespace(f"page-{index:02d}")
    invoke()
    kube.clear_log()
    return kube


def test_a_list_page_that_keeps_failing_falls_back_to_one_read_each_and_fails_the_run(
    paged: LocalKube, invoke: Invoke, logs: Callable[[], str]
) -> None:
    paged.faults.append(FaultRule(method="GET", path="^/api/v1/secrets$", status=500))
    with pytest.raises(RefreshFailed, match="could not list the 'regcred' secrets"):
        invoke()
    assert "unchanged" in logs()
    reads = [r for r in paged.requests if r.method == "GET" and "/namespaces/page-" in r.path]
    assert len(reads) == 30  # every namespace still served, one GET each
    assert all(r.method == "GET" for r in paged.requests)


def test_an_expired_continue_token_restarts_the_list_once(paged: LocalKube, invoke: Invoke) -> None:
    paged.faults.append(FaultRule(method="GET", path="^/api/v1/secrets$", status=410, times=1))
    original_claim = paged.faults[0].claim

    def on_continue_pages_only(method: str, path: str) -> bool:
        pending = [r for r in paged.requests if r.path == "/api/v1/secrets"]
        return bool(pending) and original_claim(method, path)  # the first page passes, the next one is 410

    paged.faults[0].claim = on_continue_pages_only  # type: ignore[method-assign]
    result = invoke()
    assert result["counts"]["unchanged"] == 30
    pages = [(r.status, bool(r.query.get("continue"))) for r in paged.requests if r.path == "/api/v1/secrets"]
    assert pages == [(200, False), (410, True), (200, False), (200, True), (200, True)]


def test_a_second_expired_continue_token_reads_the_whole_list_in_one_answer(paged: LocalKube, invoke: Invoke) -> None:
    """Two 410s (a busy etcd compacting, or a list from an older apiserver's cache) no longer end the run
    with zero targets: the third try asks for the list without `limit`, which has no token to expire."""
    paged.faults.append(FaultRule(method="GET", path="^/api/v1/secrets$", status=410, times=2))
    original_claim = paged.faults[0].claim

    def after_a_first_page(method: str, path: str) -> bool:
        listed = [r for r in paged.requests if r.path == "/api/v1/secrets"]
        after_first_page = bool(listed) and listed[-1].status == 200 and "limit" in listed[-1].query
        return after_first_page and original_claim(method, path)

    paged.faults[0].claim = after_a_first_page  # type: ignore[method-assign]
    result = invoke()
    assert result["counts"]["unchanged"] == 30
    assert result["ok"]
    pages = [
        (r.status, "continue" in r.query, "limit" in r.query) for r in paged.requests if r.path == "/api/v1/secrets"
    ]
    assert pages == [(200, False, True), (410, True, True), (200, False, True), (410, True, True), (200, False, False)]


def test_a_secret_someone_else_creates_between_the_list_and_our_create_is_decided_again(
    kube: LocalKube, invoke: Invoke, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("NAMESPACES", "team-*")

    def someone_else_creates_it() -> None:
        kube.store.create("secrets", "team-a", {"metadata": {"name": "regcred"}, "type": "Opaque", "data": {}})

    kube.faults.append(
        FaultRule(method="POST", path="/namespaces/team-a/secrets", before=someone_else_creates_it, times=1)
    )
    result = invoke()
    assert outcomes(result) == {"team-a": "skipped", "team-b": "created"}
    assert kube.store.get("secrets", "team-a", "regcred")["type"] == "Opaque"  # theirs, untouched
    assert log_of(kube, "team-a") == [("POST", 409), ("GET", 200)]
