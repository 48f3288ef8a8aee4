"""LocalKube: the HTTP(S) server, routing, authentication, authorization, faults and the request log."""

from __future__ import annotations

import json
import re
import socket
import ssl
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import trustme
import yaml

from localkube.access import ADMIN, Rule, User
from localkube.eks_auth import PREFIX as EKS_PREFIX
from localkube.eks_auth import EksTokenAuthenticator, TokenRejected
from localkube.faults import FaultRule
from localkube.kubeconfig import write_kubeconfig
from localkube.listing import list_answer, named_in_field_selector
from localkube.managed_fields import manager_of
from localkube.patching import (
    APPLY_PATCH,
    JSON_PATCH,
    MERGE_PATCH,
    STRATEGIC_MERGE_PATCH,
    apply_patch,
    parse_patch,
)
from localkube.reviews import ACCESS_REVIEWS, SUBJECT_REVIEWS, access_review, subject_review
from localkube.status import StatusError, bad_request, conflict, method_not_allowed, not_found, reason_for
from localkube.store import KINDS, Store

NAMESPACED = re.compile(
    r"^/api/v1/namespaces/(?P<namespace>[^/]+)/(?P<resource>secrets|serviceaccounts)(/(?P<name>[^/]+))?$"
)
# coordination.k8s.io Leases: the run's lock (lambda_fn/lease.py).
LEASES = re.compile(
    r"^/apis/coordination\.k8s\.io/v1/namespaces/(?P<namespace>[^/]+)/(?P<resource>leases)(/(?P<name>[^/]+))?$"
)
NAMESPACES = re.compile(r"^/api/v1/namespaces(/(?P<name>[^/]+))?$")
CLUSTER_WIDE = re.compile(r"^/api/v1/(?P<resource>secrets|serviceaccounts)$")
PATCH_TYPES = (JSON_PATCH, MERGE_PATCH, STRATEGIC_MERGE_PATCH, APPLY_PATCH)
BODY_TYPES = ("application/json", "application/yaml")
VERBS = {"POST": "create", "PUT": "update", "PATCH": "patch", "DELETE": "delete"}
_OBJECT_VERBS = ["create", "delete", "get", "list", "patch", "update"]
# Discovery, as kubectl needs it to map `kind: Secret` to a resource (core group only).
DISCOVERY: dict[str, Any] = {
    "/api": {"kind": "APIVersions", "versions": ["v1"], "serverAddressByClientCIDRs": []},
    "/apis": {"kind": "APIGroupList", "apiVersion": "v1", "groups": []},
    "/api/v1": {
        "kind": "APIResourceList",
        "groupVersion": "v1",
        "resources": [
            {
                "name": "namespaces",
                "singularName": "namespace",
                "namespaced": False,
                "kind": "Namespace",
                "verbs": ["get", "list"],
                "shortNames": ["ns"],
            },
            {"name": "secrets", "singularName": "secret", "namespaced": True, "kind": "Secret", "verbs": _OBJECT_VERBS},
            {
                "name": "serviceaccounts",
                "singularName": "serviceaccount",
                "namespaced": True,
                "kind": "ServiceAccount",
                "verbs": ["get", "patch"],
                "shortNames": ["sa"],
            },
        ],
    },
}


@dataclass(frozen=True)
class RequestRecord:
    method: str
    path: str
    query: dict[str, str]
    status: int
    user: str | None
    content_type: str | None
    response_bytes: int = 0
    at: float = field(default_factory=time.monotonic)  # when the answer was ready


class LocalKube:
    """Start with `with LocalKube() as kube:`; talk to `kube.url` trusting `kube.ca_pem`."""

    def __init__(
        self,
        *,
        users: Sequence[User] = (ADMIN,),
        group_rules: Mapping[str, Sequence[Rule]] | None = None,
        eks: EksTokenAuthenticator | None = None,
        tls: bool = True,
        latency: float = 0.0,
    ) -> None:
        self.store = Store()
        self.users = {user.token: user for user in users if user.token}
        # RBAC bindings to groups: what an EKS access entry's groups are granted.
        self.group_rules = dict(group_rules or {})
        self.eks = eks
        self.latency = latency
        self.faults: list[FaultRule] = []
        self._log: list[RequestRecord] = []
        self._log_lock = threading.Lock()
        self._ca = trustme.CA() if tls else None
        self._httpd = _Server(("127.0.0.1", 0), _Handler, self)
        if self._ca is not None:
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            self._ca.issue_cert("127.0.0.1", "localhost").configure_cert(context)
            # The handshake happens in the request's thread, not in the accept loop.
            self._httpd.socket = context.wrap_socket(
                self._httpd.socket, server_side=True, do_handshake_on_connect=False
            )
        self._thread = threading.Thread(target=self._httpd.serve_forever, name="localkube", daemon=True)

    @property
    def url(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"{'https' if self._ca else 'http'}://{host!s}:{port}"

    @property
    def ca_pem(self) -> bytes:
        if self._ca is None:
            raise RuntimeError("this LocalKube serves plain HTTP")
        return bytes(self._ca.cert_pem.bytes())

    def start(self) -> LocalKube:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=5)

    def __enter__(self) -> LocalKube:
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.stop()

    @property
    def requests(self) -> list[RequestRecord]:
        with self._log_lock:
            return list(self._log)

    def clear_log(self) -> None:
        with self._log_lock:
            self._log.clear()

    def record(self, entry: RequestRecord) -> None:
        with self._log_lock:
            self._log.append(entry)

    def with_group_rules(self, user: User) -> User:
        """The user with the rules bound to its groups added to its own."""
        extra = tuple(rule for group in user.groups for rule in self.group_rules.get(group, ()))
        return replace(user, rules=user.rules + extra) if extra else user

    def write_kubeconfig(self, path: Path, *, token: str, context: str = "localkube") -> Path:
        """A kubeconfig for `kubectl`/the CLI: this server, its CA, and a bearer token."""
        ca_pem = self.ca_pem if self._ca is not None else None
        return write_kubeconfig(path, server=self.url, ca_pem=ca_pem, token=token, name=context)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128

    def __init__(self, address: tuple[str, int], handler: type[BaseHTTPRequestHandler], kube: LocalKube) -> None:
        super().__init__(address, handler)
        self.kube = kube

    def get_request(self) -> tuple[socket.socket, Any]:
        connection, address = super().get_request()
        # Without this, Nagle + delayed ACK add ~40 ms to every response.
        connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return connection, address


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        """Silent: tests read the request log instead."""

    def do_GET(self) -> None:
        self._serve()

    def do_POST(self) -> None:
        self._serve()

    def do_PUT(self) -> None:
        self._serve()

    def do_PATCH(self) -> None:
        self._serve()

    def do_DELETE(self) -> None:
        self._serve()

    def _serve(self) -> None:
        kube = self.server.kube
        parts = urlsplit(self.path)
        query = {key: values[-1] for key, values in parse_qs(parts.query, keep_blank_values=True).items()}
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        content_type = (self.headers.get("Content-Type") or "").split(";")[0].strip() or None
        user: User | None = None
        if kube.latency:
            time.sleep(kube.latency)
        fault = next((rule for rule in kube.faults if rule.claim(self.command, parts.path)), None)
        try:
            if fault is not None and fault.before is not None:
                fault.before()
            if fault is not None and fault.delay:
                time.sleep(fault.delay)
            if fault is not None and fault.drop:
                kube.record(RequestRecord(self.command, parts.path, query, 0, None, content_type))
                self.close_connection = True
                return
            if fault is not None and fault.status:
                echoed = self.headers.get("Authorization") or "" if fault.echo_authorization else ""
                reason = f"Bad {echoed}" if echoed else reason_for(fault.status)
                raise StatusError(fault.status, reason, f"injected fault: {fault.status} {echoed}".strip())
            if parts.path in ("/healthz", "/readyz", "/livez"):
                self._send(200, "ok")
                return
            user = self._authenticate()
            status, answer = self._route(user, parts.path, query, body, content_type)
        except StatusError as error:
            status, answer = error.code, error.body()
        payload = answer.encode() if isinstance(answer, str) else json.dumps(answer).encode()
        who = user.name if user else None
        kube.record(RequestRecord(self.command, parts.path, query, status, who, content_type, len(payload)))
        retry_after = fault.retry_after if fault is not None else None
        self._send(status, answer, retry_after=retry_after, payload=payload)

    def _send(self, status: int, answer: Any, *, retry_after: int | None = None, payload: bytes | None = None) -> None:
        if payload is None:
            payload = answer.encode() if isinstance(answer, str) else json.dumps(answer).encode()
        self.send_response(status)
        self.send_header("Content-Type", "text/plain" if isinstance(answer, str) else "application/json")
        self.send_header("Content-Length", str(len(payload)))
        if retry_after is not None:
            self.send_header("Retry-After", str(retry_after))
        self.end_headers()
        self.wfile.write(payload)

    def _authenticate(self) -> User:
        kube = self.server.kube
        scheme, _, token = (self.headers.get("Authorization") or "").partition(" ")
        if scheme.lower() == "bearer" and token in kube.users:
            return kube.with_group_rules(kube.users[token])
        if scheme.lower() == "bearer" and token.startswith(EKS_PREFIX) and kube.eks is not None:
            try:
                entry = kube.eks.authenticate(token)
            except TokenRejected:
                pass
            else:
                return kube.with_group_rules(User(entry.username, groups=entry.groups))
        raise StatusError(401, "Unauthorized", "Unauthorized")

    def _route(
        self, user: User, path: str, query: dict[str, str], body: bytes, content_type: str | None
    ) -> tuple[int, Any]:
        store = self.server.kube.store
        if path == "/version":
            return 200, {
                "major": "1",
                "minor": "34",
                "gitVersion": "v1.34.0-localkube",
                "platform": "linux/amd64",
            }
        if path.rstrip("/") in DISCOVERY:
            return 200, DISCOVERY[path.rstrip("/")]
        if path in (ACCESS_REVIEWS, SUBJECT_REVIEWS):
            if self.command != "POST":
                return 405, method_not_allowed().body()
            if path == SUBJECT_REVIEWS:
                return 201, subject_review(user)
            return 201, access_review(user, _json(body, content_type))
        accept = self.headers.get("Accept") or ""
        match = NAMESPACES.match(path)
        if match:
            return _namespaces(
                store,
                user,
                self.command,
                match["name"],
                query=query,
                body=body,
                content_type=content_type,
                accept=accept,
            )
        match = CLUSTER_WIDE.match(path)
        if match:
            resource = match["resource"]
            if self.command != "GET":
                return 405, method_not_allowed().body()
            # A list's name, for RBAC's resourceNames, is the one an exact field selector names.
            user.authorize("list", resource, None, named_in_field_selector(query))
            return 200, _object_list(store, resource, None, query, accept)
        match = NAMESPACED.match(path) or LEASES.match(path)
        if match is None:
            return 404, "404 page not found"
        namespace, resource, name = match["namespace"], match["resource"], match["name"]
        if self.command == "GET" and name is None:
            user.authorize("list", resource, namespace, named_in_field_selector(query))
            return 200, _object_list(store, resource, namespace, query, accept)
        user.authorize(VERBS.get(self.command, "get"), resource, namespace, name)
        manager = manager_of(query, self.headers.get("User-Agent"))
        return _Resource(store, resource, namespace, name, manager).serve(self.command, query, body, content_type)


def _namespaces(
    store: Store,
    user: User,
    method: str,
    name: str | None,
    *,
    query: dict[str, str],
    body: bytes,
    content_type: str | None,
    accept: str,
) -> tuple[int, Any]:
    """Namespaces: list, get, create, and delete (which, with no namespace controller running, leaves
    the namespace Terminating, as kube-apiserver alone does)."""
    verb = {"POST": "create", "DELETE": "delete"}.get(method) or ("get" if name else "list")
    user.authorize(verb, "namespaces", None, name)
    if method == "GET":
        if name:
            return 200, store.namespace(name)
        return 200, list_answer("Namespace", "namespaces", store.namespaces(), query, accept=accept, key=_name)
    if method == "POST" and name is None:
        return 201, store.create_namespace(_json(body, content_type))
    if method == "DELETE" and name is not None:
        return 200, store.terminate_namespace(name)
    return 405, method_not_allowed().body()


def _object_list(store: Store, resource: str, namespace: str | None, query: dict[str, str], accept: str) -> Any:
    objects = store.objects(resource, namespace)
    return list_answer(KINDS[resource], resource, objects, query, accept=accept, key=_namespaced_name)


def _name(item: dict[str, Any]) -> str:
    return str(item["metadata"]["name"])


def _namespaced_name(item: dict[str, Any]) -> str:
    return f"{item['metadata']['namespace']}/{item['metadata']['name']}"


@dataclass
class _Resource:
    store: Store
    resource: str
    namespace: str
    name: str | None
    manager: str

    def serve(self, method: str, query: dict[str, str], body: bytes, content_type: str | None) -> tuple[int, Any]:
        dry_run = _dry_run(method, query)
        if method == "POST" and self.name is None:
            return 201, self.store.create(
                self.resource, self.namespace, _json(body, content_type), dry_run=dry_run, manager=self.manager
            )
        if self.name is None:
            return 405, method_not_allowed().body()
        if method == "GET":
            return 200, self.store.get(self.resource, self.namespace, self.name)
        if method == "PUT":
            return 200, self.store.replace(
                self.resource,
                self.namespace,
                self.name,
                _json(body, content_type),
                dry_run=dry_run,
                manager=self.manager,
            )
        if method == "DELETE":
            if dry_run:
                self.store.get(self.resource, self.namespace, self.name)  # 404 as a delete would answer
            else:
                self.store.delete(self.resource, self.namespace, self.name)
            return 200, {
                "kind": "Status",
                "apiVersion": "v1",
                "metadata": {},
                "status": "Success",
                "details": {"name": self.name, "kind": self.resource},
            }
        if method == "PATCH":
            return self._patch(query, body, content_type)
        return 405, method_not_allowed().body()

    def _patch(self, query: dict[str, str], body: bytes, content_type: str | None) -> tuple[int, Any]:
        assert self.name is not None  # noqa: S101 - serve() routes only named objects here
        if content_type not in PATCH_TYPES:
            raise StatusError(
                415,
                "UnsupportedMediaType",
                "the body of the request was in an unknown format - accepted media types include: "
                + ", ".join(PATCH_TYPES),
            )
        if content_type == APPLY_PATCH and not query.get("fieldManager"):
            raise StatusError(
                422,
                "Invalid",
                'PatchOptions.meta.k8s.io "" is invalid: fieldManager: Required value: is required for apply patch',
            )
        patch = parse_patch(content_type, body)
        current = self.store.find(self.resource, self.namespace, self.name)
        if current is None:
            if content_type != APPLY_PATCH:
                raise not_found(self.resource, self.name)
            return 201, self.store.create(
                self.resource, self.namespace, patch, dry_run=_dry_run("PATCH", query), manager=self.manager
            )
        patched = apply_patch(content_type, current, patch)
        # A resourceVersion in the patch is a precondition, as in kube-apiserver.
        if patched.get("metadata", {}).get("resourceVersion") != current["metadata"]["resourceVersion"]:
            raise conflict(self.resource, self.name)
        return 200, self.store.replace(
            self.resource, self.namespace, self.name, patched, dry_run=_dry_run("PATCH", query), manager=self.manager
        )


OPTIONS = {"POST": "CreateOptions", "PUT": "UpdateOptions", "PATCH": "PatchOptions", "DELETE": "DeleteOptions"}


def _dry_run(method: str, query: dict[str, str]) -> bool:
    """`?dryRun=All`: admitted and answered, never stored; kube-apiserver knows no other value."""
    value = query.get("dryRun")
    if value not in (None, "All"):
        raise StatusError(
            422,
            "Invalid",
            f'{OPTIONS.get(method, "CreateOptions")}.meta.k8s.io "" is invalid: dryRun: Unsupported value: '
            f'["{value}"]: supported values: "All"',
        )
    return value == "All"


def _json(body: bytes, content_type: str | None) -> Any:
    """A POST/PUT body: JSON when undeclared (the kubernetes client sends creates without a
    Content-Type, and kube-apiserver accepts them); 415 for a declared type that is not JSON or YAML."""
    if content_type is not None and content_type not in BODY_TYPES:
        raise StatusError(
            415,
            "UnsupportedMediaType",
            "the body of the request was in an unknown format - accepted media types include: "
            "application/json, application/yaml, application/vnd.kubernetes.protobuf",
        )
    try:
        return yaml.safe_load(body) if content_type == "application/yaml" else json.loads(body or b"null")
    except (ValueError, yaml.YAMLError) as exc:
        raise bad_request(f"the body of the request could not be decoded: {exc}") from exc
