"""How to reach a cluster: a kubernetes client Configuration built from EKS or a kubeconfig.

A Configuration is built per run; the client's global default configuration is never touched. TLS is
always verified against the cluster's CA, whatever a kubeconfig says.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import yaml
from kubernetes import client as k8s
from kubernetes import config as kube_config
from kubernetes.config.config_exception import ConfigException
from kubernetes.config.kube_config import KubeConfigMerger

from lambda_fn.errors import ConfigError, Problem
from lambda_fn.k8s.api import KubernetesCluster

LOGGER = logging.getLogger(__name__)
# An exec plugin's token is re-read at most this often: the client itself re-runs the plugin on every
# request once the token has less than 5 minutes left, which a 5-minute token always has.
EXEC_TOKEN_REUSE_SECONDS = 60.0
INSECURE_OVERRIDDEN = (
    "the kubeconfig sets insecure-skip-tls-verify, which this tool ignores: TLS is always verified; "
    "put the cluster's CA in certificate-authority-data"
)


@dataclass(frozen=True)
class Connection:
    """A client Configuration, the cluster's name for summaries, what it is for people, and a hint
    for TLS failures."""

    configuration: Any  # kubernetes.client.Configuration (the client is untyped)
    name: str
    description: str
    tls_hint: str = ""
    unauthorized_fix: str = ""  # what to renew when the API server answers 401
    open_files: tuple[int, ...] = ()  # in-memory files (client certificates) closed with the connection


def eks_connection(
    name: str, endpoint: str, ca_pem: bytes, token: str, *, description: str, pool_size: int
) -> Connection:
    configuration = k8s.Configuration(
        host=endpoint,
        api_key={"BearerToken": token},
        api_key_prefix={"BearerToken": "Bearer"},
        ca_cert_data=ca_pem.decode(),  # in memory: the CA is never written to disk
    )
    fix = (
        f"map the function's IAM role to a Kubernetes group with an EKS access entry on {name} "
        "(the stack creates it; `check` names the role)"
    )
    return Connection(tuned(configuration, pool_size=pool_size), name, description, unauthorized_fix=fix)


def kubeconfig_location(path: str | None) -> str:
    """The file(s) to read, as kubectl picks them: the flag, else KUBECONFIG (a list, or empty meaning
    unset), else ~/.kube/config."""
    return path or os.environ.get("KUBECONFIG") or "~/.kube/config"


def kubeconfig_contexts(where: str) -> tuple[list[str], str | None]:
    """The context names and the current context of the kubeconfig file(s) at `where`, merged as the
    client merges them; read without running any exec plugin."""
    merged = KubeConfigMerger(where).config  # type: ignore[no-untyped-call]
    if merged is None:
        raise ConfigException("no kubeconfig file found")
    document = merged.value
    # Each merged entry is the client's ConfigNode, whose `value` is the entry as written.
    entries = [getattr(entry, "value", entry) for entry in document.get("contexts") or []]
    names = sorted(str(entry.get("name")) for entry in entries if isinstance(entry, dict))
    current = document.get("current-context")
    return names, str(current) if current else None


def kubeconfig_file_problems(path: str | None, context: str | None) -> list[Problem]:
    """What stops `context` (default: the current one) of a kubeconfig from being used, named by the flag
    that fixes it, so the CLI can refuse bad usage before it does anything."""
    chosen = _chosen_context(path, context)
    return chosen if isinstance(chosen, list) else []


def _chosen_context(path: str | None, context: str | None) -> tuple[str, str] | list[Problem]:
    """The kubeconfig file(s) and the context to use, or the problems that stop it."""
    where = kubeconfig_location(path)
    if not any(os.path.exists(os.path.expanduser(file)) for file in where.split(os.pathsep) if file):
        if path:
            return [Problem("--kubeconfig", f"{path} does not exist")]
        return [
            Problem("--kubeconfig", f"no kubeconfig at {where}: give --kubeconfig, --cluster or --kubeconfig-secret")
        ]
    try:
        names, current = kubeconfig_contexts(where)
    except (ConfigException, OSError, yaml.YAMLError, ValueError, TypeError, KeyError, AttributeError) as exc:
        return [Problem("--kubeconfig", f"{where} is not a usable kubeconfig: {exc}")]
    if context is not None and context not in names:
        return [Problem("--context", f"{where} has no context {context!r} (it has: {', '.join(names) or 'none'})")]
    if context is None and current not in names:
        what = f"names a context it lacks ({current!r})" if current else "sets no current context"
        return [Problem("--context", f"{where} {what}: give one of {', '.join(names) or 'none'}")]
    return where, context or str(current)


def kubeconfig_file_connection(path: str | None, context: str | None, *, pool_size: int) -> Connection:
    """`context` (default: the current one) of a kubeconfig file, as kubectl reads it (exec plugins too)."""
    chosen = _chosen_context(path, context)
    if isinstance(chosen, list):
        raise ConfigError(chosen, source="command line")
    where, name = chosen
    configuration = k8s.Configuration()
    try:
        kube_config.load_kube_config(  # type: ignore[no-untyped-call]
            config_file=where, context=name, client_configuration=configuration, persist_config=False
        )
    except (ConfigException, OSError, yaml.YAMLError, ValueError, TypeError, KeyError) as exc:
        raise ConfigError(
            [Problem("--kubeconfig", f"cannot use context {name!r} of {where}: {exc}")], source="command line"
        ) from exc
    hint = ""
    if not configuration.verify_ssl:
        LOGGER.warning(INSECURE_OVERRIDDEN)
        hint = INSECURE_OVERRIDDEN
    if configuration.refresh_api_key_hook is not None:
        configuration.refresh_api_key_hook = _rate_limited(configuration.refresh_api_key_hook)
    return Connection(
        tuned(configuration, pool_size=pool_size),
        name,
        f"context {name} of {where} ({configuration.host})",
        hint,
        unauthorized_fix=f"the user of context {name} was rejected: renew its token or certificate "
        f"(`kubectl --context {name} auth whoami` shows the same)",
    )


def _rate_limited(refresh: Callable[[Any], None]) -> Callable[[Any], None]:
    """The client's token refresh, run at most once per EXEC_TOKEN_REUSE_SECONDS for the run."""
    last = [time.monotonic()]

    def refresh_now_and_then(configuration: Any) -> None:
        if time.monotonic() - last[0] >= EXEC_TOKEN_REUSE_SECONDS:
            refresh(configuration)
            last[0] = time.monotonic()

    return refresh_now_and_then


def tuned(configuration: Any, *, pool_size: int) -> Any:
    """TLS always verified; retries left to KubernetesCluster; a connection per worker thread."""
    configuration.verify_ssl = True
    # KubernetesCluster retries by itself, within the run's deadline; urllib3 must not retry again.
    configuration.retries = False
    # One connection per worker thread, reused across the namespaces it serves.
    configuration.connection_pool_maxsize = pool_size
    return configuration


@contextmanager
def connect(connection: Connection, *, time_left: Callable[[], float | None]) -> Iterator[KubernetesCluster]:
    """A KubernetesCluster whose every request and retry ends within `time_left()` seconds."""
    api_client = k8s.ApiClient(connection.configuration)
    try:
        yield KubernetesCluster(
            api_client,
            time_left=time_left,
            tls_hint=connection.tls_hint,
            unauthorized_fix=connection.unauthorized_fix,
        )
    finally:
        api_client.close()  # type: ignore[no-untyped-call]
        for descriptor in connection.open_files:
            os.close(descriptor)
