"""ClusterApi over the official kubernetes client's ApiClient (auth, TLS, serialization).

Calls go through ApiClient.param_serialize/call_api rather than CoreV1Api: importing CoreV1Api
builds ~250 pydantic model classes (measured +1.8 s of cold start) and validates every call, for a
handful of endpoints whose JSON this module reads and writes as plain dicts anyway.

Retries: urllib3's Retry decides what is retried and how long to back off (Retry-After honoured, but
capped); the loop here runs it, because only it knows the run's deadline: no request, retry or wait
outlasts `time_left()`, so a Lambda run always ends with its summary.
"""

from __future__ import annotations

import copy
import http
import json
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import urllib3
from kubernetes import client as k8s
from kubernetes.client.exceptions import ApiException

from lambda_fn.errors import (
    AlreadyExists,
    ApiUnavailable,
    Conflict,
    Forbidden,
    Gone,
    Invalid,
    KubernetesError,
    NamespaceTerminating,
    NotFound,
    Unauthorized,
    redact,
)
from lambda_fn.models import (
    LEASE_GROUP,
    FieldPath,
    LeaseState,
    NamespaceInfo,
    SecretState,
    ServiceAccountState,
    WriteRecord,
)
from lambda_fn.secret_contract import FIELD_MANAGER

# Measured with `make bench` (fresh run, N=5,000, 20 ms, median core s): 500 a page 1.07, 1,000 0.79,
# 2,000 0.58. 1,000 bounds each response kube-apiserver builds once a minute (~0.9 MB of metadata);
# 2,000 would save 0.2 s a run at that size (docs/performance.md).
PAGE_SIZE = 1000
# (connect, read) seconds for one attempt at most; less when the deadline is nearer.
REQUEST_TIMEOUT = (5.0, 15.0)
# A Retry-After longer than this is not waited for in full (a throttled server may ask for hours).
RETRY_AFTER_MAX = 10
# An attempt with less time than this left is not started.
MIN_ATTEMPT_SECONDS = 0.5
MERGE_PATCH = "application/merge-patch+json"
JSON = "application/json"
# Metadata only: a list of 5,000 secrets is ~3 MB instead of ~75 MB with their tokens.
METADATA_LIST = f"{JSON};as=PartialObjectMetadataList;g=meta.k8s.io;v=v1,{JSON}"
# Namespaces as the server prints them (`kubectl get namespaces`, with includeObject=None): a row of cells
# per namespace and no object. All a run needs, the name and whether it is being deleted, in an eighth of
# the metadata list's bytes, which carry every namespace's managedFields (20,000 namespaces: 1.2 MB, not
# 10.5 MB; `make bench-apiserver`). A server that prints no table answers with the plain list instead.
NAMESPACE_TABLE = f"{JSON};as=Table;g=meta.k8s.io;v=v1,{JSON}"
SECRETS = "/api/v1/namespaces/{namespace}/secrets"
SECRET = SECRETS + "/{name}"
ALL_SECRETS = "/api/v1/secrets"
ALL_SERVICE_ACCOUNTS = "/api/v1/serviceaccounts"
NAMESPACES = "/api/v1/namespaces"
SERVICE_ACCOUNT = "/api/v1/namespaces/{namespace}/serviceaccounts/{name}"
ACCESS_REVIEWS = "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews"
SUBJECT_REVIEWS = "/apis/authentication.k8s.io/v1/selfsubjectreviews"
LEASES = f"/apis/{LEASE_GROUP}/v1/namespaces/{{namespace}}/leases"
LEASE = LEASES + "/{name}"
# Every write names this tool as its field manager, so managedFields tell its writes from anyone else's.
WRITE_QUERY: dict[str, str | int] = {"fieldManager": FIELD_MANAGER}
DRY_RUN_QUERY: dict[str, str | int] = {**WRITE_QUERY, "dryRun": "All"}
# metav1.StatusReason values: a `reason` outside them is not repeated (a proxy may put anything there).
STATUS_REASONS = frozenset(
    {
        "Unauthorized",
        "Forbidden",
        "NotFound",
        "AlreadyExists",
        "Conflict",
        "Gone",
        "Invalid",
        "ServerTimeout",
        "Timeout",
        "TooManyRequests",
        "BadRequest",
        "MethodNotAllowed",
        "NotAcceptable",
        "RequestEntityTooLarge",
        "UnsupportedMediaType",
        "InternalError",
        "Expired",
        "ServiceUnavailable",
    }
)


def retry_policy() -> urllib3.Retry:
    """Dropped connections, 429 and 5xx are retried with backoff (Retry-After honoured, capped).

    Every write carries a resourceVersion or is a create, so a retried write that had in fact
    landed answers 409 and the core re-reads: retrying PUT/PATCH/POST cannot double-apply.
    """
    return urllib3.Retry(
        total=3,
        backoff_factor=0.2,
        status_forcelist=(429, 500, 502, 503, 504),
        allowed_methods=frozenset({"GET", "PUT", "PATCH", "POST"}),
        respect_retry_after_header=True,
        retry_after_max=RETRY_AFTER_MAX,
        raise_on_status=False,
    )


class KubernetesCluster:
    """ClusterApi over an ApiClient; every request and retry ends within `time_left()` seconds."""

    def __init__(
        self,
        api_client: k8s.ApiClient,
        *,
        time_left: Callable[[], float | None] = lambda: None,
        tls_hint: str = "",
        unauthorized_fix: str = "",
    ) -> None:
        self._api = api_client
        self._time_left = time_left
        self._tls_hint = tls_hint
        self._unauthorized_fix = unauthorized_fix
        self._answered = 0
        self._lock = threading.Lock()

    @property
    def answered(self) -> int:
        """Requests that got a 2xx answer: 0 means nothing got through to the API server."""
        with self._lock:
            return self._answered

    def list_namespaces(self, *, label_selector: str | None) -> Sequence[NamespaceInfo]:
        """Names, and whether each is being deleted, from the table the server prints (no objects)."""
        query: dict[str, str | int] = {"includeObject": "None"}
        if label_selector:
            query["labelSelector"] = label_selector
        return [
            namespace
            for page in self._pages(NAMESPACES, query, accept=NAMESPACE_TABLE)
            for namespace in namespaces_of(page)
        ]

    def list_secret_metadata(self, name: str) -> Iterator[SecretState]:
        query: dict[str, str | int] = {"fieldSelector": f"metadata.name={name}"}
        for page in self._pages(ALL_SECRETS, query, accept=METADATA_LIST):
            for item in page.get("items") or []:
                metadata = item.get("metadata") or {}
                yield SecretState(
                    name=metadata.get("name", name),
                    namespace=metadata.get("namespace", ""),
                    type=None,
                    labels=metadata.get("labels") or {},
                    annotations=metadata.get("annotations") or {},
                    data=None,
                    resource_version=metadata.get("resourceVersion"),
                    writes=write_records(metadata),
                )

    def read_secret(self, namespace: str, name: str) -> SecretState | None:
        try:
            body = self._request("GET", SECRET, namespace=namespace, name=name)
        except NotFound:
            return None
        metadata = body.get("metadata") or {}
        return SecretState(
            name=metadata.get("name", name),
            namespace=namespace,
            type=body.get("type", "Opaque"),
            labels=metadata.get("labels") or {},
            annotations=metadata.get("annotations") or {},
            data=body.get("data") or {},
            resource_version=metadata.get("resourceVersion"),
            immutable=bool(body.get("immutable")),
            raw=body,
            writes=write_records(metadata),
        )

    def create_secret(self, secret: SecretState) -> None:
        self._request("POST", SECRETS, namespace=secret.namespace, query=WRITE_QUERY, body=secret_body(secret))

    def dry_run_create(self, secret: SecretState) -> None:
        """A create that RBAC and admission judge and the API server never stores (`?dryRun=All`)."""
        self._request("POST", SECRETS, namespace=secret.namespace, query=DRY_RUN_QUERY, body=secret_body(secret))

    def replace_secret(self, secret: SecretState) -> None:
        self._request(
            "PUT", SECRET, namespace=secret.namespace, name=secret.name, query=WRITE_QUERY, body=secret_body(secret)
        )

    def dry_run_replace(self, secret: SecretState) -> None:
        """An update that RBAC and admission judge and the API server never stores (`?dryRun=All`)."""
        self._request(
            "PUT", SECRET, namespace=secret.namespace, name=secret.name, query=DRY_RUN_QUERY, body=secret_body(secret)
        )

    def read_service_account(self, namespace: str, name: str) -> ServiceAccountState | None:
        try:
            body = self._request("GET", SERVICE_ACCOUNT, namespace=namespace, name=name)
        except NotFound:
            return None
        return service_account_state(body)

    def list_service_accounts(self, name: str) -> Iterator[ServiceAccountState]:
        # Whole objects: imagePullSecrets is not metadata. Service accounts are small (≈ 0.4 KB each).
        query: dict[str, str | int] = {"fieldSelector": f"metadata.name={name}"}
        for page in self._pages(ALL_SERVICE_ACCOUNTS, query):
            yield from (service_account_state(item) for item in page.get("items") or [])

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
            query=WRITE_QUERY,
            body=patch,
            content_type=MERGE_PATCH,
        )

    def read_lease(self, namespace: str, name: str) -> LeaseState | None:
        try:
            return lease_state(self._request("GET", LEASE, namespace=namespace, name=name))
        except NotFound:
            return None

    def create_lease(self, lease: LeaseState) -> LeaseState:
        body = lease_body(lease)
        return lease_state(self._request("POST", LEASES, namespace=lease.namespace, query=WRITE_QUERY, body=body))

    def replace_lease(self, lease: LeaseState) -> LeaseState:
        body = lease_body(lease)
        answer = self._request("PUT", LEASE, namespace=lease.namespace, name=lease.name, query=WRITE_QUERY, body=body)
        return lease_state(answer)

    def may(
        self, verb: str, resource: str, *, namespace: str | None = None, name: str | None = None, group: str = ""
    ) -> bool:
        """Whether this identity may do it, asked with a SelfSubjectAccessReview (changes nothing)."""
        attributes = {"verb": verb, "resource": resource, "group": group}
        attributes |= {key: value for key, value in (("namespace", namespace), ("name", name)) if value}
        review = {
            "apiVersion": "authorization.k8s.io/v1",
            "kind": "SelfSubjectAccessReview",
            "spec": {"resourceAttributes": attributes},
        }
        answer = self._request("POST", ACCESS_REVIEWS, body=review)
        return bool((answer.get("status") or {}).get("allowed"))

    def whoami(self) -> tuple[str, tuple[str, ...]]:
        """The username and groups the API server sees for this identity (SelfSubjectReview)."""
        review = {"apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview"}
        user = (self._request("POST", SUBJECT_REVIEWS, body=review).get("status") or {}).get("userInfo") or {}
        return str(user.get("username", "")), tuple(user.get("groups") or ())

    def _pages(self, path: str, query: Mapping[str, str | int], *, accept: str = JSON) -> Iterator[dict[str, Any]]:
        """A paged list, a page at a time. An expired `continue` (410) starts it again once;
        a second 410 asks for the whole list in one answer, which has no `continue` to expire."""
        page_query: dict[str, str | int] = {**query, "limit": PAGE_SIZE}
        expired = 0
        while True:
            try:
                page = self._request("GET", path, query=page_query, accept=accept)
            except Gone:
                if "continue" not in page_query or "limit" not in page_query:
                    raise
                expired += 1
                page_query = {**query, "limit": PAGE_SIZE} if expired == 1 else dict(query)
                continue
            yield page
            page_token = (page.get("metadata") or {}).get("continue")
            if not page_token:
                return
            page_query["continue"] = page_token

    def _request(
        self,
        method: str,
        path: str,
        *,
        namespace: str | None = None,
        name: str | None = None,
        query: Mapping[str, str | int] | None = None,
        body: dict[str, Any] | None = None,
        content_type: str = JSON,
        accept: str = JSON,
    ) -> dict[str, Any]:
        """One API call, retried within the deadline; its JSON answer, or the project's error."""
        path_params = {key: value for key, value in (("namespace", namespace), ("name", name)) if value is not None}
        headers = {"Accept": accept} | ({"Content-Type": content_type} if body is not None else {})
        request = self._api.param_serialize(
            method=method,
            resource_path=path,
            path_params=path_params,
            query_params=list((query or {}).items()),
            header_params=headers,
            body=body,
            auth_settings=["BearerToken"],
        )
        response = self._send(method, request)
        if not 200 <= response.status <= 299:
            body_text = (response.data or b"").decode(errors="replace")
            raise translate_error(
                response.status,
                response.reason,
                body_text,
                credentials=self._credentials(),
                unauthorized_fix=self._unauthorized_fix,
            )
        with self._lock:
            self._answered += 1
        answer: dict[str, Any] = json.loads(response.data or b"{}")
        return answer

    def _send(self, method: str, request: tuple[Any, ...]) -> Any:
        """The last answer after retries; ApiUnavailable for a network failure that outlasted them."""
        retry = retry_policy()
        _, url, headers, body, post_params = request
        while True:
            seconds = self._seconds_for_an_attempt()
            timeout = (min(REQUEST_TIMEOUT[0], seconds), min(REQUEST_TIMEOUT[1], seconds))
            try:
                response = self._api.call_api(method, url, headers, body, post_params, _request_timeout=timeout)
                response.read()  # type: ignore[no-untyped-call]
            except ApiException as exc:  # the client's wording for TLS failures (status 0)
                error = translate_error(
                    exc.status or 0,
                    exc.reason,
                    exc.body,
                    credentials=self._credentials(),
                    unauthorized_fix=self._unauthorized_fix,
                )
                if self._tls_hint and not exc.status:
                    error = ApiUnavailable(f"{error}; {self._tls_hint}")
                raise error from exc
            except urllib3.exceptions.HTTPError as exc:
                try:
                    retry = retry.increment(method, url, error=exc)
                except (urllib3.exceptions.HTTPError, OSError):
                    text = redact(f"{type(exc).__name__}: {exc}", self._credentials())
                    raise ApiUnavailable(f"Kubernetes API unreachable: {text}") from exc
                self._wait(retry.get_backoff_time())
                continue
            raw = response.response
            if not retry.is_retry(method, response.status, has_retry_after="Retry-After" in raw.headers):
                return response
            try:
                retry = retry.increment(method, url, response=raw)
            except urllib3.exceptions.MaxRetryError:
                return response
            if not self._wait(retry.get_retry_after(raw) or retry.get_backoff_time()):
                return response

    def _credentials(self) -> list[str]:
        """The bearer token (and any other key) this client sends: never repeated in an error's text."""
        keys = self._api.configuration.api_key or {}
        return [str(value).removeprefix("Bearer ").strip() for value in keys.values() if value]

    def _seconds_for_an_attempt(self) -> float:
        left = self._time_left()
        if left is None:
            return max(REQUEST_TIMEOUT)
        if left < MIN_ATTEMPT_SECONDS:
            raise ApiUnavailable(f"not sent: {max(left, 0):.1f}s left before the run's deadline")
        return left

    def _wait(self, seconds: float) -> bool:
        """Sleep before a retry; False (no sleep) when the deadline leaves no time to wait and retry."""
        left = self._time_left()
        if left is not None and seconds + MIN_ATTEMPT_SECONDS > left:
            return False
        time.sleep(seconds)
        return True


def lease_state(body: Mapping[str, Any]) -> LeaseState:
    metadata, spec = body["metadata"], body.get("spec") or {}
    return LeaseState(
        name=metadata["name"],
        namespace=metadata["namespace"],
        holder=spec.get("holderIdentity") or None,
        duration_seconds=int(spec.get("leaseDurationSeconds") or 0),
        renewed_at=_server_time(spec["renewTime"]) if spec.get("renewTime") else None,
        resource_version=metadata.get("resourceVersion"),
    )


def lease_body(lease: LeaseState) -> dict[str, Any]:
    metadata: dict[str, Any] = {"name": lease.name, "namespace": lease.namespace}
    if lease.resource_version:
        metadata["resourceVersion"] = lease.resource_version
    renewed = lease.renewed_at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ") if lease.renewed_at else None
    return {
        "apiVersion": f"{LEASE_GROUP}/v1",
        "kind": "Lease",
        "metadata": metadata,
        "spec": {"holderIdentity": lease.holder, "leaseDurationSeconds": lease.duration_seconds, "renewTime": renewed},
    }


def service_account_state(body: Mapping[str, Any]) -> ServiceAccountState:
    metadata = body["metadata"]
    return ServiceAccountState(
        name=metadata["name"],
        namespace=metadata["namespace"],
        image_pull_secrets=tuple(ref.get("name", "") for ref in body.get("imagePullSecrets") or []),
        resource_version=metadata["resourceVersion"],
    )


def secret_body(secret: SecretState) -> dict[str, Any]:
    """The object to write: as read (`raw`), with our labels, annotations, type and data.

    Owner references, finalizers and any field this tool does not know are written back as they
    were; managedFields are left for the API server to keep.
    """
    body: dict[str, Any] = copy.deepcopy(dict(secret.raw)) if secret.raw else {"apiVersion": "v1", "kind": "Secret"}
    metadata = body.setdefault("metadata", {})
    metadata.pop("managedFields", None)
    metadata.update(name=secret.name, namespace=secret.namespace)
    for key, value in (("labels", secret.labels), ("annotations", secret.annotations)):
        if value:
            metadata[key] = dict(value)
    if secret.resource_version:
        metadata["resourceVersion"] = secret.resource_version
    body["type"] = secret.type
    body["data"] = dict(secret.data or {})
    return body


def namespaces_of(page: Mapping[str, Any]) -> list[NamespaceInfo]:
    """A page's namespaces: from a table's Name and Status columns, or from a plain list's items."""
    if page.get("kind") != "Table":
        return [
            NamespaceInfo(name=item["metadata"]["name"], terminating=bool(item["metadata"].get("deletionTimestamp")))
            for item in page.get("items") or []
        ]
    columns = [column.get("name") for column in page.get("columnDefinitions") or []]
    name, status = columns.index("Name"), columns.index("Status")
    return [
        NamespaceInfo(name=row["cells"][name], terminating=row["cells"][status] == "Terminating")
        for row in page.get("rows") or []
    ]


def write_records(metadata: Mapping[str, Any]) -> tuple[WriteRecord, ...] | None:
    """managedFields as the core reads them; None when the server sent none."""
    entries = metadata.get("managedFields")
    if not isinstance(entries, list):
        return None
    return tuple(
        WriteRecord(
            manager=str(entry.get("manager", "")),
            time=_server_time(entry.get("time")),
            fields=_field_paths(entry.get("fieldsV1") or {}),
            operation=str(entry.get("operation", "")),
        )
        for entry in entries
        if isinstance(entry, dict)
    )


def _field_paths(fields: Mapping[str, Any]) -> frozenset[FieldPath]:
    """The `f:` keys of a FieldsV1 tree as paths (`k:`/`v:` list entries and `.` are not fields we read).
    A loop, not a recursive generator: a 20,000-secret list walks some 300,000 of these nodes per run."""
    paths: list[FieldPath] = []
    pending: list[tuple[FieldPath, Mapping[str, Any]]] = [((), fields)]
    while pending:
        prefix, node = pending.pop()
        for key, sub in node.items():
            if key.startswith("f:"):
                path = (*prefix, key[2:])
                paths.append(path)
                if sub and isinstance(sub, dict):
                    pending.append((path, sub))
    return frozenset(paths)


def _server_time(text: object) -> datetime | None:
    try:
        return datetime.fromisoformat(str(text).replace("Z", "+00:00"))
    except ValueError:
        return None


def translate_error(
    status: int,
    http_reason: str | None,
    body: str | None,
    *,
    credentials: Iterable[str] = (),
    unauthorized_fix: str = "",
) -> KubernetesError:
    """The project's error for an API answer, with the server's own message (never the request).

    A server or proxy may echo what it was sent: only a known StatusReason is kept as the reason, and the
    message is scrubbed of the credentials this client holds and of anything shaped like a token.
    """
    try:
        status_body = json.loads(body or "{}")
    except ValueError:
        status_body = {}
    if not isinstance(status_body, dict):
        status_body = {}
    reason = status_body.get("reason")
    if reason not in STATUS_REASONS:
        reason = _phrase(status)
    message = f"{status} {reason}: {redact(str(status_body.get('message') or http_reason or ''), credentials)[:300]}"
    if status == 401:
        return Unauthorized(message, fix=unauthorized_fix)
    if status == 403:
        causes = (status_body.get("details") or {}).get("causes") or []
        if any(cause.get("reason") == "NamespaceTerminating" for cause in causes) or "being terminated" in message:
            return NamespaceTerminating(message)
        return Forbidden(message)
    if status == 404:
        return NotFound(message)
    if status == 409:
        return AlreadyExists(message) if reason == "AlreadyExists" else Conflict(message)
    if status == 410:
        return Gone(message)
    if status in (400, 422):
        return Invalid(message, status=status)
    return ApiUnavailable(message, status=status or None)


def _phrase(status: int) -> str:
    try:
        return http.HTTPStatus(status).phrase.replace(" ", "")
    except ValueError:
        return "Error"
