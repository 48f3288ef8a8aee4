"""The `.dockerconfigjson` payload: build ours, read what a secret holds, know the kubectl recipe's."""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Iterable, Sequence
from typing import Any

from lambda_fn.models import RegistryCredential
from lambda_fn.secret_contract import RECIPE_PAYLOAD, RECIPE_SCHEME, RECIPE_SLASH


def build_auths(credentials: Iterable[RegistryCredential]) -> dict[str, dict[str, str]]:
    """One `auths` entry per registry host: bare host keys, as the kubelet matches them."""
    return {
        credential.host: {
            "username": credential.username,
            "password": credential.password,
            "auth": credential.auth,
        }
        for credential in credentials
    }


def read_auths(encoded: str | None) -> dict[str, Any] | None:
    """The `auths` map of a base64 `.dockerconfigjson` value; None when it is missing or unreadable."""
    if not encoded:
        return None
    try:
        document = json.loads(base64.b64decode(encoded, validate=True))
    except (binascii.Error, ValueError):
        return None
    auths = document.get("auths") if isinstance(document, dict) else None
    return auths if isinstance(auths, dict) else None


def recipe_host(encoded: str | None) -> str | None:
    """The registry host of the kubectl recipe's payload (valid JSON of exactly that shape), its key
    read without the scheme and the trailing slash recipe_keys() allows, else None."""
    try:
        payload = base64.b64decode(encoded or "", validate=True)
        json.loads(payload)
    except (binascii.Error, ValueError):
        return None
    match = RECIPE_PAYLOAD.fullmatch(payload)
    if not match:
        return None
    return match[1].decode(errors="replace").removeprefix(RECIPE_SCHEME).removesuffix(RECIPE_SLASH)


def build_dockerconfigjson(credentials: Sequence[RegistryCredential]) -> str:
    """Base64 `.dockerconfigjson` holding exactly the served registries' logins.

    Nothing of what the secret held before is kept: a managed secret is this tool's alone, so an entry
    someone added (a planted registry, a stale login) is removed at the next write.
    """
    payload = json.dumps({"auths": build_auths(credentials)}, separators=(",", ":"), sort_keys=True)
    return base64.b64encode(payload.encode()).decode()
