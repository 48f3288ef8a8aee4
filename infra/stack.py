"""The stack: one refresher per cluster (with its access entry), shared dead letters and monitoring."""

from __future__ import annotations

from collections.abc import Callable

from aws_cdk import CfnOutput, Duration, Environment, Stack
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from infra.bundling import BundledCode, bundled_code
from infra.cluster_access import access_entry
from infra.config import DeploymentConfig
from infra.monitoring import Monitoring
from infra.nag import acknowledge
from infra.refresher import RUNTIME, ClusterRefresher, RunOnDeployProvider


class EcrTokenRefresherStack(Stack):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: DeploymentConfig,
        code: BundledCode | None = None,
        env: Environment | None = None,
    ) -> None:
        super().__init__(
            scope, construct_id, description="ecr-token-refresher: ECR pull secrets for Kubernetes", env=env
        )
        code = code or bundled_code(RUNTIME, architecture=config.architecture)
        self.dead_letter_queue = sqs.Queue(
            self,
            "DeadLetterQueue",
            retention_period=Duration.days(14),
            encryption=sqs.QueueEncryption.SQS_MANAGED,
            enforce_ssl=True,
        )
        acknowledge(
            self.dead_letter_queue,
            "AwsSolutions-SQS3",
            "This queue is itself the dead-letter queue of the schedules' deliveries.",
        )
        self.refreshers: list[ClusterRefresher] = []
        provider = RunOnDeployProvider(self, "RunOnDeploy", config=config) if config.run_on_deploy else None
        for cluster in config.clusters:
            # Named by the cluster, never by its place in the list: removing one touches no other.
            unit = Construct(self, f"Cluster-{cluster.name}")
            refresher = ClusterRefresher(
                unit,
                "Refresher",
                config=config,
                cluster=cluster,
                code=code.code,
                code_hash=code.hash,
                dead_letter_queue=self.dead_letter_queue,
            )
            entry = access_entry(unit, config=config, cluster=cluster, role=refresher.role)
            if provider is not None:
                refresher.run_on_deploy(provider, after=[entry] if entry is not None else [])
            outputs = {
                "FunctionName": (refresher.function.function_name, cluster.name),
                "RoleArn": (refresher.role.role_arn, f"the role {cluster.name} maps"),
            }
            for name, (value, description) in outputs.items():
                CfnOutput(unit, name, value=value, description=description, key=cluster.output_prefix + name)
            self.refreshers.append(refresher)
        self.monitoring = Monitoring(
            self, "Monitoring", config=config, refreshers=self.refreshers, dead_letter_queue=self.dead_letter_queue
        )
        CfnOutput(self, "AlarmTopic", value=self.monitoring.topic.topic_arn)
        CfnOutput(self, "KubernetesGroup", value=config.kubernetes_group, description="bind it with `make apply`")


def environment_stacks(
    scope: Construct, config: DeploymentConfig, code: Callable[[], BundledCode] | None = None
) -> list[EcrTokenRefresherStack]:
    """One stack per account and region: the clusters that name theirs deploy there (the CDK CLI assumes
    that environment's bootstrap roles); the others go to an env-agnostic stack, whose account and region
    come at deploy, so that synth needs no AWS credentials. Removing an environment's last cluster
    leaves the other stacks as they were."""
    stacks = []
    for environment in config.environments:
        where = Environment(account=environment.account, region=environment.region) if environment else None
        name = config.stack_name_for(environment)
        stacks.append(
            EcrTokenRefresherStack(
                scope, name, config=config.for_environment(environment), code=code() if code else None, env=where
            )
        )
    return stacks
