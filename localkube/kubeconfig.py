"""A one-cluster kubeconfig file: for kubectl and the CLI, and for kube-apiserver's webhook config."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import yaml


def write_kubeconfig(
    path: Path,
    *,
    server: str,
    ca_pem: bytes | None,
    token: str | None = None,
    name: str = "localkube",
    client_certificate: tuple[bytes, bytes] | None = None,
) -> Path:
    """`server` trusted through `ca_pem` (None: plain HTTP), as a user with `token` or with a client
    `(certificate, key)` in PEM (neither: no credentials)."""
    cluster: dict[str, Any] = {"server": server}
    if ca_pem is not None:
        cluster["certificate-authority-data"] = base64.b64encode(ca_pem).decode()
    document = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": name, "cluster": cluster}],
        "users": [{"name": name, "user": _user(token, client_certificate)}],
        "contexts": [{"name": name, "context": {"cluster": name, "user": name}}],
        "current-context": name,
    }
    path.write_text(yaml.safe_dump(document))
    path.chmod(0o600)  # it may hold a bearer token
    return path


def _user(token: str | None, client_certificate: tuple[bytes, bytes] | None) -> dict[str, str]:
    if client_certificate is not None:
        certificate, key = client_certificate
        return {
            "client-certificate-data": base64.b64encode(certificate).decode(),
            "client-key-data": base64.b64encode(key).decode(),
        }
    return {"token": token} if token else {}
