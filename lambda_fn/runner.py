"""The composition function both front doors call: build the adapters, fetch tokens, run the core."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import boto3

from lambda_fn.aws import ClusterDirectory, EcrTokenSource, generate_eks_token
from lambda_fn.config import Settings
from lambda_fn.credentials import fetch_registry_credentials
from lambda_fn.k8s import connect, eks_configuration, kubeconfig_configuration
from lambda_fn.models import Outcome, RunSummary
from lambda_fn.refresher import RefreshPlan, renew_pull_secrets

# Module level on purpose: a warm Lambda container reuses DescribeCluster's answer.
CLUSTERS = ClusterDirectory()


@dataclass(frozen=True)
class EksCluster:
    """Reach the cluster as the current AWS principal (the Lambda's role) through EKS."""

    name: str


@dataclass(frozen=True)
class KubeconfigCluster:
    """Reach any cluster through a kubeconfig file and context (None: the defaults)."""

    path: str | None = None
    context: str | None = None


def utc_now() -> datetime:
    return datetime.now(UTC)


def run_refresh(
    settings: Settings,
    cluster: EksCluster | KubeconfigCluster,
    *,
    remaining_seconds: Callable[[], float | None] = lambda: None,
    session: boto3.Session | None = None,
) -> RunSummary:
    """Find the cluster, fetch and validate every registry token, then renew the secrets."""
    session = session or boto3.Session(region_name=settings.region)
    configuration, label = _cluster_configuration(cluster, session, settings)
    credentials = fetch_registry_credentials(EcrTokenSource(session), settings, now=utc_now())
    with connect(configuration) as api:
        summary = renew_pull_secrets(
            api,
            credentials,
            RefreshPlan.from_settings(settings),
            cluster_label=label,
            now=utc_now,
            remaining_seconds=remaining_seconds,
        )
    if (
        isinstance(cluster, EksCluster)
        and summary.results
        and not any(r.outcome is not Outcome.FAILED for r in summary.results)
    ):
        # Nothing got through: the cluster may have been recreated (new endpoint or CA), so the
        # next run asks DescribeCluster again instead of trusting this container's cache.
        CLUSTERS.forget(cluster_name=cluster.name, region=settings.region)
    return summary


def _cluster_configuration(
    cluster: EksCluster | KubeconfigCluster, session: boto3.Session, settings: Settings
) -> tuple[Any, str]:
    """The kubernetes client Configuration (typed Any outside k8s.py) and a label for the summary."""
    if isinstance(cluster, KubeconfigCluster):
        return kubeconfig_configuration(cluster.path, cluster.context, pool_size=settings.max_concurrency)
    endpoint = CLUSTERS.endpoint(session, cluster_name=cluster.name, region=settings.region)
    # A new token every run: valid 15 minutes, longer than any run, shorter than a warm container.
    token = generate_eks_token(session, cluster_name=cluster.name, region=settings.region)
    return eks_configuration(endpoint.url, endpoint.ca_pem, token, pool_size=settings.max_concurrency), cluster.name
