"""PATCH bodies: JSON patch (RFC 6902), merge patch (RFC 7386), strategic merge, server-side apply."""

from __future__ import annotations

import copy
import json
from collections.abc import Mapping
from typing import Any

import jsonpatch
import yaml

from localkube.status import StatusError, bad_request

JSON_PATCH = "application/json-patch+json"
MERGE_PATCH = "application/merge-patch+json"
STRATEGIC_MERGE_PATCH = "application/strategic-merge-patch+json"
APPLY_PATCH = "application/apply-patch+yaml"

# Lists that strategic merge merges by a key (from the Go types' patchMergeKey tags) for the
# resources served here; every other list (e.g. ServiceAccount.imagePullSecrets) is replaced whole.
MERGE_KEYS: Mapping[tuple[str, ...], str] = {
    ("metadata", "ownerReferences"): "uid",
    ("secrets",): "name",
}


def parse_patch(content_type: str, raw: bytes) -> Any:
    try:
        return yaml.safe_load(raw) if content_type == APPLY_PATCH else json.loads(raw)
    except (ValueError, yaml.YAMLError) as exc:
        raise bad_request(f"error decoding patch: {exc}") from exc


def apply_patch(content_type: str, current: dict[str, Any], patch: Any) -> dict[str, Any]:
    """The patched object; StatusError for a malformed patch or a failed `test` operation."""
    if content_type == JSON_PATCH:
        if not isinstance(patch, list):
            raise bad_request("json patch must be a list of operations")
        try:
            patched: dict[str, Any] = jsonpatch.apply_patch(current, patch)
        except (jsonpatch.JsonPatchException, jsonpatch.JsonPointerException) as exc:
            raise StatusError(
                422, "Invalid", f"the server rejected our request due to an error in our request: {exc}"
            ) from exc
        return patched
    if not isinstance(patch, dict):
        raise bad_request("patch body must be a JSON object")
    # Merge patch, or strategic merge with its list keys; server-side apply is served with merge
    # semantics (no field ownership).
    merge_keys = MERGE_KEYS if content_type == STRATEGIC_MERGE_PATCH else {}
    result: dict[str, Any] = merge(current, patch, merge_keys=merge_keys)
    return result


def merge(
    target: Any, patch: Any, *, merge_keys: Mapping[tuple[str, ...], str] = {}, path: tuple[str, ...] = ()
) -> Any:
    """RFC 7386 merge; lists at a path in `merge_keys` are merged by that key (strategic merge)."""
    if isinstance(patch, list) and path in merge_keys and isinstance(target, list):
        return _merge_list(target, patch, merge_keys[path])
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge(result.get(key), value, merge_keys=merge_keys, path=(*path, key))
    return result


def _merge_list(current: list[Any], patch: list[Any], key: str) -> list[Any]:
    merged = [copy.deepcopy(item) for item in current]
    for item in patch:
        index = next((i for i, old in enumerate(merged) if old.get(key) == item.get(key)), None)
        if item.get("$patch") == "delete":
            if index is not None:
                merged.pop(index)
        elif index is None:
            merged.append(copy.deepcopy(item))
        else:
            merged[index] = merge(merged[index], item)
    return merged
