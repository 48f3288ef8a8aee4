"""The project's own error hierarchy.

Adapters translate boto3/botocore and kubernetes errors into these classes (`raise ... from exc`) so
the core and the front doors never depend on a library's exceptions. No message ever holds a token,
a password or a `.dockerconfigjson`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from lambda_fn.secret_contract import TENANT_SCOPE

# What a misplaced value may look like and still be echoed: short, one line, no spaces or quotes. A
# kubeconfig, a token or a password pasted into a name's place is described, never shown.
ECHOABLE = re.compile(r"[\w.:/@*?=,+\[\]!-]{0,80}")


# Runs of 32 or more token characters with upper case, lower case and digits: bearer tokens, JWTs,
# `k8s-aws-v1.` tokens, ECR passwords, base64 `.dockerconfigjson`. Names, paths and UIDs lack the mix.
TOKEN_LIKE = re.compile(r"[A-Za-z0-9+/=_.-]{32,}")
REDACTED = "<redacted>"


def redact(text: str, credentials: Iterable[str] = ()) -> str:
    """`text` without the credentials given and without anything shaped like a token."""
    for credential in credentials:
        if len(credential) >= 8:
            text = text.replace(credential, REDACTED)
    return TOKEN_LIKE.sub(_redact_token_like, text)


def _redact_token_like(match: re.Match[str]) -> str:
    run = match[0]
    mixed = any(c.isupper() for c in run) and any(c.islower() for c in run) and any(c.isdigit() for c in run)
    return REDACTED if mixed else run


class RefresherError(Exception):
    """Base of every error this tool raises on purpose."""


@dataclass(frozen=True)
class Problem:
    """One invalid setting: the field (as its source names it) and what to do about it."""

    field: str
    message: str

    def __str__(self) -> str:
        return f"{self.field}: {self.message}"


def shown(value: str) -> str:
    """`value` quoted for an error message, or only its length when it might be a secret."""
    if ECHOABLE.fullmatch(value):
        return repr(value)
    lines = value.count("\n") + 1
    return f"a value of {len(value)} characters" + (f" on {lines} lines" if lines > 1 else "") + " (not shown)"


class ConfigError(RefresherError):
    """Invalid configuration, event or command line; every problem is reported at once."""

    def __init__(self, problems: Sequence[Problem], *, source: str = "configuration") -> None:
        self.problems = tuple(problems)
        lines = "\n".join(f"  - {problem}" for problem in self.problems)
        super().__init__(f"invalid {source}:\n{lines}")


class CredentialError(RefresherError):
    """The ECR token could not be fetched or is not usable; nothing is written."""


class ClusterLookupError(RefresherError):
    """The cluster's endpoint or certificate could not be found (DescribeCluster, kubeconfig)."""


class KubernetesError(RefresherError):
    """A Kubernetes API call failed; `status` is the HTTP status, None for network errors."""

    status: int | None = None

    def __init__(self, message: str, *, status: int | None = None) -> None:
        super().__init__(message)
        if status is not None:
            self.status = status


class Unauthorized(KubernetesError):
    """401: the API server does not accept the bearer token; `fix` says what to renew for this kind of
    connection (an access entry for EKS, the kubeconfig's user otherwise)."""

    status = 401

    def __init__(self, message: str, *, fix: str = "") -> None:
        super().__init__(message)
        self.fix = fix


class Forbidden(KubernetesError):
    """403: authenticated, but RBAC does not allow the call."""

    status = 403


class NamespaceTerminating(Forbidden):
    """403 on create because the namespace is being deleted."""


class NotFound(KubernetesError):
    """404: the object or its namespace does not exist."""

    status = 404


class AlreadyExists(KubernetesError):
    """409 on create: another writer created the object first."""

    status = 409


class Conflict(KubernetesError):
    """409 on update: the object changed since it was read (stale resourceVersion)."""

    status = 409


class Gone(KubernetesError):
    """410: a list's `continue` token expired; the list starts again from the first page."""

    status = 410


class Invalid(KubernetesError):
    """400/422: the API server rejected the object."""


class ApiUnavailable(KubernetesError):
    """5xx, 429 after retries, a timeout or a dropped connection."""


class RefreshFailed(RefresherError):
    """Raised after the summary is logged, so Lambda counts the invocation as an error."""

    def __init__(self, failed_namespaces: tuple[str, ...], errors: tuple[str, ...]) -> None:
        shown = ", ".join(failed_namespaces[:20]) + (" ..." if len(failed_namespaces) > 20 else "")
        parts = [f"{len(failed_namespaces)} namespace(s) failed: {shown}"] if failed_namespaces else []
        super().__init__("; ".join(parts + list(errors)))


def explain(exc: KubernetesError) -> str:
    """The error with the fix that applies to it."""
    if isinstance(exc, Unauthorized):
        fix = (
            exc.fix
            or "map the IAM role to a Kubernetes group with an EKS access entry (or check the kubeconfig's user)"
        )
        return f"{exc}: the API server rejected the credentials; {fix}"
    if isinstance(exc, Forbidden):
        return f"{exc}: apply the manifest with `make apply`, which grants what this configuration needs"
    if isinstance(exc, Invalid) and TENANT_SCOPE in str(exc):
        return f"{exc}: the admission policy in force was rendered for other tenants; re-apply it with `make apply`"
    return str(exc)
