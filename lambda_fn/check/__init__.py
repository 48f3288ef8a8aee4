"""`check`: the read-only preflight, a sibling of `refresh` on the same settings, clusters and adapters.

Every prerequisite gets one finding, ok or failed (unknown when it cannot be told), and every failed
one the exact fix. Nothing is written: tokens are fetched and validated, not stored; permissions are
asked with SelfSubjectAccessReview, which any authenticated user may create and which changes nothing;
admission is probed with dry runs. The target namespaces and their secrets are observed exactly as a run
observes them (lambda_fn/observation.py) and judged by its decision (lambda_fn/decisions.py).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

import boto3

from lambda_fn.aws import deadline_configs
from lambda_fn.check.admission_probe import admitted, confinement
from lambda_fn.check.aws_access import AwsAccess, aws_identity, eks_cluster, registry_tokens
from lambda_fn.check.cluster_access import kubernetes_identity, lease, permissions, target_namespaces, tenant_scopes
from lambda_fn.check.report import CheckReport, Finding, NamespaceState, Standing, Status
from lambda_fn.check.standings import standings
from lambda_fn.config import Settings
from lambda_fn.credentials import FetchedCredentials
from lambda_fn.decisions import Registries
from lambda_fn.errors import ClusterLookupError, ConfigError, CredentialError
from lambda_fn.k8s import connect
from lambda_fn.observation import observe
from lambda_fn.ports import PreflightApi
from lambda_fn.runner import Cluster, EksCluster, KubeconfigSecretCluster, connection_for, request_budget
from lambda_fn.tenancy import registries_by_namespace

__all__ = ["CheckReport", "Finding", "NamespaceState", "Standing", "Status", "check_cluster", "run_check"]


def run_check(
    settings: Settings,
    cluster: Cluster,
    *,
    session: boto3.Session | None = None,
    remaining_seconds: Callable[[], float | None] = lambda: None,
    function_name: str | None = None,
) -> CheckReport:
    """Every prerequisite of `refresh` for this configuration, in the order a run meets them.
    `function_name`: the Lambda running it, whose own network decides whether a private endpoint is
    reachable (None from a laptop)."""
    session = session or boto3.Session(region_name=settings.region)
    name = cluster.secret_id if isinstance(cluster, KubeconfigSecretCluster) else getattr(cluster, "name", None)
    report = CheckReport(name or "kubeconfig")
    aws = AwsAccess(session, settings.region, deadline_configs(request_budget(remaining_seconds)), function_name)
    arn, identity = aws_identity(aws)
    fetched, tokens = registry_tokens(aws, settings, identified=arn is not None)
    report.findings += [identity, *tokens]
    if isinstance(cluster, EksCluster):
        report.findings += eks_cluster(aws, cluster.name, arn)
    try:
        connection = connection_for(cluster, session, settings, aws_configs=aws.configs)
    except (ClusterLookupError, ConfigError, CredentialError) as exc:
        report.findings.append(Finding("cluster", Status.FAILED, str(exc)))
        return report
    report.cluster = connection.name
    report.findings.append(Finding("cluster", Status.OK, connection.description))
    with connect(connection, time_left=request_budget(remaining_seconds)) as api:
        findings, report.namespaces = check_cluster(api, settings, fetched)
    report.findings += findings
    return report


def check_cluster(
    api: PreflightApi, settings: Settings, fetched: FetchedCredentials
) -> tuple[list[Finding], list[NamespaceState]]:
    """The cluster's side, on any PreflightApi (the unit tests' fakes too): the identity, the targets as
    a run observes them, the permissions, the Lease, admission, and each target's standing."""
    accepted, identity = kubernetes_identity(api)
    if not accepted:
        return [identity], []
    observed = observe(api, replace(settings, service_accounts=()))  # their grants are asked, not their state
    namespaces = [target.name for target in observed.targets if not target.terminating]
    findings = [identity, target_namespaces(observed), *tenant_scopes(settings, observed)]
    findings += [*permissions(api, settings, namespaces), *lease(api, settings)]
    receives = registries_by_namespace(
        Registries(tuple(fetched.credentials), fetched.unavailable), settings.tenants, observed.selected
    )
    absent: set[str] = set()
    if namespaces:
        findings += confinement(api, namespaces[0])
        absent, admission = admitted(
            api,
            settings.secret_name,
            namespaces,
            concurrency=settings.max_concurrency,
            hosts=lambda namespace: receives(namespace).hosts,
        )
        findings += admission
    found, failing = standings(
        api,
        settings,
        observed.targets,
        observed.states,
        registries=receives,
        any_token=bool(fetched.credentials),
        absent=absent,
        concurrency=settings.max_concurrency,
    )
    return findings + failing, found
