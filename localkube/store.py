"""The objects the server holds, with kube-apiserver's bookkeeping and validation for them."""

from __future__ import annotations

import base64
import binascii
import copy
import itertools
import json
import re
import threading
import uuid
from datetime import UTC, datetime
from typing import Any

from localkube.managed_fields import recorded
from localkube.status import StatusError, already_exists, bad_request, conflict, invalid, not_found

KINDS = {"secrets": "Secret", "serviceaccounts": "ServiceAccount", "namespaces": "Namespace", "leases": "Lease"}
DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
DOCKERCONFIGJSON = "kubernetes.io/dockerconfigjson"


def _timestamp() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _without_nulls(value: Any) -> Any:
    """JSON as stored: null fields (which clients send for unset ones) are absent."""
    if isinstance(value, dict):
        return {key: _without_nulls(item) for key, item in value.items() if item is not None}
    if isinstance(value, list):
        return [_without_nulls(item) for item in value]
    return value


class Store:
    """Namespaces and namespaced objects (secrets, serviceaccounts); every method is thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.RLock()
        self._versions = itertools.count(1)
        self._namespaces: dict[str, dict[str, Any]] = {}
        self._objects: dict[tuple[str, str, str], dict[str, Any]] = {}

    # Namespaces (set up by tests and the demo; the API serves them read-only).

    def add_namespace(self, name: str, *, labels: dict[str, str] | None = None, terminating: bool = False) -> None:
        """A namespace, with the `default` service account the controller manager would add."""
        with self._lock:
            self._namespaces[name] = self._stamped(
                {
                    "kind": "Namespace",
                    "apiVersion": "v1",
                    "metadata": {
                        "name": name,
                        "labels": {"kubernetes.io/metadata.name": name, **(labels or {})},
                    },
                    "spec": {"finalizers": ["kubernetes"]},
                    "status": {"phase": "Terminating" if terminating else "Active"},
                }
            )
            if terminating:
                self._namespaces[name]["metadata"]["deletionTimestamp"] = _timestamp()
            if ("serviceaccounts", name, "default") not in self._objects:
                self._objects["serviceaccounts", name, "default"] = self._stamped(
                    {
                        "kind": "ServiceAccount",
                        "apiVersion": "v1",
                        "metadata": {"name": "default", "namespace": name},
                    }
                )

    def create_namespace(self, body: dict[str, Any]) -> dict[str, Any]:
        """POST /api/v1/namespaces: 409 if it exists, 422 for a name that is not a DNS label."""
        name = str((body.get("metadata") or {}).get("name") or "")
        if len(name) > 63 or not DNS_LABEL.match(name):
            raise invalid(
                "Namespace",
                "namespaces",
                name,
                "metadata.name",
                f'Invalid value: "{name}": a lowercase RFC 1123 label must consist of lower case alphanumeric '
                "characters or '-', and must start and end with an alphanumeric character",
            )
        with self._lock:
            if name in self._namespaces:
                raise already_exists("namespaces", name)
            self.add_namespace(name, labels=(body.get("metadata") or {}).get("labels"))
            return copy.deepcopy(self._namespaces[name])

    def terminate_namespace(self, name: str) -> dict[str, Any]:
        with self._lock:
            if name not in self._namespaces:
                raise not_found("namespaces", name)
            labels = self._namespaces[name]["metadata"].get("labels", {})
            self.add_namespace(name, labels=labels, terminating=True)
            return copy.deepcopy(self._namespaces[name])

    def remove_namespace(self, name: str) -> None:
        with self._lock:
            self._namespaces.pop(name, None)
            for key in [key for key in self._objects if key[1] == name]:
                del self._objects[key]

    def namespaces(self) -> list[dict[str, Any]]:
        """Every namespace, sorted by name; the stored objects themselves: read them, never change them
        (the store replaces an object on every write, so a list taken once stays consistent)."""
        with self._lock:
            return [self._namespaces[name] for name in sorted(self._namespaces)]

    def namespace(self, name: str) -> dict[str, Any]:
        with self._lock:
            if name not in self._namespaces:
                raise not_found("namespaces", name)
            return copy.deepcopy(self._namespaces[name])

    # Namespaced objects.

    def get(self, resource: str, namespace: str, name: str) -> dict[str, Any]:
        with self._lock:
            stored = self._objects.get((resource, namespace, name))
            if stored is None:
                raise not_found(resource, name)
            return copy.deepcopy(stored)

    def objects(self, resource: str, namespace: str | None = None) -> list[dict[str, Any]]:
        """Every `resource` object (of `namespace`, or of all), sorted by namespace and name; the stored
        objects themselves, as namespaces() gives them: read them, never change them."""
        with self._lock:
            found = [
                (key, stored)
                for key, stored in self._objects.items()
                if key[0] == resource and namespace in (None, key[1])
            ]
        return [stored for _, stored in sorted(found, key=lambda item: item[0])]

    def find(self, resource: str, namespace: str, name: str) -> dict[str, Any] | None:
        with self._lock:
            stored = self._objects.get((resource, namespace, name))
            return copy.deepcopy(stored) if stored is not None else None

    def create(
        self, resource: str, namespace: str, body: dict[str, Any], *, dry_run: bool = False, manager: str = "localkube"
    ) -> dict[str, Any]:
        """POST by field manager `manager`; a dry run is validated and answered as a create would be, and
        stores nothing."""
        with self._lock:
            name = self._validated(resource, namespace, body, current=None)
            namespace_object = self._namespaces.get(namespace)
            if namespace_object is None:
                raise not_found("namespaces", namespace)
            if namespace_object["status"]["phase"] == "Terminating":
                raise StatusError(
                    403,
                    "Forbidden",
                    f'{resource} "{name}" is forbidden: unable to create new content in namespace '
                    f"{namespace} because it is being terminated",
                    details={
                        "name": name,
                        "kind": resource,
                        "causes": [
                            {
                                "reason": "NamespaceTerminating",
                                "message": f"namespace {namespace} is being terminated",
                                "field": "metadata.namespace",
                            }
                        ],
                    },
                )
            if (resource, namespace, name) in self._objects:
                raise already_exists(resource, name)
            stored = copy.deepcopy(body)
            stored["metadata"] = {
                key: value
                for key, value in stored.get("metadata", {}).items()
                if key not in ("resourceVersion", "uid", "creationTimestamp", "managedFields")
            }
            stored["metadata"]["namespace"] = namespace
            stored["metadata"]["managedFields"] = recorded(None, stored, manager=manager, now=_timestamp())
            if dry_run:
                stored["metadata"] |= {"uid": str(uuid.uuid4()), "creationTimestamp": _timestamp()}
                return stored
            self._objects[resource, namespace, name] = self._stamped(stored)
            return copy.deepcopy(self._objects[resource, namespace, name])

    def replace(
        self,
        resource: str,
        namespace: str,
        name: str,
        body: dict[str, Any],
        *,
        dry_run: bool = False,
        manager: str = "localkube",
    ) -> dict[str, Any]:
        """PUT by field manager `manager`: an unconditional update without resourceVersion, else 409 when
        it is stale; a dry run stores nothing. managedFields in the body are ignored, as the server's own."""
        with self._lock:
            current = self._objects.get((resource, namespace, name))
            if current is None:
                raise not_found(resource, name)
            body_name = self._validated(resource, namespace, body, current=current)
            if body_name != name:
                raise bad_request(f"the name of the object ({body_name}) does not match the name on the URL ({name})")
            expected = body.get("metadata", {}).get("resourceVersion")
            if expected and expected != current["metadata"]["resourceVersion"]:
                raise conflict(resource, name)
            stored = copy.deepcopy(body)
            stored["metadata"] = {
                **stored.get("metadata", {}),
                "namespace": namespace,
                "uid": current["metadata"]["uid"],
                "creationTimestamp": current["metadata"]["creationTimestamp"],
                "resourceVersion": current["metadata"]["resourceVersion"],
                "managedFields": current["metadata"].get("managedFields", []),
            }
            if _without_nulls(stored) == _without_nulls(current):
                return copy.deepcopy(current)  # a no-op update is not written (no new resourceVersion)
            stored["metadata"]["managedFields"] = recorded(current, stored, manager=manager, now=_timestamp())
            if dry_run:
                return stored
            self._objects[resource, namespace, name] = self._stamped(stored, keep_identity=True)
            return copy.deepcopy(self._objects[resource, namespace, name])

    def delete(self, resource: str, namespace: str, name: str) -> dict[str, Any]:
        with self._lock:
            stored = self._objects.pop((resource, namespace, name), None)
            if stored is None:
                raise not_found(resource, name)
            return stored

    def _stamped(self, body: dict[str, Any], *, keep_identity: bool = False) -> dict[str, Any]:
        metadata = body.setdefault("metadata", {})
        if not keep_identity:
            metadata["uid"] = str(uuid.uuid4())
            metadata["creationTimestamp"] = _timestamp()
        metadata["resourceVersion"] = str(next(self._versions))
        return body

    def _validated(self, resource: str, namespace: str, body: dict[str, Any], *, current: dict[str, Any] | None) -> str:
        """The object's name; StatusError 400/422 as kube-apiserver answers for bad objects."""
        kind = KINDS[resource]
        if not isinstance(body, dict) or not isinstance(body.get("metadata", {}), dict):
            raise bad_request(f"the body of the request was not a valid {kind}")
        metadata = body.get("metadata") or {}
        body_namespace = metadata.get("namespace")
        if body_namespace and body_namespace != namespace:
            raise bad_request("the namespace of the provided object does not match the namespace sent on the request")
        name = metadata.get("name") or ""
        if not name:
            raise invalid(kind, resource, name, "metadata.name", "Required value: name or generateName is required")
        if len(name) > 253 or not DNS_SUBDOMAIN.match(name):
            raise invalid(
                kind,
                resource,
                name,
                "metadata.name",
                f'Invalid value: "{name}": a lowercase RFC 1123 subdomain must consist of lower case alphanumeric '
                "characters, '-' or '.', and must start and end with an alphanumeric character",
            )
        if resource == "secrets":
            self._validate_secret(body, name, current)
        return str(name)

    @staticmethod
    def _validate_secret(body: dict[str, Any], name: str, current: dict[str, Any] | None) -> None:
        secret_type = body.get("type") or "Opaque"
        body["type"] = secret_type
        if current is not None and current.get("type") != secret_type:
            raise invalid("Secret", "secrets", name, "type", f'Invalid value: "{secret_type}": field is immutable')
        data = body.get("data") or {}
        for key, value in data.items():
            try:
                base64.b64decode(value, validate=True)
            except (binascii.Error, TypeError) as exc:
                raise bad_request(
                    f'Secret in version "v1" cannot be handled as a Secret: illegal base64 data at key {key!r}'
                ) from exc
        if secret_type == DOCKERCONFIGJSON:
            if ".dockerconfigjson" not in data:
                raise invalid("Secret", "secrets", name, "data[.dockerconfigjson]", "Required value")
            try:
                json.loads(base64.b64decode(data[".dockerconfigjson"]))
            except ValueError as exc:
                raise invalid(
                    "Secret",
                    "secrets",
                    name,
                    "data[.dockerconfigjson]",
                    f'Invalid value: "<secret contents redacted>": {type(exc).__name__}',
                ) from exc
