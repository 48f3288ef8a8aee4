"""One cluster's refresher: its function, log group and role, its schedule, and its first run on deploy.

Each cluster gets a function of its own (one code asset for all): its own environment, its own role
(its access entry maps that role alone), its own log group and alarms, and runs that never queue
behind another cluster's.
"""

from __future__ import annotations

import json

from aws_cdk import Duration, RemovalPolicy
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_sqs as sqs
from aws_cdk import custom_resources as cr
from constructs import Construct, IConstruct

from infra.config import Cluster, DeploymentConfig
from infra.nag import acknowledge
from infra.role import RefresherRole

RUNTIME = lambda_.Runtime.PYTHON_3_13
ARCHITECTURES = {"arm64": lambda_.Architecture.ARM_64, "x86_64": lambda_.Architecture.X86_64}
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
        ("FOUR_MONTHS", 120),
        ("FIVE_MONTHS", 150),
        ("SIX_MONTHS", 180),
        ("ONE_YEAR", 365),
        ("THIRTEEN_MONTHS", 400),
        ("EIGHTEEN_MONTHS", 545),
        ("TWO_YEARS", 731),
        ("THREE_YEARS", 1096),
        ("FIVE_YEARS", 1827),
        ("SIX_YEARS", 2192),
        ("SEVEN_YEARS", 2557),
        ("EIGHT_YEARS", 2922),
        ("NINE_YEARS", 3288),
        ("TEN_YEARS", 3653),
    ]
}


class ClusterRefresher(Construct):
    """Exposes `function`, `role` and `log_group`."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: DeploymentConfig,
        cluster: Cluster,
        code: lambda_.Code,
        code_hash: str,
        dead_letter_queue: sqs.IQueue,
    ) -> None:
        super().__init__(scope, construct_id)
        self.cluster = cluster
        self.log_group = logs.LogGroup(
            self, "Logs", retention=RETENTION[config.log_retention_days], removal_policy=RemovalPolicy.DESTROY
        )
        self.role = RefresherRole(self, "Access", config=config, cluster=cluster, log_group=self.log_group).role
        self.function = lambda_.Function(
            self,
            "Function",
            runtime=RUNTIME,
            architecture=ARCHITECTURES[config.architecture],
            handler="lambda_fn.handler.lambda_handler",
            code=code,
            role=self.role,
            memory_size=config.memory_mb,
            timeout=Duration.seconds(config.timeout_seconds),
            # Opt-in: any reservation fails in an account still at the default quota; overlapping runs
            # are safe without it (every write is guarded by a resourceVersion).
            reserved_concurrent_executions=config.reserved_concurrency,
            log_group=self.log_group,
            # JSON logs at INFO, set here rather than left to the account's defaults: Powertools follows
            # the application level, and the credential-bearing libraries stay pinned at WARNING anyway.
            logging_format=lambda_.LoggingFormat.JSON,
            application_log_level_v2=lambda_.ApplicationLogLevel.INFO,
            system_log_level_v2=lambda_.SystemLogLevel.WARN,
            tracing=lambda_.Tracing.ACTIVE,
            environment=config.environment(cluster),
            description=f"Keeps ECR image-pull secrets valid in cluster {cluster.name}",
        )
        acknowledge(
            self.function,
            "AwsSolutions-L1",
            f"{RUNTIME.name} on purpose: the newest runtime whose interpreter the build machine has, so the "
            "bundle ships bytecode compiled by it (measured cold import ~2x faster); 3.14 has no interpreter here.",
        )
        # The schedule is the retry: a failed run is not retried (the next one comes within a period), and a
        # run queued longer than two periods is dropped, so throttled runs never pile up.
        self.function.configure_async_invoke(retry_attempts=0, max_event_age=max_event_age(config.schedule_minutes))
        if config.subnet_ids:
            function = self.function.node.default_child
            assert isinstance(function, lambda_.CfnFunction)  # noqa: S101 - an L2 Function's default child
            function.vpc_config = lambda_.CfnFunction.VpcConfigProperty(
                subnet_ids=list(config.subnet_ids), security_group_ids=list(config.security_group_ids)
            )
        if cluster.is_eks:
            # `check` in the Lambda judges a private or restricted endpoint against the VPC the function
            # runs in, read from its own configuration. A policy of its own: the function depends on the
            # role's default policy, so naming the function's ARN there would make a cycle.
            iam.Policy(
                self,
                "ReadsItsOwnNetwork",
                roles=[self.role],
                statements=[
                    iam.PolicyStatement(
                        actions=["lambda:GetFunctionConfiguration"], resources=[self.function.function_arn]
                    )
                ],
            )
        self._schedule(config, dead_letter_queue)
        self._code_hash = code_hash

    def _schedule(self, config: DeploymentConfig, dead_letter_queue: sqs.IQueue) -> None:
        rule = events.Rule(
            self,
            "Schedule",
            schedule=events.Schedule.rate(Duration.minutes(config.schedule_minutes)),
            description=f"ecr-token-refresher for cluster {self.cluster.name}",
        )
        # EventBridge's own retries and dead letters cover a failed delivery (function deleted, permission
        # removed); what the function does with the event is the async settings' business.
        rule.add_target(
            targets.LambdaFunction(
                self.function,
                retry_attempts=2,
                max_event_age=max_event_age(config.schedule_minutes),
                dead_letter_queue=dead_letter_queue,
            )
        )

    def run_on_deploy(self, provider: RunOnDeployProvider, *, after: list[IConstruct]) -> None:
        """Invoke $LATEST asynchronously (the same async settings as the schedule), once cluster access
        exists, and again whenever the code changes: a first run that fails raises the alarm, not the deploy."""
        invoke = cr.AwsSdkCall(
            service="Lambda",
            action="invoke",
            parameters={
                "FunctionName": self.function.function_name,
                "InvocationType": "Event",
                "Payload": json.dumps({}),
            },
            physical_resource_id=cr.PhysicalResourceId.of(f"run-on-deploy-{self._code_hash[:16]}"),
            # The invoke grant is an IAM policy created just before this call, and IAM is eventually
            # consistent: an AccessDenied in that window would fail the deploy and roll it back
            # (aws/aws-cdk#37675, #31429, #23340). AwsSdkCall's documented way out is to ignore that error
            # code: the schedule's first run follows within one period, and its failure raises the alarm.
            ignore_error_codes_matching="AccessDeniedException",
        )
        run = cr.AwsCustomResource(
            self,
            "RunOnDeploy",
            on_create=invoke,
            on_update=invoke,
            policy=cr.AwsCustomResourcePolicy.from_statements(
                [iam.PolicyStatement(actions=["lambda:InvokeFunction"], resources=[self.function.function_arn])]
            ),
            install_latest_aws_sdk=False,
            role=provider.role,
            log_group=provider.log_group,
        )
        for dependency in [self.function, *after]:
            run.node.add_dependency(dependency)


class RunOnDeployProvider(Construct):
    """The role and log group of the CDK's one provider function behind every RunOnDeploy: it writes to
    its own log group only (the CDK's default role may write to any), and invokes the refreshers."""

    def __init__(self, scope: Construct, construct_id: str, *, config: DeploymentConfig) -> None:
        super().__init__(scope, construct_id)
        self.log_group = logs.LogGroup(
            self, "Logs", retention=RETENTION[config.log_retention_days], removal_policy=RemovalPolicy.DESTROY
        )
        self.role = iam.Role(
            self,
            "Role",
            assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
            description="ecr-token-refresher: invokes each refresher once on deploy",
        )
        self.log_group.grant_write(self.role)


# Lambda and EventBridge accept an event age of 60 s to 6 h.
MAX_EVENT_AGE_MINUTES = 360


def max_event_age(schedule_minutes: int) -> Duration:
    """Two schedule periods, within what Lambda and EventBridge accept (a 4-hour schedule gets 6 hours)."""
    return Duration.minutes(min(max(2 * schedule_minutes, 1), MAX_EVENT_AGE_MINUTES))
