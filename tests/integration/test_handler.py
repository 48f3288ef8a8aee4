"""The Lambda handler end to end: moto for AWS, LocalKube over HTTPS with EKS token authentication."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest
from moto.eks.models import eks_backends

from lambda_fn.errors import ClusterLookupError, ConfigError, CredentialError, RefreshFailed
from localkube import FaultRule, LocalKube
from sandbox.eks_cluster import CLUSTER_NAME, local_eks_cluster, refresher_rules
from sandbox.moto_aws import ACCOUNT, OWN_REGISTRY, REGION, AwsCredentials, MotoAws
from tests.emf import emf_values

Invoke = Callable[..., dict[str, Any]]


def outcomes(result: dict[str, Any]) -> dict[str, str]:
    return {entry["namespace"]: entry["outcome"] for entry in result["namespaces"]}


def auths(kube: LocalKube, namespace: str, name: str = "regcred") -> dict[str, Any]:
    secret = kube.store.get("secrets", namespace, name)
    auths: dict[str, Any] = json.loads(base64.b64decode(secret["data"][".dockerconfigjson"]))["auths"]
    return auths


def writes(kube: LocalKube) -> list[tuple[str, str]]:
    return [(r.method, r.path) for r in kube.requests if r.method in ("POST", "PUT", "PATCH", "DELETE")]


def test_creates_then_leaves_fresh_secrets_alone(kube: LocalKube, invoke: Invoke) -> None:
    first = invoke()
    assert outcomes(first) == {"default": "created"}
    assert first["registries"] == [OWN_REGISTRY]
    entry = auths(kube, "default")[OWN_REGISTRY]
    assert entry["username"] == "AWS"
    assert base64.b64decode(entry["auth"]).decode() == f"AWS:{entry['password']}"
    kube.clear_log()
    second = invoke()
    assert outcomes(second) == {"default": "unchanged"}
    assert writes(kube) == []


def test_a_hand_edited_secret_is_repaired_in_place_keeping_labels(kube: LocalKube, invoke: Invoke) -> None:
    """A fresh secret someone edited (another registry planted, as `kubectl edit` would) is repaired at the
    next run, not reported unchanged: the server's managedFields name the other writer."""
    invoke()
    secret = kube.store.get("secrets", "default", "regcred")
    uid = secret["metadata"]["uid"]
    secret["metadata"]["labels"]["team"] = "platform"
    merged = {**auths(kube, "default"), "ghcr.io": {"auth": "Zm9vOmJhcg=="}}
    secret["data"][".dockerconfigjson"] = base64.b64encode(json.dumps({"auths": merged}).encode()).decode()
    kube.store.replace("secrets", "default", "regcred", secret, manager="kubectl-edit")
    kube.clear_log()
    repaired = invoke()
    assert outcomes(repaired) == {"default": "repaired"}
    assert "kubectl-edit" in repaired["namespaces"][0]["reason"]
    after = kube.store.get("secrets", "default", "regcred")
    assert after["metadata"]["uid"] == uid  # the same object: never deleted
    assert after["metadata"]["labels"]["team"] == "platform"
    assert set(auths(kube, "default")) == {OWN_REGISTRY}
    assert [method for method, _ in writes(kube)] == ["PUT"]
    kube.clear_log()
    assert outcomes(invoke()) == {"default": "unchanged"}
    assert writes(kube) == []


def test_a_foreign_secret_is_skipped_byte_for_byte_and_said_loudly(
    kube: LocalKube, invoke: Invoke, logs: Callable[[], str]
) -> None:
    foreign = {"metadata": {"name": "regcred"}, "type": "Opaque", "data": {"token": "c2VjcmV0"}}
    before = kube.store.create("secrets", "default", foreign)
    result = invoke()
    assert outcomes(result) == {"default": "skipped"}
    assert kube.store.get("secrets", "default", "regcred") == before
    printed = logs()
    warnings = [json.loads(line) for line in printed.splitlines() if '"level":"WARNING"' in line]
    assert [(w["foreign_secrets"], w["namespaces"]) for w in warnings] == [(1, ["default"])]
    assert "1 namespace(s) hold a 'regcred' secret this tool does not manage" in warnings[0]["message"]
    assert emf_values(printed, "ForeignSecrets") == [1.0]


def test_globs_selector_and_exclusions(kube: LocalKube, invoke: Invoke, monkeypatch: pytest.MonkeyPatch) -> None:
    kube.store.add_namespace("team-sandbox")
    kube.store.add_namespace("payments", labels={"ecr-pull": "enabled"})
    monkeypatch.setenv("NAMESPACES", "team-*")
    monkeypatch.setenv("NAMESPACE_SELECTOR", "ecr-pull=enabled")
    monkeypatch.setenv("EXCLUDE_NAMESPACES", "team-sandbox")
    assert outcomes(invoke()) == {"payments": "created", "team-a": "created", "team-b": "created"}


def test_more_namespaces_than_one_page(kube: LocalKube, invoke: Invoke, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("lambda_fn.k8s.api.PAGE_SIZE", 200)
    for index in range(450):
        kube.store.add_namespace(f"bulk-{index:03d}")
    monkeypatch.setenv("NAMESPACES", "bulk-*")
    assert invoke()["counts"]["created"] == 450
    kube.clear_log()
    assert invoke()["counts"]["unchanged"] == 450
    for path in ("/api/v1/namespaces", "/api/v1/secrets"):
        pages = [r for r in kube.requests if r.path == path]
        assert [bool(r.query.get("continue")) for r in pages] == [False, True, True], path
    assert len(kube.requests) == 6  # a fresh run: the two paged lists, nothing else


def test_service_accounts_get_the_secret(kube: LocalKube, invoke: Invoke, monkeypatch: pytest.MonkeyPatch) -> None:
    account = kube.store.get("serviceaccounts", "default", "default")
    account["imagePullSecrets"] = [{"name": "other"}]
    kube.store.replace("serviceaccounts", "default", "default", account)
    monkeypatch.setenv("SERVICE_ACCOUNTS", "default,missing")
    result = invoke()
    assert result["namespaces"] == [
        {"namespace": "default", "outcome": "created", "service_accounts_patched": ["default"]}
    ]
    patched = kube.store.get("serviceaccounts", "default", "default")
    assert patched["imagePullSecrets"] == [{"name": "other"}, {"name": "regcred"}]
    kube.clear_log()
    invoke()
    assert writes(kube) == []


def test_dry_run_writes_nothing(kube: LocalKube, invoke: Invoke, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NAMESPACES", "team-*,default")
    result = invoke({"dry_run": True, "namespaces": ["team-*"]})
    assert result["dry_run"] is True
    assert outcomes(result) == {"team-a": "created", "team-b": "created"}
    assert writes(kube) == []


def test_a_manual_event_chooses_among_the_configured_targets(
    kube: LocalKube, invoke: Invoke, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("NAMESPACES", "team-*")
    assert outcomes(invoke({"namespaces": ["team-a"]})) == {"team-a": "created"}
    assert kube.store.find("secrets", "team-b", "regcred") is None


@pytest.mark.parametrize(
    ("event", "message"),
    [
        ({"namespaces": ["kube-system"]}, "kube-system outside the configured namespaces"),
        ({"secret_name": "ecr-pull"}, "this function writes 'regcred' only"),
        ({"service_accounts": ["default"]}, "default not configured"),
        ({"cluster_name": "other"}, "this function serves cluster 'demo' only"),
    ],
)
def test_a_manual_event_cannot_widen_the_scope_and_writes_nothing(
    kube: LocalKube, invoke: Invoke, monkeypatch: pytest.MonkeyPatch, event: dict[str, Any], message: str
) -> None:
    monkeypatch.setenv("NAMESPACES", "team-*")
    with pytest.raises(ConfigError, match=message):
        invoke(event)
    assert [r for r in kube.requests if r.method != "GET"] == []


@pytest.mark.parametrize(
    ("event", "field"),
    [({"namespaces": "team-a"}, "namespaces"), ({"surprise": 1}, "surprise"), ({"dry_run": "yes"}, "dry_run")],
)
def test_a_bad_event_is_rejected_and_nothing_is_written(
    kube: LocalKube, invoke: Invoke, event: dict[str, Any], field: str
) -> None:
    with pytest.raises(ConfigError, match=field):
        invoke(event)
    assert kube.requests == []


def test_a_terminating_namespace_is_skipped(kube: LocalKube, invoke: Invoke, monkeypatch: pytest.MonkeyPatch) -> None:
    kube.store.add_namespace("team-gone", terminating=True)
    monkeypatch.setenv("NAMESPACES", "team-*")
    result = invoke()
    assert result["namespaces"][-1] == {
        "namespace": "team-gone",
        "outcome": "skipped",
        "reason": "namespace is being deleted",
    }


def test_one_failing_namespace_fails_the_invocation_after_the_others(
    kube: LocalKube, invoke: Invoke, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("NAMESPACES", "team-a,team-b,default")
    good = invoke({"namespaces": ["team-b"]})
    assert outcomes(good) == {"team-b": "created"}
    before = kube.store.get("secrets", "team-b", "regcred")
    kube.faults.append(FaultRule(path="/namespaces/team-b/", status=500))
    with pytest.raises(RefreshFailed, match=r"1 namespace\(s\) failed: team-b"):
        invoke({"namespaces": ["team-a", "team-b", "default"], "force": True})
    assert kube.store.get("secrets", "team-b", "regcred") == before
    assert kube.store.find("secrets", "team-a", "regcred") is not None
    assert kube.store.find("secrets", "default", "regcred") is not None


def test_an_expired_ecr_token_is_refused_before_any_write(kube: LocalKube, aws: MotoAws, invoke: Invoke) -> None:
    from datetime import timedelta  # noqa: PLC0415

    aws.token_lifetime = timedelta(minutes=-1)
    with pytest.raises(CredentialError, match="expired"):
        invoke()
    assert writes(kube) == []


def test_without_an_access_entry_the_error_names_it(aws: MotoAws, credentials: AwsCredentials, invoke: Invoke) -> None:
    kube = local_eks_cluster(aws, credentials, access_entry=False)
    kube.store.add_namespace("default")
    try:
        with pytest.raises(RefreshFailed):
            invoke()
        assert {r.status for r in kube.requests} == {401}
    finally:
        kube.stop()


def test_without_rbac_the_error_names_the_missing_rule(
    aws: MotoAws, credentials: AwsCredentials, invoke: Invoke, logs: Callable[[], str]
) -> None:
    kube = local_eks_cluster(aws, credentials, rules=refresher_rules(list_namespaces=False)[1:])
    kube.store.add_namespace("default")
    try:
        with pytest.raises(RefreshFailed):
            invoke()
    finally:
        kube.stop()
    logged = logs()
    assert 'cannot get resource \\"secrets\\" in API group \\"\\" in the namespace \\"default\\"' in logged
    assert "make apply" in logged


def test_no_secret_material_in_logs_results_or_errors(
    kube: LocalKube, invoke: Invoke, monkeypatch: pytest.MonkeyPatch, logs: Callable[[], str]
) -> None:
    monkeypatch.setenv("NAMESPACES", "team-*,default")
    monkeypatch.setenv("POWERTOOLS_LOG_LEVEL", "DEBUG")
    kube.faults.append(FaultRule(path="/namespaces/team-b/", status=500))
    with pytest.raises(RefreshFailed) as failure:
        invoke()
    secret = kube.store.get("secrets", "team-a", "regcred")
    entry = auths(kube, "team-a")[OWN_REGISTRY]
    haystack = logs() + str(failure.value) + repr(failure.value)
    eks_token = next(r for r in kube.requests if r.user)  # the token itself is only in the server's memory
    forbidden = [entry["password"], entry["auth"], secret["data"][".dockerconfigjson"], "k8s-aws-v1."]
    assert eks_token.user == "ecr-token-refresher"
    assert "refresh finished" in haystack
    for material in forbidden:
        assert material not in haystack


def test_a_cross_account_registry_is_served_through_its_role(
    kube: LocalKube, invoke: Invoke, monkeypatch: pytest.MonkeyPatch
) -> None:
    other = "210987654321.dkr.ecr.eu-west-1.amazonaws.com"
    monkeypatch.setenv("REGISTRIES", f"{other}=arn:aws:iam::210987654321:role/puller")
    result = invoke()
    assert result["registries"] == [OWN_REGISTRY, other]
    entries = auths(kube, "default")
    assert set(entries) == {OWN_REGISTRY, other}
    assert entries[other]["username"] == "AWS"


def test_an_unknown_cluster_names_the_setting_and_writes_nothing(
    kube: LocalKube, invoke: Invoke, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CLUSTER_NAME", "nonexistent")
    with pytest.raises(ClusterLookupError, match="check CLUSTER_NAME"):
        invoke()
    assert kube.requests == []


@pytest.mark.parametrize(
    ("namespaces", "served"), [("default", "default"), ("team-*,default", "default"), ("team-*", "team-a")]
)
def test_a_wrong_cluster_ca_fails_closed(
    kube: LocalKube, invoke: Invoke, monkeypatch: pytest.MonkeyPatch, namespaces: str, served: str
) -> None:
    """TLS is verified against the cluster's CA: another CA fails every namespace, no fallback; and
    the endpoint cached by the warm container is forgotten, whether targets are named or listed."""
    import trustme  # noqa: PLC0415

    monkeypatch.setenv("NAMESPACES", namespaces)
    other_ca = trustme.CA().cert_pem.bytes()
    cluster = eks_backends[ACCOUNT][REGION].clusters[CLUSTER_NAME]
    right_ca = cluster.certificate_authority
    cluster.certificate_authority = {"data": base64.b64encode(other_ca).decode()}
    with pytest.raises(RefreshFailed):
        invoke()
    assert kube.requests == []
    assert kube.store.find("secrets", served, "regcred") is None
    # The cluster's real CA is back (think: cluster recreated); the warm container asks EKS again.
    cluster.certificate_authority = right_ca
    assert outcomes(invoke())[served] == "created"


def test_a_run_that_finds_the_lease_held_does_nothing_and_publishes_no_expiry(
    kube: LocalKube, invoke: Invoke, monkeypatch: pytest.MonkeyPatch, logs: Callable[[], str]
) -> None:
    """Overlapping scheduled runs take turns: the second one writes nothing and claims nothing healthy."""
    monkeypatch.setenv("RUN_LEASE", "ecr-token-refresher")
    renewed = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    spec = {"holderIdentity": "lambda other-run", "leaseDurationSeconds": 60, "renewTime": renewed}
    kube.store.create("leases", "kube-system", {"metadata": {"name": "ecr-token-refresher"}, "spec": spec})
    logs()  # only what the skipped run prints from here
    skipped = invoke()
    assert skipped["skipped_run"].startswith("another run holds the Lease and is doing the work: lambda other-run")
    assert skipped["namespaces"] == []
    assert kube.store.find("secrets", "default", "regcred") is None
    printed = logs()
    assert "refresh skipped" in printed
    assert "SecondsUntilFirstExpiry" not in printed  # the holder publishes the cluster's figures
    assert emf_values(printed, "RunsSkipped") == [1.0]
    expired = kube.store.get("leases", "kube-system", "ecr-token-refresher")
    expired["spec"]["renewTime"] = "2020-01-01T00:00:00.000000Z"  # its holder died long ago
    kube.store.replace("leases", "kube-system", "ecr-token-refresher", expired)
    assert outcomes(invoke()) == {"default": "created"}
    assert kube.store.get("leases", "kube-system", "ecr-token-refresher")["spec"]["holderIdentity"] is None
