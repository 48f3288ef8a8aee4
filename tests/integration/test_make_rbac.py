"""`make rbac ... | kubectl apply -f -` works on a clone whose venv is still being set up: the set-up
talks on stderr, stdout carries the manifest only, and kubectl accepts all of it."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from localkube.kubeconfig import write_kubeconfig
from sandbox.real_apiserver import ADMIN_TOKEN, RealKube

pytestmark = pytest.mark.apiserver
ROOT = Path(__file__).parents[2]


def clone_with_stale_venv(target: Path) -> Path:
    """The tracked and untracked files of this tree, with the venv linked in: its lock is
    newer than the venv's stamp, so make runs the set-up recipe (python -m venv, pip install) first."""
    files = subprocess.run(
        ["git", "ls-files", "-co", "--exclude-standard"],  # noqa: S607
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    for name in files:
        if (ROOT / name).is_file():
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, target / name)
    (target / ".venv").symlink_to(ROOT / ".venv")
    (target / "requirements.lock").touch()
    return target


def run(argv: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    """`argv` (make, or bash with a README line) as a user's shell runs it: not as a child of this make."""
    environment = {key: value for key, value in os.environ.items() if not key.startswith("MAKE")}
    return subprocess.run(argv, cwd=cwd, capture_output=True, text=True, env=environment, timeout=600, check=True)  # noqa: S603


def test_make_rbac_pipes_into_kubectl_apply_while_the_venv_is_set_up(real_kube: RealKube, tmp_path: Path) -> None:
    clone = clone_with_stale_venv(tmp_path / "clone")
    made = run(["make", "rbac", "CONTEXT=clusterName=demo namespaces=mr-* serviceAccounts=default"], clone)
    assert "setting up .venv" in made.stderr  # the set-up ran, on stderr
    assert made.stdout.startswith("# ecr-token-refresher for cluster demo")
    kubeconfig = write_kubeconfig(tmp_path / "admin", server=real_kube.url, ca_pem=real_kube.ca_pem, token=ADMIN_TOKEN)
    applied = subprocess.run(  # noqa: S603 - kubectl from PATH
        ["kubectl", f"--kubeconfig={kubeconfig}", "apply", "--dry-run=client", "-f", "-"],  # noqa: S607
        input=made.stdout,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert applied.returncode == 0, applied.stderr
    # kubectl applies in file order: the policies and their bindings before the grants they confine.
    assert applied.stdout.splitlines() == [
        "validatingadmissionpolicy.admissionregistration.k8s.io/ecr-token-refresher created (dry run)",
        "validatingadmissionpolicybinding.admissionregistration.k8s.io/ecr-token-refresher created (dry run)",
        "validatingadmissionpolicy.admissionregistration.k8s.io/ecr-token-refresher-serviceaccounts created (dry run)",
        "validatingadmissionpolicybinding.admissionregistration.k8s.io/ecr-token-refresher-serviceaccounts created "
        "(dry run)",
        "clusterrole.rbac.authorization.k8s.io/ecr-token-refresher created (dry run)",
        "clusterrolebinding.rbac.authorization.k8s.io/ecr-token-refresher created (dry run)",
        "lease.coordination.k8s.io/ecr-token-refresher created (dry run)",
        "role.rbac.authorization.k8s.io/ecr-token-refresher-lease created (dry run)",
        "rolebinding.rbac.authorization.k8s.io/ecr-token-refresher-lease created (dry run)",
    ]


def readme_command(prefix: str) -> str:
    """The documented command (docs/clusters.md) that starts with `prefix`, its continuation lines joined."""
    lines = (ROOT / "docs" / "clusters.md").read_text().splitlines()
    start = next(index for index, line in enumerate(lines) if line.startswith(prefix))
    command = lines[start]
    while command.endswith("\\"):
        start += 1
        command = command[:-1] + lines[start]
    return command.split("|")[0].strip()


def test_the_readmes_commands_for_a_cluster_outside_eks_keep_their_json(tmp_path: Path) -> None:
    """`make rbac CONTEXT='clusters=[{...}]'` and `make deploy CDK_ARGS='-c clusters=[{...}]'` as the
    README writes them: the JSON reaches the program with its quotes (a CDK stand-in prints its argv)."""
    rbac = run(["bash", "-c", readme_command("make rbac CLUSTER=onprem")], ROOT)
    assert rbac.stdout.startswith(
        "# ecr-token-refresher for cluster onprem: RBAC and admission policy for ServiceAccount"
    )
    printer = tmp_path / "cdk"
    printer.write_text("#!/usr/bin/env python3\nimport json, sys\nprint(json.dumps(sys.argv[1:]))\n")
    printer.chmod(0o755)
    deploy = run(["bash", "-c", readme_command("make deploy CDK_ARGS='-c clusters=") + f" CDK={printer}"], ROOT)
    argv = json.loads(deploy.stdout.splitlines()[-1])
    assert argv[:4] == ["deploy", "--no-notices", "--all", "-c"]  # every environment's stack
    assert json.loads(argv[4].removeprefix("clusters="))[0]["name"] == "onprem"
    assert argv[5:] == ["-c", "namespaces=team-*"]
    chosen = run(
        ["make", "deploy", "STACKS=EcrTokenRefresher Other", "CDK_ARGS=-c clusterName=x", f"CDK={printer}"], ROOT
    )
    assert json.loads(chosen.stdout.splitlines()[-1]) == [
        "deploy",
        "--no-notices",
        "EcrTokenRefresher",
        "Other",
        "-c",
        "clusterName=x",
    ]
    spaced = run(["make", "bootstrap", r"CDK_ARGS=-c namespaceSelector=env\ in\ (dev,prod)", f"CDK={printer}"], ROOT)
    assert json.loads(spaced.stdout.splitlines()[-1])[-2:] == ["-c", "namespaceSelector=env in (dev,prod)"]
