"""`check`, the read-only preflight, against moto and the local API server: a complete setup passes,
each missing prerequisite is one failed line with its fix, and nothing is ever written."""

from __future__ import annotations

import base64
import io
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from lambda_fn.cli import main
from localkube import LocalKube, Rule
from sandbox.eks_cluster import CLUSTER_NAME, local_eks_cluster, refresher_rules
from sandbox.moto_aws import OWN_REGISTRY, AwsCredentials, MotoAws

Invoke = Callable[..., dict[str, Any]]
WRITES = ("POST", "PUT", "PATCH", "DELETE")


def check(*flags: str) -> tuple[int, dict[str, Any]]:
    stdout, stderr = io.StringIO(), io.StringIO()
    argv = ["check", "--cluster", CLUSTER_NAME, "--region", "us-east-1", "--namespace", "team-*", *flags]
    code = main([*argv, "--output", "json"], stdout=stdout, stderr=stderr)
    assert stderr.getvalue() == ""
    return code, json.loads(stdout.getvalue())


def findings(report: dict[str, Any]) -> dict[str, tuple[str, str]]:
    return {item["check"]: (item["status"], item["detail"] + " | " + item.get("fix", "")) for item in report["checks"]}


def writes(kube: LocalKube) -> list[tuple[str, str]]:
    """Requests that could change an object (the reviews `check` creates change nothing, nor do dry runs,
    which both servers answer without storing: tests/contract)."""
    return [
        (r.method, r.path)
        for r in kube.requests
        if r.method in WRITES and "/apis/" not in r.path and r.query.get("dryRun") != "All"
    ]


def recipe_secret(kube: LocalKube, namespace: str, host: str) -> None:
    auths = {host: {"username": "AWS", "password": "x", "auth": "QVdTOng="}}
    compact = json.dumps({"auths": auths}, separators=(",", ":"))  # as kubectl writes it
    data = {".dockerconfigjson": base64.b64encode(compact.encode()).decode()}
    kube.store.create(
        "secrets", namespace, {"metadata": {"name": "regcred"}, "type": "kubernetes.io/dockerconfigjson", "data": data}
    )


def test_a_complete_setup_passes_and_nothing_is_written(kube: LocalKube, invoke: Invoke) -> None:
    kube.store.add_namespace("team-c")
    recipe_secret(kube, "team-c", OWN_REGISTRY)
    code, report = check()
    assert (code, report["ok"]) == (0, True), report
    found = findings(report)
    assert found["AWS identity"][0] == "ok"
    assert found["ECR token, us-east-1"] == ("ok", found["ECR token, us-east-1"][1])
    assert OWN_REGISTRY in found["ECR token, us-east-1"][1]
    assert found["EKS authentication mode"][0] == "ok"
    assert found["Kubernetes authentication"] == (
        "ok",
        "as ecr-token-refresher (groups ecr-token-refresher, system:authenticated) | ",
    )
    assert found["target namespaces"][1].startswith("3: team-a, team-b, team-c")
    for permission in ("list namespaces", "list secrets 'regcred'", "get secrets 'regcred'", "create secrets"):
        assert found[f"may {permission}"][0] == "ok"
    # localkube has no admission policies: said, with the fix, without failing the check.
    assert found["admission policy"][0] == "unknown"
    assert "none confines this identity" in found["admission policy"][1]
    assert "Kubernetes 1.30 or later" in found["admission policy"][1]
    assert {n["namespace"]: n["state"] for n in report["namespaces"]} == {
        "team-a": "missing",
        "team-b": "missing",
        "team-c": "adoptable",
    }
    assert writes(kube) == []


def test_after_a_run_secrets_are_managed_with_their_expiry(
    kube: LocalKube, invoke: Invoke, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("NAMESPACES", "team-*")
    invoke()
    kube.clear_log()
    _, report = check()
    assert {n["state"] for n in report["namespaces"]} == {"managed"}
    assert all("fresh" in n["detail"] and "expires" in n["detail"] for n in report["namespaces"])
    assert writes(kube) == []


def test_a_missing_rbac_rule_is_one_failed_line_with_the_fix(aws: MotoAws, credentials: AwsCredentials) -> None:
    rules = [rule for rule in refresher_rules() if "secrets" not in rule.resources]
    rules.append(Rule.of("get,create,update", "secrets"))  # no list by name
    kube = local_eks_cluster(aws, credentials, rules=rules)
    for name in ("team-a", "team-b"):
        kube.store.add_namespace(name)
    try:
        code, report = check()
    finally:
        kube.stop()
    assert (code, report["ok"]) == (1, False)
    status, detail = findings(report)["may list secrets 'regcred'"]
    assert status == "failed"
    assert "not granted cluster-wide | apply the manifest this configuration renders: `make apply" in detail
    assert [f["check"] for f in report["checks"] if f["status"] == "failed"] == ["may list secrets 'regcred'"]
    assert writes(kube) == []


def test_no_access_entry_is_a_failed_authentication_naming_the_entry(aws: MotoAws, credentials: AwsCredentials) -> None:
    kube = local_eks_cluster(aws, credentials, access_entry=False)
    try:
        code, report = check()
    finally:
        kube.stop()
    assert code == 1
    status, detail = findings(report)["Kubernetes authentication"]
    assert status == "failed"
    assert "401 Unauthorized" in detail
    assert "EKS access entry" in detail
    assert writes(kube) == []


def test_a_named_namespace_that_does_not_exist_fails_as_refresh_would(kube: LocalKube) -> None:
    """`refresh --namespace team-zzz` fails ("does not exist"): check says so instead of "ready"."""
    stdout = io.StringIO()
    argv = ["check", "--cluster", CLUSTER_NAME, "--region", "us-east-1", "--namespace", "team-a"]
    code = main([*argv, "--namespace", "team-zzz", "--output", "json"], stdout=stdout, stderr=io.StringIO())
    report = json.loads(stdout.getvalue())
    assert code == 1
    assert {n["namespace"]: n["state"] for n in report["namespaces"]} == {"team-a": "missing", "team-zzz": "absent"}
    status, detail = findings(report)["named namespaces exist"]
    assert status == "failed"
    assert "do not exist (team-zzz): every run fails there | create them" in detail


def test_a_foreign_secret_is_a_skip_per_namespace_and_a_failed_line(kube: LocalKube) -> None:
    recipe_secret(kube, "team-b", "ghcr.io")
    code, report = check()
    assert code == 1
    assert {n["namespace"]: n["state"] for n in report["namespaces"]}["team-b"] == "foreign"
    status, detail = findings(report)["foreign secrets"]
    assert status == "failed"
    assert "1 namespace(s) hold a 'regcred' secret this tool does not manage (team-b)" in detail
    assert "rename or delete those secrets" in detail


def test_the_lambda_runs_it_for_a_manual_check_event_and_returns_the_report(
    kube: LocalKube, invoke: Invoke, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("NAMESPACES", "team-*")
    report = invoke({"check": True})
    assert report["ok"] is True
    assert [n["namespace"] for n in report["namespaces"]] == ["team-a", "team-b"]
    assert writes(kube) == []


def test_the_table_marks_each_line(kube: LocalKube) -> None:
    stdout = io.StringIO()
    code = main(["check", "--cluster", CLUSTER_NAME, "--region", "us-east-1"], stdout=stdout, stderr=io.StringIO())
    lines = stdout.getvalue().splitlines()
    assert code == 0
    assert lines[0].startswith("\u2713 AWS identity: arn:aws:iam::123456789012:role/ecr-token-refresher")
    assert lines[-1] == f"cluster {CLUSTER_NAME}: ready"


def test_without_aws_credentials_every_token_names_the_identity_as_the_fix(
    kube: LocalKube, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    code, report = check()
    assert code == 1
    found = findings(report)
    assert found["AWS identity"][0] == "failed"
    assert "give this shell AWS credentials" in found["AWS identity"][1]
    token = found["ECR token, us-east-1"]
    assert token[0] == "failed"
    assert "fix the AWS identity above first" in token[1]
    assert "ecr:GetAuthorizationToken (the stack grants it)" not in token[1]
