"""`make rbac ... | kubectl apply -f -` works on a clone whose venv is still being set up: the set-up
talks on stderr, stdout carries the manifest only, and kubectl accepts all of it."""

from __future__ import annotations

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


def test_make_rbac_pipes_into_kubectl_apply_while_the_venv_is_set_up(real_kube: RealKube, tmp_path: Path) -> None:
    clone = clone_with_stale_venv(tmp_path / "clone")
    environment = {key: value for key, value in os.environ.items() if not key.startswith("MAKE")}
    made = subprocess.run(
        ["make", "rbac", "CONTEXT=clusterName=demo namespaces=mr-* serviceAccounts=default"],  # noqa: S607
        cwd=clone,
        capture_output=True,
        text=True,
        env=environment,
        timeout=600,
        check=True,
    )
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
    assert applied.stdout.splitlines() == [
        "clusterrole.rbac.authorization.k8s.io/ecr-token-refresher created (dry run)",
        "clusterrolebinding.rbac.authorization.k8s.io/ecr-token-refresher created (dry run)",
        "validatingadmissionpolicy.admissionregistration.k8s.io/ecr-token-refresher created (dry run)",
        "validatingadmissionpolicybinding.admissionregistration.k8s.io/ecr-token-refresher created (dry run)",
        "validatingadmissionpolicy.admissionregistration.k8s.io/ecr-token-refresher-serviceaccounts created (dry run)",
        "validatingadmissionpolicybinding.admissionregistration.k8s.io/ecr-token-refresher-serviceaccounts created "
        "(dry run)",
    ]
