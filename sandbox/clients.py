"""The official kubernetes client pointed at a test server (local or real) with a bearer token."""

from __future__ import annotations

from typing import Any

from kubernetes import client as k8s


def api_client(url: str, ca_pem: bytes, token: str, *, retries: Any = False) -> k8s.ApiClient:
    """Retries pinned (off by default) so a server's request log counts every attempt."""
    configuration = k8s.Configuration(
        host=url,
        api_key={"BearerToken": token},
        api_key_prefix={"BearerToken": "Bearer"},
        ca_cert_data=ca_pem.decode(),
    )
    configuration.retries = retries
    return k8s.ApiClient(configuration)
