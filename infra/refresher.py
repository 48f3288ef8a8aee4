"""The refresher: function, least-privilege role, log group, schedule, dead-letter queue, first run."""

from __future__ import annotations

from aws_cdk import Acknowledgment, Annotations, ArnFormat, Aws, Duration, RemovalPolicy, Stack, Validations, triggers
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_lambda_destinations as destinations
from aws_cdk import aws_logs as logs
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from infra.bundling import code_asset
from infra.config import DeploymentConfig
from lambda_fn.telemetry import METRICS_NAMESPACE, SERVICE

RUNTIME = lambda_.Runtime.PYTHON_3_13
ECR_PULL_ACTIONS = ["ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer", "ecr:BatchCheckLayerAvailability"]
RETENTION: dict[int, logs.RetentionDays] = {
    days: getattr(logs.RetentionDays, name)
    for name, days in [
        ("ONE_DAY", 1),
        ("THREE_DAYS", 3),
        ("FIVE_DAYS", 5),
        ("ONE_WEEK", 7),
        ("TWO_WEEKS", 14),
        ("ONE_MONTH", 30),
        ("TWO_MONTHS", 60),
        ("THREE_MONTHS", 90),
        ("SIX_MONTHS", 180),
        ("ONE_YEAR", 365),
        ("TWO_YEARS", 731),
        ("FIVE_YEARS", 1827),
        ("TEN_YEARS", 3653),
    ]
}


class Refresher(Construct):
    """The function and what runs it. Exposes `function`, `role` and `dead_letter_queue`."""

    def __init__(
        self, scope: Construct, construct_id: str, *, config: DeploymentConfig, code: lambda_.Code | None = None
    ) -> None:
        super().__init__(scope, construct_id)
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
            "This queue is itself the dead-letter queue of the schedule's targets and of the async invocations.",
        )
        self.role = iam.Role(
            self,
            "Role",
            assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
            description="ecr-token-refresher: ECR tokens, DescribeCluster; Kubernetes access via its access entry",
        )
        self._grant(config)
        log_group = logs.LogGroup(
            self,
            "Logs",
            retention=_retention(config.log_retention_days),
            removal_policy=RemovalPolicy.DESTROY,
        )
        self.function = lambda_.Function(
            self,
            "Function",
            runtime=RUNTIME,
            architecture=lambda_.Architecture.ARM_64,
            handler="lambda_fn.handler.lambda_handler",
            code=code or code_asset(RUNTIME),
            role=self.role,
            memory_size=config.memory_mb,
            timeout=Duration.seconds(config.timeout_seconds),
            # One run per cluster at a time; more would only race each other on the same secrets.
            reserved_concurrent_executions=len(config.clusters),
            log_group=log_group,
            tracing=lambda_.Tracing.ACTIVE,
            environment={
                **config.function_environment,
                "POWERTOOLS_SERVICE_NAME": SERVICE,
                "POWERTOOLS_METRICS_NAMESPACE": METRICS_NAMESPACE,
                "POWERTOOLS_LOG_LEVEL": "INFO",
            },
            description="Keeps ECR image-pull secrets valid in the cluster's namespaces",
        )
        acknowledge(
            self.function,
            "AwsSolutions-L1",
            f"{RUNTIME.name} on purpose: the newest runtime whose interpreter the build machine has, so the "
            "bundle ships bytecode compiled by it (measured cold import ~2x faster); 3.14 has no interpreter here.",
        )
        self.function.configure_async_invoke(
            retry_attempts=2,
            max_event_age=Duration.hours(1),
            on_failure=destinations.SqsDestination(self.dead_letter_queue),
        )
        if config.subnet_ids:
            self._attach_to_vpc(config)
        self._schedule(config)
        if config.run_on_deploy:
            # Asynchronous: a first run that fails (RBAC not applied yet) raises the alarm, not the deploy.
            triggers.Trigger(self, "RunOnDeploy", handler=self.function, invocation_type=triggers.InvocationType.EVENT)
            Annotations.of(self.function).acknowledge_warning(
                "@aws-cdk/aws-lambda:addPermissionsToVersionOrAlias",
                "The trigger invokes the function's current version with an identity policy on <function>:*; "
                "the schedule invokes $LATEST. No resource policy on a qualifier is needed.",
            )

    def _grant(self, config: DeploymentConfig) -> None:
        stack = Stack.of(self)
        self.role.add_to_policy(
            iam.PolicyStatement(
                sid="EcrAuthorizationToken",
                actions=["ecr:GetAuthorizationToken"],
                resources=["*"],  # the API has no resource-level permissions
            )
        )
        acknowledge(
            self.role,
            "AwsSolutions-IAM5[Resource::*]",
            "ecr:GetAuthorizationToken has no resource-level permissions; nor have xray:PutTraceSegments "
            "and xray:PutTelemetryRecords, which active tracing adds.",
        )
        # (resource ARN, as cdk-nag prints it); the token carries the function's own pull rights.
        repositories = [
            (
                f"arn:{Aws.PARTITION}:ecr:{spec.region}:{spec.account}:repository/*",
                f"arn:<AWS::Partition>:ecr:{spec.region}:{spec.account}:repository/*",
            )
            for spec in config.registries
            if spec.role_arn is None
        ]
        if config.settings.include_own_registry:
            repositories.insert(
                0,
                (
                    f"arn:{Aws.PARTITION}:ecr:{Aws.REGION}:{Aws.ACCOUNT_ID}:repository/*",
                    "arn:<AWS::Partition>:ecr:<AWS::Region>:<AWS::AccountId>:repository/*",
                ),
            )
        if repositories:
            self.role.add_to_policy(
                iam.PolicyStatement(sid="EcrPull", actions=ECR_PULL_ACTIONS, resources=[arn for arn, _ in repositories])
            )
        for _, printed in repositories:
            acknowledge(
                self.role,
                f"AwsSolutions-IAM5[Resource::{printed}]",
                "The pull secret serves every repository of a configured registry (the kubelet pulls with the "
                "function's rights), so pulls are granted on repository/* of those registries and no others.",
            )
        self.role.add_to_policy(
            iam.PolicyStatement(
                sid="EksDescribeCluster",
                actions=["eks:DescribeCluster"],
                resources=[
                    stack.format_arn(
                        service="eks", resource="cluster", resource_name=name, arn_format=ArnFormat.SLASH_RESOURCE_NAME
                    )
                    for name in config.clusters
                ],
            )
        )
        roles = sorted({spec.role_arn for spec in config.registries if spec.role_arn})
        if roles:
            self.role.add_to_policy(
                iam.PolicyStatement(sid="AssumeRegistryRoles", actions=["sts:AssumeRole"], resources=roles)
            )

    def _attach_to_vpc(self, config: DeploymentConfig) -> None:
        """Private-endpoint clusters: the function runs in the given subnets and security groups."""
        function = self.function.node.default_child
        assert isinstance(function, lambda_.CfnFunction)  # noqa: S101 - an L2 Function's default child
        function.vpc_config = lambda_.CfnFunction.VpcConfigProperty(
            subnet_ids=list(config.subnet_ids), security_group_ids=list(config.security_group_ids)
        )
        self.role.add_managed_policy(
            iam.ManagedPolicy.from_aws_managed_policy_name("service-role/AWSLambdaVPCAccessExecutionRole")
        )
        acknowledge(
            self.role,
            "AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AWSLambdaVPCAccessExecutionRole]",
            "The AWS-maintained minimum for a function's network interfaces in the cluster's VPC.",
        )

    def _schedule(self, config: DeploymentConfig) -> None:
        for index, cluster in enumerate(config.clusters):
            # One rule per cluster: each cluster's run is its own invocation.
            rule = events.Rule(
                self,
                "Schedule" if index == 0 else f"Schedule{cluster}",
                schedule=events.Schedule.rate(Duration.minutes(config.schedule_minutes)),
                description=f"ecr-token-refresher for EKS cluster {cluster}",
            )
            rule.add_target(
                targets.LambdaFunction(
                    self.function,
                    event=events.RuleTargetInput.from_object({"cluster_name": cluster})
                    if len(config.clusters) > 1
                    else None,
                    retry_attempts=2,
                    max_event_age=Duration.hours(1),
                    dead_letter_queue=self.dead_letter_queue,
                )
            )


def acknowledge(construct: Construct, finding: str, reason: str) -> None:
    """Accept one specific cdk-nag AwsSolutions finding on `construct`, with the reason."""
    Validations.of(construct).acknowledge(Acknowledgment(id=f"AwsSolutions::{finding}", reason=reason))


def _retention(days: int) -> logs.RetentionDays:
    """The nearest CloudWatch retention at or above `days`."""
    return RETENTION[min((d for d in RETENTION if d >= days), default=3653)]
