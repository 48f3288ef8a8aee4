"""The classic recipe users run from cron, as they run it: one ECR token, then for every namespace
`kubectl delete secret` followed by `kubectl create` (real kubectl, one process each).

kubectl's typed `create secret docker-registry` sends protobuf, which the local API server does not
speak, so the same object goes through `kubectl create -f - --validate=false` as JSON.
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from lambda_fn.dockerconfig import build_auths
from lambda_fn.models import RegistryCredential


def fetch_credential(ecr: Any) -> RegistryCredential:
    """What `aws ecr get-login-password` does, once per run."""
    data = ecr.get_authorization_token()["authorizationData"][0]
    password = base64.b64decode(data["authorizationToken"]).decode().partition(":")[2]
    host = data["proxyEndpoint"].removeprefix("https://")
    return RegistryCredential(host=host, password=password, expires_at=data["expiresAt"])


def run_recipe(namespaces: Sequence[str], *, kubeconfig: Path, cache_dir: Path, ecr: Any) -> list[int]:
    """Delete then create the secret in each namespace; returns each kubectl process's peak RSS (KB)."""
    credential = fetch_credential(ecr)
    payload = base64.b64encode(json.dumps({"auths": build_auths([credential])}).encode()).decode()
    base = ["kubectl", "--kubeconfig", str(kubeconfig), "--cache-dir", str(cache_dir)]
    peaks: list[int] = []
    for namespace in namespaces:
        secret = {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": "regcred", "namespace": namespace},
            "type": "kubernetes.io/dockerconfigjson",
            "data": {".dockerconfigjson": payload},
        }
        peaks.append(_kubectl([*base, "delete", "secret", "regcred", "-n", namespace, "--ignore-not-found"], None))
        peaks.append(_kubectl([*base, "create", "-f", "-", "--validate=false"], json.dumps(secret)))
    return peaks


def _kubectl(argv: list[str], stdin: str | None) -> int:
    """Run kubectl to completion; its peak RSS in KB (os.wait4 reaps it with its own usage)."""
    process = subprocess.Popen(  # noqa: S603 - kubectl with our arguments
        argv, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
    )
    assert process.stdin is not None  # noqa: S101 - PIPE asked for
    assert process.stderr is not None  # noqa: S101
    process.stdin.write(stdin or "")
    process.stdin.close()
    errors = process.stderr.read()
    _, status, usage = os.wait4(process.pid, 0)
    process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode:
        raise RuntimeError(f"kubectl {' '.join(argv[5:])} failed: {errors.strip()}")
    return usage.ru_maxrss
