"""The CLI: kubeconfig mode against any API server, EKS mode, exit codes 0 / 1 / 2."""

from __future__ import annotations

import io
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from lambda_fn.cli import build_parser, main, settings_from_args
from lambda_fn.runner import EksCluster, configured_cluster
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
    assert lines[0] == f"target: context localkube of {kubeconfig} ({kube.url}) (dry run)"
    assert lines[1].split() == ["NAMESPACE", "OUTCOME", "DETAIL"]
    assert lines[2].split()[:2] == ["team-a", "created"]
    assert "(dry run)" in out
    assert kube.store.find("secrets", "team-a", "regcred") is None


class Terminal(io.StringIO):
    """A stream that says it is a terminal, as a person's stdout and stderr do."""

    def isatty(self) -> bool:
        return True


@pytest.mark.parametrize(
    ("output", "stdout_is_a_terminal", "drawn"),
    [("table", True, True), ("json", True, False), ("table", False, False)],
)
def test_progress_is_drawn_only_for_a_person_at_a_terminal(
    kube: LocalKube, kubeconfig: str, output: str, stdout_is_a_terminal: bool, drawn: bool
) -> None:
    stdout, stderr = Terminal() if stdout_is_a_terminal else io.StringIO(), Terminal()
    argv = ["refresh", "--kubeconfig", kubeconfig, "--namespace", "team-*", "--output", output]
    assert main(argv, stdout=stdout, stderr=stderr) == 0
    if drawn:
        assert "\r2/2 namespaces  created 2" in stderr.getvalue()
        assert stderr.getvalue().endswith("\r" + " " * len("2/2 namespaces  created 2") + "\r")  # line cleared
    else:
        assert stderr.getvalue() == ""
    assert "namespaces  created" not in stdout.getvalue()


@pytest.mark.parametrize(
    ("flags", "namespaces", "selector"),
    [(["--namespace", "default"], ("default",), None), (["--selector", "tier=web"], (), "tier=web")],
)
def test_targeting_flags_replace_the_environments_targeting_as_a_whole(
    flags: list[str], namespaces: tuple[str, ...], selector: str | None
) -> None:
    """One override rule everywhere (flags, events): given targeting replaces the configured one whole."""
    environment = {"AWS_REGION": "eu-west-1", "NAMESPACES": "team-*", "NAMESPACE_SELECTOR": "ecr-pull=enabled"}
    args = build_parser().parse_args(["refresh", "--kubeconfig", "k", *flags])
    settings = settings_from_args(args, environment)
    assert (settings.namespaces, settings.namespace_selector) == (namespaces, selector)
    untouched = settings_from_args(build_parser().parse_args(["refresh", "--kubeconfig", "k"]), environment)
    assert (untouched.namespaces, untouched.namespace_selector) == (("team-*",), "ecr-pull=enabled")


@pytest.mark.parametrize(
    ("flags", "cluster", "secret", "context"),
    [
        (["--cluster", "prod"], "prod", None, None),
        (["--kubeconfig-secret", "other"], None, "other", None),
        (["--kubeconfig-secret", "other", "--context", "b"], None, "other", "b"),
    ],
)
def test_a_cluster_flag_replaces_the_environments_way_to_the_cluster(
    flags: list[str], cluster: str | None, secret: str | None, context: str | None
) -> None:
    """KUBECONFIG_SECRET (and its context) in the environment never wins over a cluster chosen by flag."""
    environment = {"AWS_REGION": "eu-west-1", "KUBECONFIG_SECRET": "onprem-kubeconfig", "KUBECONFIG_CONTEXT": "a"}
    settings = settings_from_args(build_parser().parse_args(["refresh", *flags]), environment)
    assert (settings.kubeconfig_secret, settings.kubeconfig_context) == (secret, context)
    if cluster:
        assert configured_cluster(settings) == EksCluster(cluster)


def test_a_glob_that_matches_nothing_says_so(kube: LocalKube, kubeconfig: str) -> None:
    code, out, _ = run_cli("refresh", "--kubeconfig", kubeconfig, "--namespace", "nothing-*")
    assert code == 0
    assert out.splitlines()[1].startswith("no namespace matched the targets")


def test_a_glob_run_that_cannot_list_says_nothing_was_attempted(kube: LocalKube, kubeconfig: str) -> None:
    kube.faults.append(FaultRule(path="/api/v1/namespaces", status=500))
    code, out, _ = run_cli("refresh", "--kubeconfig", kubeconfig, "--namespace", "team-*")
    assert code == 1
    assert out.splitlines()[1].startswith("the target namespaces could not be listed")


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
        (["--tenants", '[{"name": "a"'], "--tenants: not JSON"),
        (["--tenants", '[{"name": "a", "namespaces": ["x"]}]'], "--tenants: tenant 'a': registries is a non-empty"),
        (["--context", "nope"], "--context: "),
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


def test_without_a_region_the_error_names_the_flag(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("AWS_REGION", "AWS_DEFAULT_REGION", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", os.devnull)
    code, out, err = run_cli("check", "--cluster", CLUSTER_NAME)
    assert (code, out) == (2, "")
    assert "--region: required: an AWS region such as eu-west-1 (or AWS_REGION" in err


@pytest.mark.parametrize(
    ("content", "flag", "message"),
    [
        (None, "--kubeconfig", "does not exist"),
        ("{not yaml: [", "--kubeconfig", "is not a usable kubeconfig"),
        ("apiVersion: v1\nkind: Config\nclusters: []\ncontexts: []\n", "--context", "sets no current context"),
    ],
)
def test_a_missing_or_malformed_kubeconfig_exits_2(
    credentials: object, tmp_path: Path, content: str | None, flag: str, message: str
) -> None:
    path = tmp_path / "kubeconfig"
    if content is not None:
        path.write_text(content)
    code, out, err = run_cli("refresh", "--kubeconfig", str(path))
    assert (code, out) == (2, "")
    assert f"{flag}: {path} {message}" in err


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


def test_a_reader_that_goes_away_ends_the_command_quietly(kube: LocalKube, kubeconfig: str) -> None:
    """`check ... | head -1`: the pipe closes after the first line; no BrokenPipeError, no traceback."""
    reader, writer = os.pipe()
    os.close(reader)  # the reader is gone before the first write
    completed = subprocess.run(  # noqa: S603 - our own module
        [sys.executable, "-m", "lambda_fn", "check", "--kubeconfig", kubeconfig],
        stdout=writer,
        stderr=subprocess.PIPE,
        text=True,
        env=dict(os.environ),
        timeout=60,
        check=False,
    )
    os.close(writer)
    assert completed.returncode == 1
    assert completed.stderr == ""


def at_a_terminal() -> None:
    """In the child, before exec: Ctrl-C as at a terminal. A shell that starts these tests in the
    background without job control leaves SIGINT ignored, and a child inherits that (Python then never
    raises KeyboardInterrupt)."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def test_an_interrupt_exits_130_without_a_traceback(kubeconfig: str, tmp_path: Path) -> None:
    """Ctrl-C while a run waits on the API server (here one that accepts and never answers)."""
    silent = socket.create_server(("127.0.0.1", 0))
    config = yaml.safe_load(Path(kubeconfig).read_text())
    config["clusters"][0]["cluster"]["server"] = f"https://127.0.0.1:{silent.getsockname()[1]}"
    stalled = tmp_path / "stalled"
    stalled.write_text(yaml.safe_dump(config))
    with (
        silent,
        subprocess.Popen(  # noqa: S603 - our own module
            [sys.executable, "-m", "lambda_fn", "refresh", "--kubeconfig", str(stalled), "--namespace", "team-a"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=dict(os.environ),
            preexec_fn=at_a_terminal,  # noqa: PLW1509 - resets one disposition, takes no lock
        ) as running,
    ):
        silent.accept()  # the run is now waiting for the TLS handshake
        running.send_signal(signal.SIGINT)
        _, stderr = running.communicate(timeout=60)
    assert running.returncode == 130
    assert "interrupted: every secret is as it was or fully written" in stderr
    assert "Traceback" not in stderr


def test_an_interrupted_run_prints_what_it_settled_and_starts_nothing_more(kube: LocalKube, kubeconfig: str) -> None:
    """Ctrl-C in the middle of a run: the namespaces settled so far are shown, the queued ones never start."""
    names = [f"slow-{number:02}" for number in range(40)]
    for name in names:
        kube.store.add_namespace(name)
    kube.latency = 0.1  # every request: 40 namespaces x 2 requests on 2 connections take about 4 s
    argv = ["refresh", "--kubeconfig", kubeconfig, "--namespace", "slow-*", "--concurrency", "2"]
    with subprocess.Popen(  # noqa: S603 - our own module
        [sys.executable, "-m", "lambda_fn", *argv],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=dict(os.environ),
        preexec_fn=at_a_terminal,  # noqa: PLW1509 - resets one disposition, takes no lock
    ) as running:
        assert running.stdout is not None
        assert running.stdout.readline().startswith("target: ")
        time.sleep(1.0)
        running.send_signal(signal.SIGINT)
        stdout, stderr = running.communicate(timeout=60)
    assert running.returncode == 130
    assert "Traceback" not in stderr
    assert stderr.strip() == "interrupted: every secret is as it was or fully written; run again to finish"
    written = {name for name in names if kube.store.find("secrets", name, "regcred") is not None}
    shown = {line.split()[0] for line in stdout.splitlines() if line.startswith("slow-")}
    assert 0 < len(written) < len(names)  # the queued namespaces were never started
    assert shown == written  # every write that landed is reported, and nothing else
    assert (
        f"error: interrupted after {len(written)} of {len(names)} namespaces; the others were not attempted" in stdout
    )


def test_cluster_and_kubeconfig_together_are_bad_usage(kube: LocalKube, kubeconfig: str) -> None:
    code, out, err = run_cli("refresh", "--cluster", CLUSTER_NAME, "--kubeconfig", kubeconfig)
    assert (code, out) == (2, "")
    assert "--cluster: give one of --cluster (EKS), --kubeconfig [--context] or --kubeconfig-secret" in err
    assert kube.requests == []


def test_an_unknown_aws_profile_is_bad_usage_not_a_traceback(
    kube: LocalKube, kubeconfig: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    (tmp_path / "config").write_text("[profile dev]\nregion = eu-west-1\n")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "config"))
    monkeypatch.setenv("AWS_PROFILE", "prod")
    code, out, err = run_cli("refresh", "--kubeconfig", kubeconfig)
    assert (code, out) == (2, "")
    assert "AWS_PROFILE: profile 'prod' is not in ~/.aws/config or ~/.aws/credentials (known: dev)" in err
    assert "Traceback" not in err


def test_insecure_skip_tls_verify_is_overridden_and_the_error_says_so(kube: LocalKube, tmp_path: Path) -> None:
    path = tmp_path / "kubeconfig"
    document = yaml.safe_load(Path(kube.write_kubeconfig(path, token="admin-token")).read_text())
    cluster = document["clusters"][0]["cluster"]
    del cluster["certificate-authority-data"]
    cluster["insecure-skip-tls-verify"] = True
    path.write_text(yaml.safe_dump(document))
    code, out, _ = run_cli("refresh", "--kubeconfig", str(path), "--output", "json")
    assert code == 1
    reason = json.loads(out)["namespaces"][0]["reason"]
    assert "CERTIFICATE_VERIFY_FAILED" in reason
    assert "insecure-skip-tls-verify, which this tool ignores: TLS is always verified" in reason
    assert kube.requests == []  # no request got past the TLS handshake


def test_a_short_lived_exec_plugin_token_is_not_fetched_for_every_request(kube: LocalKube, tmp_path: Path) -> None:
    """The client re-runs an exec plugin on every request once its token has < 5 minutes left."""
    runs = tmp_path / "runs"
    plugin = tmp_path / "token-plugin"
    plugin.write_text(
        "#!/bin/sh\n"
        f"echo run >> {runs}\n"
        'expiry=$(date -u -d "+4 minutes" +%Y-%m-%dT%H:%M:%SZ)\n'
        'printf \'{"apiVersion":"client.authentication.k8s.io/v1","kind":"ExecCredential",'
        '"status":{"token":"admin-token","expirationTimestamp":"%s"}}\' "$expiry"\n'
    )
    plugin.chmod(0o755)
    path = tmp_path / "kubeconfig"
    document = yaml.safe_load(Path(kube.write_kubeconfig(path, token="unused")).read_text())
    document["users"][0]["user"] = {
        "exec": {"apiVersion": "client.authentication.k8s.io/v1", "command": str(plugin), "interactiveMode": "Never"}
    }
    path.write_text(yaml.safe_dump(document))
    for index in range(10):
        kube.store.add_namespace(f"exec-{index}")
    code, out, _ = run_cli("refresh", "--kubeconfig", str(path), "--namespace", "exec-*", "--output", "json")
    assert code == 0, out
    assert json.loads(out)["counts"]["created"] == 10
    assert len(kube.requests) >= 12
    assert len(runs.read_text().splitlines()) == 1


@pytest.mark.parametrize("command", ["refresh", "check"])
def test_a_kubeconfig_or_context_that_cannot_be_used_is_bad_usage_for_both_commands(
    kube: LocalKube, kubeconfig: str, tmp_path: Path, command: str
) -> None:
    code, out, err = run_cli(command, "--kubeconfig", str(tmp_path / "missing"))
    assert (code, out) == (2, "")
    assert f"--kubeconfig: {tmp_path / 'missing'} does not exist" in err
    code, out, err = run_cli(command, "--kubeconfig", kubeconfig, "--context", "prod")
    assert (code, out) == (2, "")
    assert f"--context: {kubeconfig} has no context 'prod' (it has: localkube)" in err
    assert kube.requests == []


def test_a_rejected_kubeconfig_user_is_told_to_renew_it_not_to_create_an_access_entry(
    kube: LocalKube, tmp_path: Path
) -> None:
    path = kube.write_kubeconfig(tmp_path / "kubeconfig", token="expired-token")
    code, out, _ = run_cli("refresh", "--kubeconfig", str(path), "--output", "json")
    assert code == 1
    reason = json.loads(out)["namespaces"][0]["reason"]
    assert "401 Unauthorized" in reason
    assert "the user of context localkube was rejected: renew its token or certificate" in reason
    assert "access entry" not in reason


@pytest.mark.parametrize("argv", [["--help"], ["refresh", "--help"], ["check", "--help"]])
def test_help_shows_examples_and_every_exit_code(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        build_parser().parse_args(argv)
    shown = capsys.readouterr().out
    assert "ecr-token-refresher check --kubeconfig" in shown
    for code in ("0 ", "1 ", "2 ", "130 "):
        assert f"\n  {code}" in shown


def test_a_kubeconfig_without_a_current_context_serves_the_context_given(kube: LocalKube, tmp_path: Path) -> None:
    """As kubectl does: `--context` names the context, whatever current-context says (or lacks)."""
    path = kube.write_kubeconfig(tmp_path / "kubeconfig", token="admin-token")
    document = yaml.safe_load(path.read_text())
    del document["current-context"]
    path.write_text(yaml.safe_dump(document))
    code, _, err = run_cli("refresh", "--kubeconfig", str(path), "--namespace", "team-a")
    assert code == 2
    assert "--context: " in err
    assert "sets no current context: give one of localkube" in err
    code, out, err = run_cli("refresh", "--kubeconfig", str(path), "--context", "localkube", "--namespace", "team-a")
    assert (code, err) == (0, ""), out
    assert kube.store.find("secrets", "team-a", "regcred") is not None


def test_a_registry_role_arn_may_hold_a_comma() -> None:
    """Each --registry value is one entry, read whole (IAM allows commas in role names)."""
    host, arn = "210987654321.dkr.ecr.eu-west-1.amazonaws.com", "arn:aws:iam::210987654321:role/pull,team-a"
    args = build_parser().parse_args(["refresh", "--kubeconfig", "k", "--registry", f"{host}={arn}"])
    settings = settings_from_args(args, {"AWS_REGION": "eu-west-1"})
    assert [(spec.host, spec.role_arn) for spec in settings.registries] == [(host, arn)]


def test_tenants_given_as_a_flag_replace_the_environments() -> None:
    host = "210987654321.dkr.ecr.eu-west-1.amazonaws.com"
    registry = f"{host}=arn:aws:iam::210987654321:role/team-a-pull"
    document = json.dumps([{"name": "team-a", "namespaces": ["team-a"], "registries": [registry]}])
    args = build_parser().parse_args(["refresh", "--kubeconfig", "k", "--namespace", "team-a", "--tenants", document])
    settings = settings_from_args(args, {"AWS_REGION": "eu-west-1", "TENANTS": "[]"})
    assert [(tenant.name, set(tenant.hosts)) for tenant in settings.tenants] == [("team-a", {host})]
