"""Alarms (function errors, failed namespaces, dead letters), their SNS topic, and a dashboard."""

from __future__ import annotations

from aws_cdk import Duration
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as actions
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sns_subscriptions as subscriptions
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from infra.config import DeploymentConfig
from lambda_fn.telemetry import METRICS_NAMESPACE, SERVICE


class Monitoring(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: DeploymentConfig,
        function: lambda_.IFunction,
        dead_letter_queue: sqs.IQueue,
    ) -> None:
        super().__init__(scope, construct_id)
        if config.alarm_topic_arn:
            self.topic = sns.Topic.from_topic_arn(self, "AlarmTopic", config.alarm_topic_arn)
        else:
            self.topic = sns.Topic(
                self,
                "AlarmTopic",
                display_name="ecr-token-refresher alarms",
                master_key=kms.Alias.from_alias_name(self, "SnsKey", "alias/aws/sns"),
                enforce_ssl=True,
            )
        if config.alarm_email and not config.alarm_topic_arn:
            self.topic.add_subscription(subscriptions.EmailSubscription(config.alarm_email))
        # A window of two schedule periods: one failed run (retries included) is enough to alarm.
        period = Duration.minutes(min(config.schedule_minutes * 2, 1440))
        # Alarms cannot use SEARCH: one concrete metric per cluster (the function's EMF dimensions).
        per_cluster = {
            f"m{index}": cloudwatch.Metric(
                namespace=METRICS_NAMESPACE,
                metric_name="NamespacesFailed",
                dimensions_map={"cluster": cluster, "service": SERVICE},
                statistic="Sum",
                period=period,
            )
            for index, cluster in enumerate(config.clusters)
        }
        failed_namespaces = cloudwatch.MathExpression(
            expression="+".join(per_cluster), using_metrics=per_cluster, label="failed namespaces", period=period
        )
        self.alarms = [
            self._alarm(
                "FunctionErrors",
                "The refresher failed: see the function's summary log line for each namespace",
                function.metric_errors(period=period, statistic="Sum"),
            ),
            self._alarm("FailedNamespaces", "Some namespaces did not get a fresh pull secret", failed_namespaces),
            self._alarm(
                "DeadLetters",
                "Scheduled runs were dropped after their retries (see the dead-letter queue)",
                dead_letter_queue.metric_approximate_number_of_messages_visible(period=period),
            ),
        ]
        for alarm in self.alarms:
            alarm.add_alarm_action(actions.SnsAction(self.topic))
        self.dashboard = self._dashboard(function)

    def _alarm(self, construct_id: str, description: str, metric: cloudwatch.IMetric) -> cloudwatch.Alarm:
        """Alarm from the first bad data point; no data (no run yet) is not an alarm."""
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

    def _dashboard(self, function: lambda_.IFunction) -> cloudwatch.Dashboard:
        def search(metric_name: str, statistic: str) -> str:
            # Every cluster's series (the function's EMF dimensions: cluster, service).
            return f"SEARCH('{{{METRICS_NAMESPACE},cluster,service}} MetricName=\"{metric_name}\"', '{statistic}', 300)"

        def outcome(name: str) -> cloudwatch.IMetric:
            return cloudwatch.MathExpression(
                expression=f"SUM({search(f'Namespaces{name}', 'Sum')})", label=name.lower(), period=Duration.minutes(5)
            )

        def run_metric(name: str, statistic: str) -> cloudwatch.IMetric:
            return cloudwatch.MathExpression(expression=search(name, statistic), label=name, period=Duration.minutes(5))

        dashboard = cloudwatch.Dashboard(self, "Dashboard", dashboard_name=f"{SERVICE}-runs")
        dashboard.add_widgets(
            cloudwatch.GraphWidget(
                title="Runs and errors",
                left=[
                    function.metric_invocations(period=Duration.minutes(5)),
                    function.metric_errors(period=Duration.minutes(5)),
                ],
            ),
            cloudwatch.GraphWidget(
                title="Namespaces per outcome",
                left=[outcome(name) for name in ("Created", "Updated", "Unchanged", "Skipped", "Failed")],
                stacked=True,
            ),
            cloudwatch.GraphWidget(
                title="Seconds until the token expires / run duration",
                left=[run_metric("SecondsUntilTokenExpiry", "Minimum")],
                right=[run_metric("RunDuration", "Maximum")],
            ),
        )
        return dashboard
