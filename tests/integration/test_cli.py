"""The CLI: kubeconfig mode against any API server, EKS mode, exit codes 0 / 1 / 2."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from lambda_fn.cli import main
from localkube import FaultRule, LocalKube
from sandbox.eks_cluster import CLUSTER_NAME


def run_cli(*argv: str) -> tuple[int, str, str]:
    stdout, stderr = io.StringIO(), io.StringIO()
    code = main(list(argv), stdout=stdout, stderr=stderr)
    return code, stdout.getvalue(), stderr.getvalue()


@pytest.fixture
def kubeconfig(kube: LocalKube, tmp_path: Path) -> str:
    return str(kube.write_kubeconfig(tmp_path / "kubeconfig", token="admin-token"))


def test_kubeconfig_mode_writes_secrets_and_prints_json(kube: LocalKube, kubeconfig: str) -> None:
    code, out, err = run_cli("refresh", "--kubeconfig", kubeconfig, "--namespace", "team-*", "--output", "json")
    assert (code, err) == (0, "")
    summary = json.loads(out)
    assert summary["cluster"] == "localkube"
    assert [(n["namespace"], n["outcome"]) for n in summary["namespaces"]] == [
        ("team-a", "created"),
        ("team-b", "created"),
    ]
    assert kube.store.get("secrets", "team-a", "regcred")["type"] == "kubernetes.io/dockerconfigjson"
    assert {r.user for r in kube.requests} == {"admin"}


def test_the_table_is_readable(kube: LocalKube, kubeconfig: str) -> None:
    code, out, _ = run_cli("refresh", "--kubeconfig", kubeconfig, "--namespace", "team-a", "--dry-run")
    assert code == 0
    lines = out.splitlines()
    assert lines[0].split() == ["NAMESPACE", "OUTCOME", "DETAIL"]
    assert lines[1].split()[:2] == ["team-a", "created"]
    assert "(dry run)" in out
    assert kube.store.find("secrets", "team-a", "regcred") is None


def test_a_failed_namespace_exits_1(kube: LocalKube, kubeconfig: str) -> None:
    kube.faults.append(FaultRule(path="/namespaces/team-b/", status=500))
    code, out, _ = run_cli("refresh", "--kubeconfig", kubeconfig, "--namespace", "team-*")
    assert code == 1
    assert "failed" in out


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--namespace", "Bad_NS"], "--namespace: 'Bad_NS' is not a namespace name"),
        (["--selector", "a in ("], "--selector: 'a in (' is not a label selector"),
        (["--registry", "docker.io"], "--registry: 'docker.io' is not an ECR registry host"),
        (["--concurrency", "0"], "--concurrency: must be from 1 to 64"),
        (["--context", "nope"], "kubeconfig: cannot use"),
    ],
)
def test_bad_usage_exits_2_naming_the_flag_and_writes_nothing(
    kube: LocalKube, kubeconfig: str, flags: list[str], message: str
) -> None:
    code, out, err = run_cli("refresh", "--kubeconfig", kubeconfig, *flags)
    assert code == 2
    assert message in err
    assert out == ""
    assert kube.requests == []


@pytest.mark.parametrize(
    "content", [None, "{not yaml: [", "apiVersion: v1\nkind: Config\nclusters: []\ncontexts: []\n"]
)
def test_a_missing_or_malformed_kubeconfig_exits_2(credentials: object, tmp_path: Path, content: str | None) -> None:
    path = tmp_path / "kubeconfig"
    if content is not None:
        path.write_text(content)
    code, out, err = run_cli("refresh", "--kubeconfig", str(path))
    assert (code, out) == (2, "")
    assert f"kubeconfig: cannot use {path}" in err


def test_eks_mode_from_the_cli(kube: LocalKube) -> None:
    code, out, _ = run_cli("refresh", "--cluster", CLUSTER_NAME, "--region", "us-east-1", "--output", "json")
    assert code == 0
    assert json.loads(out)["counts"]["created"] == 1
    assert {r.user for r in kube.requests} == {"ecr-token-refresher"}


def test_python_dash_m_runs_the_same_cli(kube: LocalKube, kubeconfig: str) -> None:
    completed = subprocess.run(  # noqa: S603 - our own module
        [sys.executable, "-m", "lambda_fn", "refresh", "--kubeconfig", kubeconfig, "--output", "json"],
        capture_output=True,
        text=True,
        env=dict(os.environ),
        timeout=60,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr
    assert json.loads(completed.stdout)["namespaces"] == [{"namespace": "default", "outcome": "created"}]
