"""Lists as kube-apiserver serves them: label and field selectors, `limit`/`continue` pages, the
metadata-only form (`Accept: ...;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1`), and the table
kubectl prints (`Accept: ...;as=Table;g=meta.k8s.io;v=v1`: namespaces' Name, Status and Age columns,
rows without the object when `includeObject=None`)."""

from __future__ import annotations

import base64
import bisect
import copy
import json
from collections.abc import Callable, Sequence
from typing import Any

from localkube.selectors import matches, parse_selector
from localkube.status import bad_request

# The fields kube-apiserver lets a list of each resource select on.
FIELDS: dict[str, tuple[str, ...]] = {
    "namespaces": ("metadata.name", "status.phase"),
    "secrets": ("metadata.name", "metadata.namespace", "type"),
    "serviceaccounts": ("metadata.name", "metadata.namespace"),
}
METADATA_ONLY = "as=PartialObjectMetadataList"
TABLE = "as=Table"
# kube-apiserver's columns for a namespace (its printers), with the cell each takes from the object.
NAMESPACE_COLUMNS: tuple[tuple[str, Callable[[dict[str, Any]], str]], ...] = (
    ("Name", lambda namespace: str(namespace["metadata"]["name"])),
    ("Status", lambda namespace: str((namespace.get("status") or {}).get("phase", "Active"))),
    ("Age", lambda _: "0s"),
)


def named_in_field_selector(query: dict[str, str]) -> str | None:
    """The name an exact `metadata.name=X` field selector asks for: RBAC's resourceNames apply to it."""
    for requirement in (query.get("fieldSelector") or "").split(","):
        field, operator, value = _field_requirement(requirement)
        if field == "metadata.name" and operator in ("=", "=="):
            return value
    return None


def list_answer(
    kind: str,
    resource: str,
    objects: Sequence[dict[str, Any]],
    query: dict[str, str],
    *,
    accept: str,
    key: Callable[[dict[str, Any]], str],
) -> dict[str, Any]:
    """The list of `objects` (sorted by `key`, the store's own: never changed here) that `query`
    selects, one page of it; only the page's items are copied."""
    labels = parse_selector(query["labelSelector"]) if query.get("labelSelector") else ()
    fields = _field_selector(resource, query.get("fieldSelector") or "")
    items = [item for item in objects if matches(labels, item["metadata"].get("labels", {})) and fields(item)]
    start = _continue_from(query.get("continue"))
    if start is not None:
        items = items[bisect.bisect_right([key(item) for item in items], start) :]
    limit = int(query.get("limit") or 0)
    metadata: dict[str, Any] = {"resourceVersion": max((i["metadata"]["resourceVersion"] for i in items), default="1")}
    if 0 < limit < len(items):
        metadata["continue"] = base64.urlsafe_b64encode(json.dumps({"start": key(items[limit - 1])}).encode()).decode()
        metadata["remainingItemCount"] = len(items) - limit
        items = items[:limit]
    if TABLE in accept and resource == "namespaces":
        return _table(items, metadata, with_objects=query.get("includeObject") != "None")
    if METADATA_ONLY in accept:
        return {
            "kind": "PartialObjectMetadataList",
            "apiVersion": "meta.k8s.io/v1",
            "metadata": metadata,
            "items": [
                {
                    "kind": "PartialObjectMetadata",
                    "apiVersion": "meta.k8s.io/v1",
                    "metadata": copy.deepcopy(item["metadata"]),
                }
                for item in items
            ],
        }
    return {"kind": f"{kind}List", "apiVersion": "v1", "metadata": metadata, "items": copy.deepcopy(items)}


def _table(items: Sequence[dict[str, Any]], metadata: dict[str, Any], *, with_objects: bool) -> dict[str, Any]:
    def row(item: dict[str, Any]) -> dict[str, Any]:
        partial = {"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1", "metadata": item["metadata"]}
        return {
            "cells": [cell(item) for _, cell in NAMESPACE_COLUMNS],
            "object": copy.deepcopy(partial) if with_objects else None,
        }

    return {
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": metadata,
        "columnDefinitions": [
            {"name": name, "type": "string", "format": "", "description": "", "priority": 0}
            for name, _ in NAMESPACE_COLUMNS
        ],
        "rows": [row(item) for item in items],
    }


def _field_selector(resource: str, text: str) -> Callable[[dict[str, Any]], bool]:
    checks: list[Callable[[dict[str, Any]], bool]] = []
    for requirement in filter(None, text.split(",")):
        field, operator, value = _field_requirement(requirement)
        if field not in FIELDS[resource]:
            raise bad_request(f"field label not supported: {field}")

        def check(item: dict[str, Any], field: str = field, operator: str = operator, value: str = value) -> bool:
            actual = _field_value(item, field)
            return actual != value if operator == "!=" else actual == value

        checks.append(check)
    return lambda item: all(check(item) for check in checks)


def _field_requirement(text: str) -> tuple[str, str, str]:
    for operator in ("!=", "==", "="):
        field, found, value = text.partition(operator)
        if found:
            return field.strip(), operator, value.strip()
    if text.strip():
        raise bad_request(f"invalid field selector: {text!r}")
    return "", "", ""


def _field_value(item: dict[str, Any], field: str) -> str:
    value: Any = item
    for part in field.split("."):
        value = value.get(part, "") if isinstance(value, dict) else ""
    return str(value)


def _continue_from(token: str | None) -> str | None:
    if not token:
        return None
    try:
        return str(json.loads(base64.urlsafe_b64decode(token))["start"])
    except (ValueError, KeyError, TypeError) as exc:
        raise bad_request("invalid continue token: continue key is not valid") from exc
