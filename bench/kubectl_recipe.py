"""The classic recipe users run from cron, as they run it: one ECR token, then for every namespace
`kubectl delete secret` followed by `kubectl create` (real kubectl, one process each).

kubectl's typed `create secret docker-registry` sends protobuf, which the local API server does not
speak, so the same object goes through `kubectl create -f - --validate=false` as JSON.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bench.measure import run_measured
from lambda_fn.dockerconfig import build_auths
from lambda_fn.models import RegistryCredential


def fetch_credential(ecr: Any) -> RegistryCredential:
    """What `aws ecr get-login-password` does, once per run."""
    data = ecr.get_authorization_token()["authorizationData"][0]
    password = base64.b64decode(data["authorizationToken"]).decode().partition(":")[2]
    host = data["proxyEndpoint"].removeprefix("https://")
    return RegistryCredential(host=host, password=password, expires_at=data["expiresAt"])


def run_recipe(namespaces: Sequence[str], *, kubeconfig: Path, cache_dir: Path, ecr: Any) -> list[float]:
    """Delete then create the secret in each namespace; returns each kubectl process's peak memory (MB)."""
    credential = fetch_credential(ecr)
    payload = base64.b64encode(json.dumps({"auths": build_auths([credential])}).encode()).decode()
    base = ["kubectl", "--kubeconfig", str(kubeconfig), "--cache-dir", str(cache_dir)]
    peaks: list[float] = []
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


def _kubectl(argv: list[str], stdin: str | None) -> float:
    """Run kubectl to completion; its own peak memory in MB."""
    done = run_measured(argv, stdin=stdin or "")
    if done.returncode:
        raise RuntimeError(f"kubectl {' '.join(argv[5:])} failed: {done.stderr.strip()}")
    return done.peak_mb
