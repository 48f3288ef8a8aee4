"""managedFields as kube-apiserver keeps them for Update operations, on the subset the refresher reads.

Each field manager's entry lists the fields it was the last to change (FieldsV1) and the server time of
its last change. A write takes over the fields whose values it changes from whichever manager held
them; fields it removes leave every entry; an entry left with no field is dropped; a write that changes
nothing of a manager's leaves its time alone. The manager is the request's `fieldManager`, else the
first word of its User-Agent, as kube-apiserver derives it.
"""

from __future__ import annotations

from typing import Any

Path = tuple[str, ...]
# Set by the server, never owned by a manager.
SERVER_FIELDS = frozenset(
    {"name", "namespace", "uid", "resourceVersion", "creationTimestamp", "managedFields", "generation"}
)


def leaves(obj: dict[str, Any]) -> dict[Path, Any]:
    """The object's fields as paths to their values (maps opened, lists whole), server fields left out."""
    found: dict[Path, Any] = {}

    def walk(value: Any, path: Path) -> None:
        if isinstance(value, dict) and value:
            for key, sub in value.items():
                if not (path == ("metadata",) and key in SERVER_FIELDS):
                    walk(sub, (*path, key))
        elif path:
            found[path] = value

    walk({k: v for k, v in obj.items() if k not in ("apiVersion", "kind")}, ())
    return found


def recorded(before: dict[str, Any] | None, after: dict[str, Any], *, manager: str, now: str) -> list[dict[str, Any]]:
    """`after`'s managedFields once `manager` has written it over `before` (None: a create)."""
    owned: dict[str, tuple[set[Path], str]] = {
        entry["manager"]: (set(_paths(entry.get("fieldsV1") or {}, ())), entry.get("time", now))
        for entry in ((before or {}).get("metadata") or {}).get("managedFields") or []
    }
    old, new = leaves(before or {}), leaves(after)
    changed = {path for path, value in new.items() if path not in old or old[path] != value}
    gone = set(old) - set(new)
    owned = {name: (fields - changed - gone, time) for name, (fields, time) in owned.items()}
    if changed:
        kept, _ = owned.get(manager, (set(), now))
        owned[manager] = (kept | changed, now)
    return [
        {
            "manager": name,
            "operation": "Update",
            "apiVersion": "v1",
            "time": time,
            "fieldsType": "FieldsV1",
            "fieldsV1": _tree(fields),
        }
        for name, (fields, time) in owned.items()
        if fields
    ]


def manager_of(query: dict[str, str], user_agent: str | None) -> str:
    return query.get("fieldManager") or (user_agent or "unknown").split("/")[0].split(" ")[0]


def _tree(paths: set[Path]) -> dict[str, Any]:
    tree: dict[str, Any] = {}
    for path in sorted(paths):
        node = tree
        for key in path:
            node = node.setdefault(f"f:{key}", {})
    return tree


def _paths(tree: dict[str, Any], prefix: Path) -> list[Path]:
    found: list[Path] = []
    for key, sub in tree.items():
        path = (*prefix, key[2:])
        if sub:
            found += _paths(sub, path)
        else:
            found.append(path)
    return found
