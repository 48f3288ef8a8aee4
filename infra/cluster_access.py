"""Cluster access: an EKS access entry mapping one cluster's function role to the Kubernetes group.

The group's rights come from the RBAC manifest and admission policy (infra/rbac.py), rendered from the
same config and applied with kubectl; no EKS access policy is attached (AmazonEKSEditPolicy would be
far broader). A cluster reached through a kubeconfig gets no entry, nor does one listed in
`existingAccessEntries` (its entry is managed elsewhere; `check` reports it).
"""

from __future__ import annotations

from aws_cdk import aws_eks as eks
from aws_cdk import aws_iam as iam
from constructs import Construct

from infra.config import Cluster, DeploymentConfig


def access_entry(
    scope: Construct, *, config: DeploymentConfig, cluster: Cluster, role: iam.IRole
) -> eks.CfnAccessEntry | None:
    """The entry, named by its cluster (never by its place in the list), or None when not ours to make."""
    if not cluster.manage_access_entry:
        return None
    return eks.CfnAccessEntry(
        scope,
        "AccessEntry",
        cluster_name=cluster.name,
        principal_arn=role.role_arn,
        type="STANDARD",
        kubernetes_groups=[config.kubernetes_group],
    )
