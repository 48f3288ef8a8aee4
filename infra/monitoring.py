"""Alarms per cluster (function errors, failed namespaces, foreign secrets, the expiry watchdog), the
dead-letter alarm, their SNS topic with its key, and a dashboard."""

from __future__ import annotations

from collections.abc import Sequence

from aws_cdk import Annotations, Aws, Duration, Stack, Token
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as actions
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sns_subscriptions as subscriptions
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from infra.config import DeploymentConfig
from infra.refresher import ClusterRefresher
from lambda_fn.telemetry import EXPIRY_METRIC, METRICS_NAMESPACE

# The expiry watchdog alarms after this many periods in a row below its threshold or without data.
WATCHDOG_PERIODS = 3


class Monitoring(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: DeploymentConfig,
        refreshers: Sequence[ClusterRefresher],
        dead_letter_queue: sqs.IQueue,
    ) -> None:
        super().__init__(scope, construct_id)
        self.topic = self._topic(config)
        # Every metric and alarm carries the stack (the functions set POWERTOOLS_SERVICE_NAME to it).
        self.service = config.service_name
        # One failed run is enough to alarm; a period of at least 5 minutes smooths a 1-minute schedule.
        self.period = Duration.minutes(max(config.schedule_minutes, 5))
        self.alarms: list[cloudwatch.Alarm] = []
        for refresher in refreshers:
            self._cluster_alarms(config, refresher)
        self.alarms.append(
            self._alarm(
                "DeadLetters",
                "Scheduled runs could not be delivered to the function (see the dead-letter queue)",
                # Messages sent in the period, not those still visible: a visible message stays for the
                # queue's 14-day retention, which would hold the alarm on and hide every later failure.
                dead_letter_queue.metric_number_of_messages_sent(period=self.period, statistic="Sum"),
            )
        )
        for alarm in self.alarms:
            alarm.add_alarm_action(actions.SnsAction(self.topic))
        self.dashboard = self._dashboard(refreshers)

    def _topic(self, config: DeploymentConfig) -> sns.ITopic:
        if config.alarm_topic_arn:
            return sns.Topic.from_topic_arn(self, "AlarmTopic", config.alarm_topic_arn)
        # A customer-managed key: the AWS-managed alias/aws/sns key's policy does not let CloudWatch
        # publish, so every alarm action on a topic encrypted with it fails.
        key = kms.Key(self, "AlarmTopicKey", enable_key_rotation=True, description="ecr-token-refresher alarm topic")
        # The statement AWS documents for CloudWatch alarms publishing to an encrypted topic (Amazon SNS
        # Developer Guide, "Configuring AWS KMS permissions" for AWS service event sources), without a
        # condition: a condition key CloudWatch does not send would drop every notification silently.
        # Who may publish is held by the topic policy below (this account's alarms only).
        key.add_to_resource_policy(
            iam.PolicyStatement(
                sid="CloudWatchAlarmsPublish",
                principals=[iam.ServicePrincipal("cloudwatch.amazonaws.com")],
                actions=["kms:Decrypt", "kms:GenerateDataKey*"],
                resources=["*"],  # in a key policy, "*" is this key
            )
        )
        topic = sns.Topic(
            self, "AlarmTopic", display_name="ecr-token-refresher alarms", master_key=key, enforce_ssl=True
        )
        # enforce_ssl gives the topic a policy of its own, which replaces SNS's default one: without this
        # statement it holds only the TLS deny, and CloudWatch, a service principal, may not publish.
        topic.add_to_resource_policy(
            iam.PolicyStatement(
                sid="CloudWatchAlarmsPublish",
                principals=[iam.ServicePrincipal("cloudwatch.amazonaws.com")],
                actions=["sns:Publish"],
                resources=[topic.topic_arn],
                conditions={
                    "StringEquals": {"aws:SourceAccount": Aws.ACCOUNT_ID},
                    "ArnLike": {
                        "aws:SourceArn": f"arn:{Aws.PARTITION}:cloudwatch:{Aws.REGION}:{Aws.ACCOUNT_ID}:alarm:*"
                    },
                },
            )
        )
        if config.alarm_email:
            topic.add_subscription(subscriptions.EmailSubscription(config.alarm_email))
        else:
            Annotations.of(self).add_warning_v2(
                "ecr-token-refresher:noAlarmDestination",
                "No alarm destination: set alarmEmail or alarmTopicArn, or subscribe to the AlarmTopic output, "
                "or nobody hears when pull secrets stop being renewed.",
            )
        return topic

    def _metric(self, name: str, cluster: str, statistic: str) -> cloudwatch.Metric:
        """One of the function's EMF metrics for `cluster` (alarms cannot use SEARCH)."""
        return cloudwatch.Metric(
            namespace=METRICS_NAMESPACE,
            metric_name=name,
            dimensions_map={"cluster": cluster, "service": self.service},
            statistic=statistic,
            period=self.period,
        )

    def _cluster_alarms(self, config: DeploymentConfig, refresher: ClusterRefresher) -> None:
        name = refresher.cluster.name
        self.alarms += [
            self._alarm(
                f"FunctionErrors-{name}",
                f"The refresher for {name} failed: see the function's summary log line for each namespace",
                refresher.function.metric_errors(period=self.period, statistic="Sum"),
            ),
            self._alarm(
                f"FailedNamespaces-{name}",
                f"Some namespaces of {name} did not get a fresh pull secret",
                self._metric("NamespacesFailed", name, "Sum"),
            ),
            self._alarm(
                f"ForeignSecrets-{name}",
                f"Some namespaces of {name} hold a same-named secret this tool does not manage (`check` lists them)",
                self._metric("ForeignSecrets", name, "Maximum"),
            ),
            cloudwatch.Alarm(
                self,
                f"Expiry-{name}",
                alarm_description=(
                    f"A pull secret in {name} expires in less than {config.expiry_alarm_minutes} minutes, or no run "
                    f"has reported for {WATCHDOG_PERIODS} periods (schedule disabled, function broken or throttled, "
                    "cluster unreachable, or its Lease held by another runner: see RunsSkipped and the log's "
                    "holder): pulls fail once a secret expires"
                ),
                metric=self._metric(EXPIRY_METRIC, name, "Minimum"),
                threshold=config.expiry_alarm_minutes * 60,
                comparison_operator=cloudwatch.ComparisonOperator.LESS_THAN_THRESHOLD,
                evaluation_periods=WATCHDOG_PERIODS,
                datapoints_to_alarm=WATCHDOG_PERIODS,
                treat_missing_data=cloudwatch.TreatMissingData.BREACHING,
            ),
        ]

    def _alarm(self, construct_id: str, description: str, metric: cloudwatch.IMetric) -> cloudwatch.Alarm:
        """Alarm from the first bad data point; no data (no run yet) is not an alarm (the watchdog's job)."""
        return cloudwatch.Alarm(
            self,
            construct_id,
            alarm_description=description,
            metric=metric,
            threshold=1,
            evaluation_periods=1,
            comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
            treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
        )

    def _dashboard(self, refreshers: Sequence[ClusterRefresher]) -> cloudwatch.Dashboard:
        def search(metric_name: str, statistic: str) -> str:
            # Every cluster's series of this stack (the function's EMF dimensions: cluster, service = stack).
            query = f'{{{METRICS_NAMESPACE},cluster,service}} service="{self.service}" MetricName="{metric_name}"'
            return f"SEARCH('{query}', '{statistic}', 300)"

        def outcome(name: str) -> cloudwatch.IMetric:
            return cloudwatch.MathExpression(
                expression=f"SUM({search(f'Namespaces{name}', 'Sum')})", label=name.lower(), period=Duration.minutes(5)
            )

        def run_metric(name: str, statistic: str) -> cloudwatch.IMetric:
            return cloudwatch.MathExpression(expression=search(name, statistic), label=name, period=Duration.minutes(5))

        # Dashboards are global to the account: named by stack and region, so none collides.
        # Named by stack and region; a stack pinned to an environment carries its region in its name already.
        stack = Stack.of(self)
        name = stack.stack_name if not Token.is_unresolved(stack.region) else f"{stack.stack_name}-{Aws.REGION}"
        dashboard = cloudwatch.Dashboard(self, "Dashboard", dashboard_name=name)
        dashboard.add_widgets(
            cloudwatch.GraphWidget(
                title="Runs and errors",
                left=[
                    metric
                    for refresher in refreshers
                    for metric in (
                        refresher.function.metric_invocations(period=Duration.minutes(5)),
                        refresher.function.metric_errors(period=Duration.minutes(5)),
                    )
                ],
            ),
            cloudwatch.GraphWidget(
                title="Namespaces per outcome",
                left=[outcome(name) for name in ("Created", "Updated", "Adopted", "Unchanged", "Skipped", "Failed")],
                stacked=True,
            ),
            cloudwatch.GraphWidget(
                title="Hours until the first pull secret expires / run duration",
                left=[
                    cloudwatch.MathExpression(
                        expression=f"{search(EXPIRY_METRIC, 'Minimum')} / 3600",
                        label="hours to first expiry",
                        period=Duration.minutes(5),
                    )
                ],
                right=[run_metric("RunDuration", "Maximum")],
            ),
        )
        return dashboard
