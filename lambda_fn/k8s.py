"""The only module that imports the kubernetes client: ClusterApi over it, and how to connect.

An ApiClient is built per run from an explicit Configuration; the client's global default
configuration is never touched. TLS is always verified against the cluster's CA.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import urllib3
import yaml
from kubernetes import client as k8s
from kubernetes import config as kube_config
from kubernetes.client.exceptions import ApiException
from kubernetes.config.config_exception import ConfigException

from lambda_fn.errors import (
    AlreadyExists,
    ApiUnavailable,
    ConfigError,
    Conflict,
    Forbidden,
    Invalid,
    KubernetesError,
    NamespaceTerminating,
    NotFound,
    Problem,
    Unauthorized,
)
from lambda_fn.models import NamespaceInfo, SecretState, ServiceAccountState

PAGE_SIZE = 500
# (connect, read) seconds for one request; retries below come on top.
REQUEST_TIMEOUT = (5.0, 15.0)
MERGE_PATCH = "application/merge-patch+json"
SECRETS = "/api/v1/namespaces/{namespace}/secrets"
SECRET = SECRETS + "/{name}"
SERVICE_ACCOUNT = "/api/v1/namespaces/{namespace}/serviceaccounts/{name}"


def retry_policy() -> urllib3.Retry:
    """Retries the client makes by itself: dropped connections, 429/5xx (honouring Retry-After).

    Every write carries a resourceVersion or is a create, so a retried write that had in fact
    landed answers 409 and the core re-reads: retrying PUT/PATCH/POST cannot double-apply.
    """
    return urllib3.Retry(
        total=3,
        backoff_factor=0.2,
        status_forcelist=(429, 500, 502, 503, 504),
        allowed_methods=frozenset({"GET", "PUT", "PATCH", "POST"}),
        respect_retry_after_header=True,
        raise_on_status=False,
    )


def eks_configuration(endpoint: str, ca_pem: bytes, token: str, *, pool_size: int) -> k8s.Configuration:
    configuration = k8s.Configuration(
        host=endpoint,
        api_key={"BearerToken": token},
        api_key_prefix={"BearerToken": "Bearer"},
        ca_cert_data=ca_pem.decode(),  # in memory: the CA is never written to disk
    )
    return _tuned(configuration, pool_size=pool_size)


def kubeconfig_configuration(path: str | None, context: str | None, *, pool_size: int) -> tuple[k8s.Configuration, str]:
    """The configuration for `context` (default: the current one) of a kubeconfig, and its name."""
    configuration = k8s.Configuration()
    try:
        kube_config.load_kube_config(  # type: ignore[no-untyped-call]
            config_file=path, context=context, client_configuration=configuration, persist_config=False
        )
        _, current = kube_config.list_kube_config_contexts(config_file=path)  # type: ignore[no-untyped-call]
    except (ConfigException, OSError, yaml.YAMLError, ValueError, TypeError, KeyError) as exc:
        where = path or "the default kubeconfig (KUBECONFIG or ~/.kube/config)"
        raise ConfigError(
            [
                Problem(
                    "kubeconfig",
                    f"cannot use {where}" + (f" context {context!r}" if context else "") + f": {exc}",
                )
            ],
            source="kubeconfig",
        ) from exc
    return _tuned(configuration, pool_size=pool_size), context or current["name"]


def _tuned(configuration: k8s.Configuration, *, pool_size: int) -> k8s.Configuration:
    configuration.verify_ssl = True
    configuration.retries = retry_policy()
    # One connection per worker thread, reused across the namespaces it serves.
    configuration.connection_pool_maxsize = pool_size
    return configuration


@contextmanager
def connect(configuration: k8s.Configuration) -> Iterator[KubernetesCluster]:
    api_client = k8s.ApiClient(configuration)
    try:
        yield KubernetesCluster(api_client)
    finally:
        api_client.close()  # type: ignore[no-untyped-call]


class KubernetesCluster:
    """ClusterApi over the official client's ApiClient (auth, TLS, retries, serialization).

    Calls go through ApiClient.param_serialize/call_api rather than CoreV1Api: importing CoreV1Api
    builds ~250 pydantic model classes (measured +1.8 s of cold start here) and validates every call,
    for six endpoints whose JSON this module reads and writes as plain dicts anyway.
    """

    def __init__(self, api_client: k8s.ApiClient) -> None:
        self._api = api_client

    def list_namespaces(self, *, label_selector: str | None) -> Sequence[NamespaceInfo]:
        namespaces: list[NamespaceInfo] = []
        query: dict[str, str | int] = {"limit": PAGE_SIZE}
        if label_selector:
            query["labelSelector"] = label_selector
        while True:
            page = self._request("GET", "/api/v1/namespaces", query=query)
            namespaces += [
                NamespaceInfo(
                    name=item["metadata"]["name"],
                    terminating=item.get("status", {}).get("phase") == "Terminating"
                    or bool(item["metadata"].get("deletionTimestamp")),
                )
                for item in page.get("items") or []
            ]
            page_token = (page.get("metadata") or {}).get("continue")
            if not page_token:
                return namespaces
            query["continue"] = page_token

    def read_secret(self, namespace: str, name: str) -> SecretState | None:
        try:
            body = self._request("GET", SECRET, namespace=namespace, name=name)
        except NotFound:
            return None
        metadata = body.get("metadata", {})
        return SecretState(
            name=metadata.get("name", name),
            namespace=namespace,
            type=body.get("type", "Opaque"),
            labels=metadata.get("labels") or {},
            annotations=metadata.get("annotations") or {},
            data=body.get("data") or {},
            resource_version=metadata.get("resourceVersion"),
        )

    def create_secret(self, secret: SecretState) -> None:
        self._request("POST", SECRETS, namespace=secret.namespace, body=_secret_body(secret))

    def replace_secret(self, secret: SecretState) -> None:
        self._request("PUT", SECRET, namespace=secret.namespace, name=secret.name, body=_secret_body(secret))

    def read_service_account(self, namespace: str, name: str) -> ServiceAccountState | None:
        try:
            body = self._request("GET", SERVICE_ACCOUNT, namespace=namespace, name=name)
        except NotFound:
            return None
        return ServiceAccountState(
            name=name,
            namespace=namespace,
            image_pull_secrets=tuple(ref.get("name", "") for ref in body.get("imagePullSecrets") or []),
            resource_version=body["metadata"]["resourceVersion"],
        )

    def set_image_pull_secrets(self, account: ServiceAccountState, names: Sequence[str]) -> None:
        # A merge patch replaces the list whole; the resourceVersion in it makes the API server
        # refuse (409) if another writer changed the account since we read it.
        patch = {
            "metadata": {"resourceVersion": account.resource_version},
            "imagePullSecrets": [{"name": name} for name in names],
        }
        self._request(
            "PATCH",
            SERVICE_ACCOUNT,
            namespace=account.namespace,
            name=account.name,
            body=patch,
            content_type=MERGE_PATCH,
        )

    def _request(
        self,
        method: str,
        path: str,
        *,
        namespace: str | None = None,
        name: str | None = None,
        query: dict[str, str | int] | None = None,
        body: dict[str, Any] | None = None,
        content_type: str = "application/json",
    ) -> dict[str, Any]:
        """One API call; the JSON answer, or the project's error for a non-2xx or network failure."""
        path_params = {key: value for key, value in (("namespace", namespace), ("name", name)) if value is not None}
        headers = {"Accept": "application/json"} | ({"Content-Type": content_type} if body is not None else {})
        try:
            request = self._api.param_serialize(
                method=method,
                resource_path=path,
                path_params=path_params,
                query_params=list((query or {}).items()),
                header_params=headers,
                body=body,
                auth_settings=["BearerToken"],
            )
            response = self._api.call_api(*request, _request_timeout=REQUEST_TIMEOUT)
            response.read()  # type: ignore[no-untyped-call]
        except ApiException as exc:  # raised by the client for TLS failures (status 0)
            raise translate_error(exc.status or 0, exc.reason, exc.body) from exc
        except urllib3.exceptions.HTTPError as exc:
            raise ApiUnavailable(f"Kubernetes API unreachable: {type(exc).__name__}: {exc}") from exc
        if not 200 <= response.status <= 299:
            raise translate_error(response.status, response.reason, (response.data or b"").decode(errors="replace"))
        answer: dict[str, Any] = json.loads(response.data or b"{}")
        return answer


def _secret_body(secret: SecretState) -> dict[str, Any]:
    metadata: dict[str, Any] = {"name": secret.name, "namespace": secret.namespace}
    if secret.labels:
        metadata["labels"] = secret.labels
    if secret.annotations:
        metadata["annotations"] = secret.annotations
    if secret.resource_version:
        metadata["resourceVersion"] = secret.resource_version
    return {"apiVersion": "v1", "kind": "Secret", "metadata": metadata, "type": secret.type, "data": secret.data}


def translate_error(status: int, http_reason: str | None, body: str | None) -> KubernetesError:
    """The project's error for an API answer, with the server's own message (never the request)."""
    try:
        status_body = json.loads(body or "{}")
    except ValueError:
        status_body = {}
    if not isinstance(status_body, dict):
        status_body = {}
    reason = status_body.get("reason") or http_reason or "Error"
    message = f"{status} {reason}: {str(status_body.get('message') or http_reason)[:300]}"
    if status == 401:
        return Unauthorized(message)
    if status == 403:
        causes = (status_body.get("details") or {}).get("causes") or []
        if any(cause.get("reason") == "NamespaceTerminating" for cause in causes) or "being terminated" in message:
            return NamespaceTerminating(message)
        return Forbidden(message)
    if status == 404:
        return NotFound(message)
    if status == 409:
        return AlreadyExists(message) if reason == "AlreadyExists" else Conflict(message)
    if status in (400, 422):
        return Invalid(message, status=status)
    return ApiUnavailable(message, status=status or None)
