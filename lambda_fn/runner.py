"""The composition function both front doors call: build the adapters, fetch tokens, run the core."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import UTC, datetime

import boto3

from lambda_fn.aws import (
    ClusterDirectory,
    ConfigSource,
    EcrTokenSource,
    KubeconfigSecrets,
    deadline_configs,
    generate_eks_token,
)
from lambda_fn.config import CLUSTER_REQUIRED, Settings
from lambda_fn.credentials import fetch_registry_credentials
from lambda_fn.errors import ConfigError, Problem
from lambda_fn.k8s import (
    Connection,
    connect,
    eks_connection,
    kubeconfig_document_connection,
    kubeconfig_file_connection,
)
from lambda_fn.lease import RunLease, run_lease
from lambda_fn.models import NamespaceResult, RunSummary
from lambda_fn.refresher import renew_pull_secrets

# Module level on purpose: a warm Lambda container reuses DescribeCluster's answer.
CLUSTERS = ClusterDirectory()
# Kept free at the end of a Lambda run for the summary line and the metrics: no request outlasts it.
SUMMARY_RESERVE_SECONDS = 3.0


@dataclass(frozen=True)
class EksCluster:
    """Reach the cluster as the current AWS principal (the Lambda's role) through EKS."""

    name: str


@dataclass(frozen=True)
class KubeconfigCluster:
    """Reach any cluster through a kubeconfig file and context (None: the defaults)."""

    path: str | None = None
    context: str | None = None


@dataclass(frozen=True)
class KubeconfigSecretCluster:
    """Reach any cluster through a kubeconfig held in Secrets Manager, read afresh every run."""

    secret_id: str
    context: str | None = None


Cluster = EksCluster | KubeconfigCluster | KubeconfigSecretCluster


def configured_cluster(settings: Settings) -> Cluster:
    """The Lambda's cluster: the kubeconfig secret when one is set, else the EKS cluster by name."""
    if settings.kubeconfig_secret:
        return KubeconfigSecretCluster(settings.kubeconfig_secret, settings.kubeconfig_context)
    if not settings.cluster_name:
        raise ConfigError([Problem("CLUSTER_NAME", CLUSTER_REQUIRED)])
    return EksCluster(settings.cluster_name)


def utc_now() -> datetime:
    return datetime.now(UTC)


def run_refresh(
    settings: Settings,
    cluster: Cluster,
    *,
    remaining_seconds: Callable[[], float | None] = lambda: None,
    session: boto3.Session | None = None,
    announce: Callable[[str], None] = lambda _: None,
    progress: Callable[[NamespaceResult, int, int], None] = lambda *_: None,
    holder: str | None = None,
) -> RunSummary:
    """Find the cluster, fetch and validate every registry token, then renew the secrets.

    `announce` hears which cluster is about to be written to, before the first write; `progress`
    hears each namespace as it settles. With a `holder` (this run's name) and `run_lease` set, the run
    holds the deployment's Lease while it writes, and does nothing when another run holds it.
    """
    session = session or boto3.Session(region_name=settings.region)
    aws_configs = deadline_configs(request_budget(remaining_seconds))
    connection = connection_for(cluster, session, settings, aws_configs=aws_configs)
    fetched = fetch_registry_credentials(EcrTokenSource(session, configs=aws_configs), settings, now=utc_now())

    announce(connection.description)
    with connect(connection, time_left=request_budget(remaining_seconds)) as api:
        try:
            # A dry run writes nothing to serialize. A manual event's narrowing is checked against the
            # cluster before anything is written, the Lease included; and a forced run (after a rotation)
            # must not step aside for a scheduled one: both go without it.
            manual = settings.dry_run or settings.force or settings.narrowing is not None
            lease_name = None if manual or holder is None else settings.run_lease
            with unleased() if lease_name is None else run_lease(api, lease_name, holder or "", now=utc_now) as lease:
                if lease.holder_elsewhere is not None:
                    return skipped(settings, connection.name, lease.holder_elsewhere)
                summary = renew_pull_secrets(
                    api,
                    fetched.credentials,
                    settings,
                    cluster_label=connection.name,
                    now=utc_now,
                    remaining_seconds=remaining_seconds,
                    progress=progress,
                    unavailable=fetched.unavailable,
                )
            if lease.error is not None:  # served without it; the error fails the run, so the RBAC is re-applied
                summary = replace(summary, errors=(*summary.errors, lease.error))
        finally:
            if isinstance(cluster, EksCluster) and not api.answered:
                # Nothing got through: the cluster may have been recreated (new endpoint or CA), so the
                # next run asks DescribeCluster again instead of trusting this container's cache.
                CLUSTERS.forget(cluster_name=cluster.name, region=settings.region)
    return summary


@contextmanager
def unleased() -> Iterator[RunLease]:
    yield RunLease(held=False)


def skipped(settings: Settings, cluster_label: str, holder: str) -> RunSummary:
    """A run that found another run of the same deployment at work: nothing done, nothing failed."""
    return RunSummary.unfinished(
        cluster=cluster_label,
        secret_name=settings.secret_name,
        dry_run=settings.dry_run,
        skipped_run=f"another run holds the Lease and is doing the work: {holder}",
    )


def request_budget(remaining_seconds: Callable[[], float | None]) -> Callable[[], float | None]:
    """The seconds requests may still take: the time left less what the summary needs."""

    def time_left() -> float | None:
        remaining = remaining_seconds()
        return None if remaining is None else remaining - SUMMARY_RESERVE_SECONDS

    return time_left


def connection_for(
    cluster: Cluster, session: boto3.Session, settings: Settings, *, aws_configs: ConfigSource
) -> Connection:
    """How to reach `cluster` now: the one place that tells the kinds of cluster apart."""
    if isinstance(cluster, KubeconfigCluster):
        return kubeconfig_file_connection(cluster.path, cluster.context, pool_size=settings.max_concurrency)
    if isinstance(cluster, KubeconfigSecretCluster):
        document = KubeconfigSecrets(session, configs=aws_configs).read(cluster.secret_id)
        connection = kubeconfig_document_connection(
            document, cluster.context, source=cluster.secret_id, pool_size=settings.max_concurrency
        )
        # CLUSTER_NAME, when set, only names the cluster in the summary and the metrics.
        return replace(connection, name=settings.cluster_name or connection.name)
    endpoint = CLUSTERS.endpoint(session, cluster_name=cluster.name, region=settings.region, configs=aws_configs)
    # A new token every run: valid 15 minutes, longer than any run, shorter than a warm container.
    token = generate_eks_token(session, cluster_name=cluster.name, region=settings.region)
    return eks_connection(
        cluster.name,
        endpoint.url,
        endpoint.ca_pem,
        token,
        description=f"EKS cluster {cluster.name} in {settings.region} ({endpoint.url})",
        pool_size=settings.max_concurrency,
    )
