"""A kubeconfig held in memory (from Secrets Manager), parsed here and never written to disk.

Why not the client's own loader: it writes certificate data to temporary files and runs exec plugins,
and neither may happen in the Lambda. This reads the subset a Lambda can use: an HTTPS server and its
CA, and a user with a bearer token or a client certificate. The certificate and key go into memfd
files (Linux anonymous memory, reachable by path for the TLS library, gone when closed).
"""

from __future__ import annotations

import base64
import binascii
import os
from collections.abc import Mapping
from typing import Any

import yaml
from kubernetes import client as k8s

from lambda_fn.errors import ConfigError, Problem
from lambda_fn.k8s.connection import INSECURE_OVERRIDDEN, Connection, tuned

NO_BINARIES = (
    "cannot run in the Lambda (it runs no binaries and reads no local files): give the user a bearer token, "
    "e.g. a service account's (docs/clusters.md)"
)


def kubeconfig_document_connection(text: str, context: str | None, *, source: str, pool_size: int) -> Connection:
    """`context` (default: the current one) of the kubeconfig `text`; ConfigError naming `source` (the
    secret) or the context, and the fix. The document is never logged, nor are its values."""
    document = _document(text, source)
    name = context or str(document.get("current-context") or "")
    contexts = _named(document, "contexts", source)
    if name not in contexts:
        known = ", ".join(sorted(contexts)) or "none"
        what = f"context {name!r} is not in it" if name else "it names no current-context"
        raise _problem(source, f"{what} (contexts: {known}); set KUBECONFIG_CONTEXT to one of them")
    cluster = _named(document, "clusters", source).get(str(contexts[name].get("cluster")))
    user = _named(document, "users", source).get(str(contexts[name].get("user")))
    if cluster is None or user is None:
        raise _problem(source, f"context {name!r} names a cluster or user that is not in the kubeconfig")
    configuration = k8s.Configuration(host=str(cluster.get("server", "")).rstrip("/"))
    if not configuration.host.startswith("https://"):
        raise _problem(source, f"context {name!r}: the server must be an https:// URL")
    if "certificate-authority" in cluster:
        raise _problem(
            source, f"context {name!r}: certificate-authority is a file path; use certificate-authority-data"
        )
    if "certificate-authority-data" in cluster:
        configuration.ca_cert_data = _decoded(
            cluster["certificate-authority-data"], source, "certificate-authority-data"
        )
    if cluster.get("tls-server-name"):
        configuration.tls_server_name = cluster["tls-server-name"]
    open_files = _authenticate(configuration, user, source=source, context=name)
    hint = INSECURE_OVERRIDDEN if cluster.get("insecure-skip-tls-verify") else ""
    return Connection(
        tuned(configuration, pool_size=pool_size),
        name,
        f"context {name} of kubeconfig secret {source} ({configuration.host})",
        hint,
        f"the user of context {name} in kubeconfig secret {source} was rejected: put a valid token or client "
        "certificate in the secret (read afresh every run)",
        open_files,
    )


def _authenticate(configuration: Any, user: Mapping[str, Any], *, source: str, context: str) -> tuple[int, ...]:
    for method in ("exec", "auth-provider"):
        if method in user:
            raise _problem(source, f"context {context!r}: a user with {method} {NO_BINARIES}")
    if "tokenFile" in user or "client-certificate" in user or "client-key" in user:
        raise _problem(source, f"context {context!r}: the user names files, which {NO_BINARIES}")
    if user.get("token"):
        configuration.api_key = {"BearerToken": str(user["token"])}
        configuration.api_key_prefix = {"BearerToken": "Bearer"}
        return ()
    if user.get("client-certificate-data") and user.get("client-key-data"):
        certificate = _in_memory_file("client-certificate", user["client-certificate-data"], source)
        key = _in_memory_file("client-key", user["client-key-data"], source)
        configuration.cert_file, configuration.key_file = (f"/proc/self/fd/{fd}" for fd in (certificate, key))
        return certificate, key
    raise _problem(source, f"context {context!r}: its user has no token and no client certificate")


def _in_memory_file(name: str, encoded: Any, source: str) -> int:
    if not hasattr(os, "memfd_create"):
        raise _problem(source, "client certificates need Linux (held in memory only); give the user a token")
    descriptor = os.memfd_create(name, 0)
    os.write(descriptor, _decoded(encoded, source, f"{name}-data").encode())
    return descriptor


def _document(text: str, source: str) -> Mapping[str, Any]:
    try:
        document = yaml.safe_load(text)
    except yaml.YAMLError:
        document = None  # the parser's message may quote the document, which holds credentials
    if not isinstance(document, Mapping) or "contexts" not in document:
        raise _problem(source, "does not hold a kubeconfig (YAML or JSON with clusters, users and contexts)")
    return document


def _named(document: Mapping[str, Any], section: str, source: str) -> dict[str, Mapping[str, Any]]:
    """A kubeconfig section (`[{name, <singular>: {...}}]`) as a map from name to its body."""
    entries = document.get(section) or []
    body = section.removesuffix("s") if section != "users" else "user"
    if not isinstance(entries, list) or not all(
        isinstance(e, Mapping) and isinstance(e.get(body), Mapping) for e in entries
    ):
        raise _problem(source, f"its {section} are not a list of {{name, {body}}} entries")
    return {str(entry.get("name")): entry[body] for entry in entries}


def _decoded(value: Any, source: str, field: str) -> str:
    try:
        return base64.b64decode(str(value), validate=True).decode()
    except (binascii.Error, UnicodeDecodeError) as exc:
        raise _problem(source, f"{field} is not base64 text") from exc


def _problem(source: str, message: str) -> ConfigError:
    return ConfigError([Problem("KUBECONFIG_SECRET", f"{source}: {message}")], source="kubeconfig secret")
