"""The synthesized stack, property by property: function, IAM, schedule, access entry, alarms."""

from __future__ import annotations

import json
from typing import Any

import pytest
from aws_cdk.assertions import Annotations, Match, Template

from tests.infra.conftest import Synthesized


def policy_statements(template: Template) -> list[dict[str, Any]]:
    policies = template.find_resources("AWS::IAM::Policy")
    role_policy = next(p for name, p in policies.items() if name.startswith("RefresherRole"))
    statements: list[dict[str, Any]] = role_policy["Properties"]["PolicyDocument"]["Statement"]
    return statements


def test_function_runtime_architecture_handler_and_limits(default_stack: Synthesized) -> None:
    _, template = default_stack
    template.has_resource_properties(
        "AWS::Lambda::Function",
        {
            "Runtime": "python3.13",
            "Architectures": ["arm64"],
            "Handler": "lambda_fn.handler.lambda_handler",
            "MemorySize": 512,
            "Timeout": 300,
            "ReservedConcurrentExecutions": 1,
            "TracingConfig": {"Mode": "Active"},
            "Environment": {
                "Variables": Match.object_like(
                    {
                        "CLUSTER_NAME": "my-cluster",
                        "NAMESPACES": "default",
                        "SECRET_NAME": "regcred",
                        "REFRESH_THRESHOLD_MINUTES": "360",
                        "INCLUDE_OWN_REGISTRY": "true",
                        "POWERTOOLS_SERVICE_NAME": "ecr-token-refresher",
                        "POWERTOOLS_METRICS_NAMESPACE": "EcrTokenRefresher",
                    }
                )
            },
        },
    )
    template.has_resource_properties("AWS::Logs::LogGroup", {"RetentionInDays": 30})


def test_iam_is_least_privilege(default_stack: Synthesized) -> None:
    _, template = default_stack
    by_sid = {s.get("Sid"): s for s in policy_statements(template)}
    assert by_sid["EcrAuthorizationToken"]["Action"] == "ecr:GetAuthorizationToken"
    assert by_sid["EcrAuthorizationToken"]["Resource"] == "*"
    assert by_sid["EcrPull"]["Action"] == [
        "ecr:BatchGetImage",
        "ecr:GetDownloadUrlForLayer",
        "ecr:BatchCheckLayerAvailability",
    ]
    assert json.dumps(by_sid["EcrPull"]["Resource"]).endswith(':repository/*"]]}')
    assert by_sid["EksDescribeCluster"]["Action"] == "eks:DescribeCluster"
    assert ":cluster/my-cluster" in json.dumps(by_sid["EksDescribeCluster"]["Resource"])
    wildcard = [s for s in policy_statements(template) if s["Resource"] == "*"]
    assert sorted(json.dumps(s["Action"]) for s in wildcard) == sorted(
        [
            '"ecr:GetAuthorizationToken"',
            '["xray:PutTraceSegments", "xray:PutTelemetryRecords"]',
        ]
    )
    assert "AssumeRegistryRoles" not in by_sid
    template.resource_count_is("AWS::IAM::AccessKey", 0)
    template.resource_count_is("AWS::IAM::User", 0)


def test_iam_covers_configured_registries_roles_and_clusters(multi: Synthesized) -> None:
    _, template = multi
    by_sid = {s.get("Sid"): s for s in policy_statements(template)}
    pull = json.dumps(by_sid["EcrPull"]["Resource"])
    assert ":ecr:eu-west-1:210987654321:repository/*" in pull
    assert "333333333333" not in pull  # that registry is pulled with its own role's rights
    assert by_sid["AssumeRegistryRoles"] == {
        "Sid": "AssumeRegistryRoles",
        "Action": "sts:AssumeRole",
        "Effect": "Allow",
        "Resource": "arn:aws:iam::333333333333:role/puller",
    }
    clusters = json.dumps(by_sid["EksDescribeCluster"]["Resource"])
    assert ":cluster/blue" in clusters
    assert ":cluster/green" in clusters


def test_schedule_retries_and_dead_letters(default_stack: Synthesized) -> None:
    _, template = default_stack
    template.has_resource_properties(
        "AWS::Events::Rule",
        {
            "ScheduleExpression": "rate(30 minutes)",
            "State": "ENABLED",
            "Targets": [
                Match.object_like(
                    {
                        "RetryPolicy": {"MaximumRetryAttempts": 2, "MaximumEventAgeInSeconds": 3600},
                        "DeadLetterConfig": {"Arn": Match.any_value()},
                    }
                )
            ],
        },
    )
    template.has_resource_properties(
        "AWS::Lambda::EventInvokeConfig",
        {
            "MaximumRetryAttempts": 2,
            "MaximumEventAgeInSeconds": 3600,
            "DestinationConfig": {"OnFailure": {"Destination": Match.any_value()}},
        },
    )
    template.has_resource_properties("AWS::SQS::Queue", {"SqsManagedSseEnabled": True})
    template.has_resource_properties("Custom::Trigger", {"InvocationType": "Event"})


def test_one_rule_per_cluster_whose_input_names_it(multi: Synthesized) -> None:
    _, template = multi
    rules = template.find_resources("AWS::Events::Rule")
    inputs = sorted(json.loads(rule["Properties"]["Targets"][0]["Input"])["cluster_name"] for rule in rules.values())
    assert inputs == ["blue", "green"]
    template.has_resource_properties("AWS::Lambda::Function", {"ReservedConcurrentExecutions": 2})


def test_access_entry_maps_the_role_to_the_group(default_stack: Synthesized) -> None:
    _, template = default_stack
    template.has_resource_properties(
        "AWS::EKS::AccessEntry",
        {
            "ClusterName": "my-cluster",
            "Type": "STANDARD",
            "KubernetesGroups": ["ecr-token-refresher"],
            "PrincipalArn": {"Fn::GetAtt": [Match.string_like_regexp("^RefresherRole"), "Arn"]},
            "AccessPolicies": Match.absent(),
        },
    )


def test_alarms_notify_the_topic(multi: Synthesized) -> None:
    _, template = multi
    alarms = {name: alarm["Properties"] for name, alarm in template.find_resources("AWS::CloudWatch::Alarm").items()}
    assert len(alarms) == 3
    topic = next(iter(template.find_resources("AWS::SNS::Topic")))
    for alarm in alarms.values():
        assert alarm["AlarmActions"] == [{"Ref": topic}]
        assert (alarm["Threshold"], alarm["EvaluationPeriods"]) == (1, 1)
        assert alarm["ComparisonOperator"] == "GreaterThanOrEqualToThreshold"
    errors = next(a for name, a in alarms.items() if "FunctionErrors" in name)
    assert (errors["Namespace"], errors["MetricName"], errors["Statistic"]) == ("AWS/Lambda", "Errors", "Sum")
    failed = next(a for name, a in alarms.items() if "FailedNamespaces" in name)
    metrics = {metric["Id"]: metric for metric in failed["Metrics"]}
    assert metrics["expr_1"]["Expression"] == "m0+m1"
    assert [metrics[m]["MetricStat"]["Metric"]["MetricName"] for m in ("m0", "m1")] == ["NamespacesFailed"] * 2
    assert [metrics[m]["MetricStat"]["Metric"]["Dimensions"][0]["Value"] for m in ("m0", "m1")] == ["blue", "green"]
    dead_letters = next(a for name, a in alarms.items() if "DeadLetters" in name)
    assert dead_letters["MetricName"] == "ApproximateNumberOfMessagesVisible"
    template.has_resource_properties("AWS::SNS::Subscription", {"Protocol": "email", "Endpoint": "ops@example.com"})
    template.has_resource_properties("AWS::SNS::Topic", {"KmsMasterKeyId": Match.any_value()})
    template.resource_count_is("AWS::CloudWatch::Dashboard", 1)


def test_private_endpoint_clusters_put_the_function_in_the_vpc(multi: Synthesized) -> None:
    _, template = multi
    template.has_resource_properties(
        "AWS::Lambda::Function",
        {"VpcConfig": {"SubnetIds": ["subnet-0123456789abcdef0"], "SecurityGroupIds": ["sg-0123456789abcdef0"]}},
    )


@pytest.mark.parametrize("synthesized", ["default_stack", "multi"])
def test_cdk_nag_finds_nothing_unacknowledged(synthesized: str, request: pytest.FixtureRequest) -> None:
    stack, _ = request.getfixturevalue(synthesized)
    annotations = Annotations.from_stack(stack)
    assert annotations.find_error("*", Match.string_like_regexp("AwsSolutions")) == []
    assert [w.entry.data for w in annotations.find_warning("*", Match.any_value())] == []
