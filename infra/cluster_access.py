"""Cluster access: an EKS access entry per cluster mapping the function's role to a Kubernetes group.

The group's rights come from the RBAC manifest (infra/rbac.py), rendered from the same config and
applied with kubectl; no EKS access policy is attached (AmazonEKSEditPolicy would be far broader).
"""

from __future__ import annotations

from aws_cdk import aws_eks as eks
from aws_cdk import aws_iam as iam
from constructs import Construct

from infra.config import DeploymentConfig


class ClusterAccess(Construct):
    def __init__(self, scope: Construct, construct_id: str, *, config: DeploymentConfig, role: iam.IRole) -> None:
        super().__init__(scope, construct_id)
        self.entries = [
            eks.CfnAccessEntry(
                self,
                f"AccessEntry{index}",
                cluster_name=cluster,
                principal_arn=role.role_arn,
                type="STANDARD",
                kubernetes_groups=[config.kubernetes_group],
            )
            for index, cluster in enumerate(config.clusters)
        ]
