"""The stack: the refresher, its cluster access and its monitoring."""

from __future__ import annotations

from aws_cdk import CfnOutput, Stack
from aws_cdk import aws_lambda as lambda_
from constructs import Construct

from infra.cluster_access import ClusterAccess
from infra.config import DeploymentConfig
from infra.monitoring import Monitoring
from infra.refresher import Refresher


class EcrTokenRefresherStack(Stack):
    def __init__(
        self, scope: Construct, construct_id: str, *, config: DeploymentConfig, code: lambda_.Code | None = None
    ) -> None:
        super().__init__(scope, construct_id, description="ecr-token-refresher: ECR pull secrets for EKS namespaces")
        refresher = Refresher(self, "Refresher", config=config, code=code)
        access = ClusterAccess(self, "ClusterAccess", config=config, role=refresher.role)
        Monitoring(
            self,
            "Monitoring",
            config=config,
            function=refresher.function,
            dead_letter_queue=refresher.dead_letter_queue,
        )
        CfnOutput(self, "FunctionName", value=refresher.function.function_name)
        CfnOutput(self, "RoleArn", value=refresher.role.role_arn, description="mapped by the access entry")
        CfnOutput(self, "KubernetesGroup", value=config.kubernetes_group, description="bind it with `make rbac`")
        CfnOutput(self, "AccessEntries", value=",".join(config.clusters))
        self.refresher = refresher
        self.access = access
