"""The synthesized stack, property by property: functions, schedules, first runs, access entries, the
alarm topic's key, alarms and the dashboard."""

from __future__ import annotations

import json
from typing import Any

import pytest
from aws_cdk.assertions import Annotations, Match, Template

from tests.infra.conftest import Synthesized, synth


def resources(template: Template, kind: str) -> dict[str, dict[str, Any]]:
    return {name: resource["Properties"] for name, resource in template.find_resources(kind).items()}


def test_function_runtime_architecture_handler_limits_and_logging(default_stack: Synthesized) -> None:
    _, template = default_stack
    template.has_resource_properties(
        "AWS::Lambda::Function",
        {
            "Runtime": "python3.13",
            "Architectures": ["arm64"],
            "Handler": "lambda_fn.handler.lambda_handler",
            "MemorySize": 512,
            "Timeout": 300,
            "ReservedConcurrentExecutions": Match.absent(),
            "TracingConfig": {"Mode": "Active"},
            "LoggingConfig": {
                "LogFormat": "JSON",
                "ApplicationLogLevel": "INFO",
                "SystemLogLevel": "WARN",
                "LogGroup": {"Ref": Match.string_like_regexp("^ClustermyclusterRefresherLogs")},
            },
            "Environment": {
                "Variables": {
                    "CLUSTER_NAME": "my-cluster",
                    "POWERTOOLS_SERVICE_NAME": "EcrTokenRefresher",  # the stack: its metrics series
                    "POWERTOOLS_METRICS_NAMESPACE": "EcrTokenRefresher",
                }
            },
        },
    )
    template.has_resource_properties("AWS::Logs::LogGroup", {"RetentionInDays": 30})


def test_context_settings_reach_the_function_environment_and_options_its_shape() -> None:
    _, template = synth(
        namespaces="team-*",
        adoptExisting=False,
        architecture="x86_64",
        reservedConcurrency=1,
        logRetentionDays=400,
    )
    template.has_resource_properties(
        "AWS::Lambda::Function",
        {
            "Architectures": ["x86_64"],
            "ReservedConcurrentExecutions": 1,
            "Environment": {
                "Variables": Match.object_like({"NAMESPACES": "team-*", "ADOPT_EXISTING": "false"}),
            },
        },
    )
    template.has_resource_properties("AWS::Logs::LogGroup", {"RetentionInDays": 400})


def test_the_schedule_is_the_retry_and_overlapping_runs_never_pile_up(default_stack: Synthesized) -> None:
    _, template = default_stack
    template.has_resource_properties(
        "AWS::Events::Rule",
        {
            "ScheduleExpression": "rate(1 minute)",
            "State": "ENABLED",
            "Targets": [
                Match.object_like(
                    {
                        "Input": Match.absent(),
                        "RetryPolicy": {"MaximumRetryAttempts": 2, "MaximumEventAgeInSeconds": 120},
                        "DeadLetterConfig": {"Arn": Match.any_value()},
                    }
                )
            ],
        },
    )
    # No retry of a failed run, no queue older than two periods, no dead letter for a run that merely overlaps.
    template.has_resource_properties(
        "AWS::Lambda::EventInvokeConfig",
        {
            "MaximumRetryAttempts": 0,
            "MaximumEventAgeInSeconds": 120,
            "Qualifier": "$LATEST",
            "DestinationConfig": Match.absent(),
        },
    )
    template.has_resource_properties("AWS::SQS::Queue", {"SqsManagedSseEnabled": True})


def test_the_first_run_invokes_latest_once_per_cluster_after_its_access_entry(multi: Synthesized) -> None:
    _, template = multi
    runs = template.find_resources("Custom::AWS")
    assert len(runs) == 2
    for name, run in runs.items():
        cluster = "blue" if name.startswith("Clusterblue") else "green"
        before, function, after = run["Properties"]["Create"]["Fn::Join"][1]
        call = json.loads(before + "FUNCTION" + after)
        assert (call["service"], call["action"]) == ("Lambda", "invoke")
        # Unqualified: $LATEST, whose async settings (no retry, short max age) are the schedule's.
        assert call["parameters"] == {"FunctionName": "FUNCTION", "InvocationType": "Event", "Payload": "{}"}
        # IAM propagation of the fresh invoke grant never rolls the deploy back (the schedule runs next).
        assert call["ignoreErrorCodesMatching"] == "AccessDeniedException"
        assert function["Ref"].startswith(f"Cluster{cluster}RefresherFunction")
        assert run["Properties"]["Update"] == run["Properties"]["Create"]  # runs again when the code changes
        assert any(dependency.startswith(f"Cluster{cluster}AccessEntry") for dependency in run["DependsOn"])


def test_no_first_run_when_turned_off() -> None:
    _, template = synth(runOnDeploy=False)
    template.resource_count_is("Custom::AWS", 0)


def test_each_cluster_gets_its_own_function_role_access_entry_and_alarms(multi: Synthesized) -> None:
    _, template = multi
    functions = resources(template, "AWS::Lambda::Function")
    clusters = sorted(
        f["Environment"]["Variables"]["CLUSTER_NAME"] for f in functions.values() if "CLUSTER_NAME" in json.dumps(f)
    )
    assert clusters == ["blue", "green"]
    entries = resources(template, "AWS::EKS::AccessEntry")
    assert sorted(e["ClusterName"] for e in entries.values()) == ["blue", "green"]
    for name, entry in entries.items():
        cluster = entry["ClusterName"]
        assert name.startswith(f"Cluster{cluster}AccessEntry")
        assert entry["PrincipalArn"]["Fn::GetAtt"][0].startswith(f"Cluster{cluster}RefresherAccessRole")
        assert (entry["Type"], entry["KubernetesGroups"], entry.get("AccessPolicies")) == (
            "STANDARD",
            ["ecr-token-refresher"],
            None,
        )


def test_the_outputs_keep_the_keys_the_readme_queries(multi: Synthesized) -> None:
    """`OutputKey=='ClusterprodFunctionName'` (docs/deploy.md: Verify) finds the function: no hash in the key."""
    _, template = multi
    outputs = template.to_json()["Outputs"]
    assert sorted(outputs) == [
        "AlarmTopic",
        "ClusterblueFunctionName",
        "ClusterblueRoleArn",
        "ClustergreenFunctionName",
        "ClustergreenRoleArn",
        "KubernetesGroup",
    ]
    functions = resources(template, "AWS::Lambda::Function")
    assert outputs["ClusterblueFunctionName"]["Value"]["Ref"] in functions


def test_removing_a_cluster_from_the_list_leaves_the_others_logical_ids_alone() -> None:
    _, three = synth(clusters=["alpha", "beta", "gamma"])
    _, two = synth(clusters=["beta", "gamma"])
    before, after = set(three.to_json()["Resources"]), set(two.to_json()["Resources"])
    removed, added = before - after, after - before
    assert added == set()
    assert removed
    assert all("alpha" in name for name in removed), removed
    entries = {name: p["ClusterName"] for name, p in resources(two, "AWS::EKS::AccessEntry").items()}
    assert entries == {
        name: p["ClusterName"]
        for name, p in resources(three, "AWS::EKS::AccessEntry").items()
        if p["ClusterName"] != "alpha"
    }


def test_an_access_entry_managed_elsewhere_is_not_created() -> None:
    _, template = synth(clusters=["alpha", "beta"], existingAccessEntries=["alpha"])
    assert [p["ClusterName"] for p in resources(template, "AWS::EKS::AccessEntry").values()] == ["beta"]


def test_the_alarm_topic_key_lets_cloudwatch_publish_and_rotates(default_stack: Synthesized) -> None:
    _, template = default_stack
    keys = resources(template, "AWS::KMS::Key")
    assert len(keys) == 1
    key = next(iter(keys.values()))
    assert key["EnableKeyRotation"] is True
    cloudwatch = [
        s for s in key["KeyPolicy"]["Statement"] if s.get("Principal") == {"Service": "cloudwatch.amazonaws.com"}
    ]
    assert cloudwatch == [
        {
            "Sid": "CloudWatchAlarmsPublish",
            "Effect": "Allow",
            "Principal": {"Service": "cloudwatch.amazonaws.com"},
            "Action": ["kms:Decrypt", "kms:GenerateDataKey*"],
            "Resource": "*",
        }
    ]
    topic = next(iter(resources(template, "AWS::SNS::Topic").values()))
    assert topic["KmsMasterKeyId"] == {"Fn::GetAtt": [next(iter(keys)), "Arn"]}


def test_the_alarm_topic_policy_lets_cloudwatch_publish_over_tls_only(default_stack: Synthesized) -> None:
    """enforce_ssl's topic policy replaces SNS's default one: it must allow CloudWatch itself."""
    _, template = default_stack
    topic_id = next(iter(template.find_resources("AWS::SNS::Topic")))
    policies = list(resources(template, "AWS::SNS::TopicPolicy").values())
    assert len(policies) == 1
    assert policies[0]["Topics"] == [{"Ref": topic_id}]
    statements = policies[0]["PolicyDocument"]["Statement"]
    allow = [s for s in statements if s["Effect"] == "Allow"]
    assert allow == [
        {
            "Sid": "CloudWatchAlarmsPublish",
            "Effect": "Allow",
            "Principal": {"Service": "cloudwatch.amazonaws.com"},
            "Action": "sns:Publish",
            "Resource": {"Ref": topic_id},
            "Condition": {
                "StringEquals": {"aws:SourceAccount": {"Ref": "AWS::AccountId"}},
                "ArnLike": {
                    "aws:SourceArn": {
                        "Fn::Join": [
                            "",
                            [
                                "arn:",
                                {"Ref": "AWS::Partition"},
                                ":cloudwatch:",
                                {"Ref": "AWS::Region"},
                                ":",
                                {"Ref": "AWS::AccountId"},
                                ":alarm:*",
                            ],
                        ]
                    }
                },
            },
        }
    ]
    deny = [s for s in statements if s["Effect"] == "Deny"]
    assert [s["Condition"] for s in deny] == [{"Bool": {"aws:SecureTransport": "false"}}]


def test_a_topic_of_your_own_is_used_as_it_is() -> None:
    arn = "arn:aws:sns:eu-west-1:111122223333:ops"
    _, template = synth(alarmTopicArn=arn)
    template.resource_count_is("AWS::SNS::Topic", 0)
    template.resource_count_is("AWS::KMS::Key", 0)
    for alarm in resources(template, "AWS::CloudWatch::Alarm").values():
        assert alarm["AlarmActions"] == [arn]


def test_alarms_per_cluster_and_the_expiry_watchdog(multi: Synthesized) -> None:
    _, template = multi
    alarms = resources(template, "AWS::CloudWatch::Alarm")
    topic = next(iter(template.find_resources("AWS::SNS::Topic")))
    assert all(alarm["AlarmActions"] == [{"Ref": topic}] for alarm in alarms.values())
    kinds = sorted(name.removeprefix("Monitoring").rstrip("0123456789ABCDEF") for name in alarms)
    assert kinds == sorted(
        ["DeadLetters"]
        + [
            f"{kind}{c}"
            for c in ("blue", "green")
            for kind in ("Expiry", "FailedNamespaces", "ForeignSecrets", "FunctionErrors")
        ]
    )
    watchdog = next(alarm for name, alarm in alarms.items() if name.startswith("MonitoringExpiryblue"))
    assert {key: watchdog[key] for key in ("MetricName", "Statistic", "Threshold", "ComparisonOperator")} == {
        "MetricName": "SecondsUntilFirstExpiry",
        "Statistic": "Minimum",
        "Threshold": 7200,
        "ComparisonOperator": "LessThanThreshold",
    }
    assert (watchdog["EvaluationPeriods"], watchdog["DatapointsToAlarm"], watchdog["TreatMissingData"]) == (
        3,
        3,
        "breaching",
    )
    assert watchdog["Period"] == 300
    assert {d["Name"]: d["Value"] for d in watchdog["Dimensions"]} == {
        "cluster": "blue",
        "service": "EcrTokenRefresher",
    }
    failed = next(alarm for name, alarm in alarms.items() if name.startswith("MonitoringFailedNamespacesgreen"))
    assert (failed["MetricName"], failed["Threshold"], failed["TreatMissingData"]) == (
        "NamespacesFailed",
        1,
        "notBreaching",
    )
    foreign = next(alarm for name, alarm in alarms.items() if name.startswith("MonitoringForeignSecretsgreen"))
    assert foreign["MetricName"] == "ForeignSecrets"
    template.has_resource_properties("AWS::SNS::Subscription", {"Protocol": "email", "Endpoint": "ops@example.com"})


def test_the_expiry_threshold_is_configurable() -> None:
    _, template = synth(expiryAlarmMinutes=240)
    template.has_resource_properties(
        "AWS::CloudWatch::Alarm", {"MetricName": "SecondsUntilFirstExpiry", "Threshold": 14400}
    )


def test_the_dashboard_is_named_by_stack_and_region(default_stack: Synthesized) -> None:
    _, template = default_stack
    template.has_resource_properties(
        "AWS::CloudWatch::Dashboard", {"DashboardName": {"Fn::Join": ["", ["Test-", {"Ref": "AWS::Region"}]]}}
    )
    body = json.dumps(template.find_resources("AWS::CloudWatch::Dashboard"))
    assert "SecondsUntilFirstExpiry" in body


def test_private_endpoint_clusters_put_the_function_in_the_vpc(multi: Synthesized) -> None:
    _, template = multi
    template.has_resource_properties(
        "AWS::Lambda::Function",
        {"VpcConfig": {"SubnetIds": ["subnet-0123456789abcdef0"], "SecurityGroupIds": ["sg-0123456789abcdef0"]}},
    )


def test_a_cluster_outside_eks_gets_its_own_function_schedule_alarms_and_vpc_mode() -> None:
    secret = "arn:aws:secretsmanager:eu-west-1:111122223333:secret:onprem-kubeconfig-AbCdEf"
    _, template = synth(
        clusters=["prod", {"name": "onprem", "kubeconfigSecretArn": secret}],
        namespaces=["team-*"],
        vpcSubnetIds=["subnet-0123456789abcdef0"],
        vpcSecurityGroupIds=["sg-0123456789abcdef0"],
    )
    functions = {
        name: f for name, f in resources(template, "AWS::Lambda::Function").items() if name.startswith("Cluster")
    }
    onprem = next(f for name, f in functions.items() if name.startswith("ClusteronpremRefresher"))
    assert onprem["Environment"]["Variables"]["KUBECONFIG_SECRET"] == secret
    assert onprem["VpcConfig"] == {
        "SubnetIds": ["subnet-0123456789abcdef0"],
        "SecurityGroupIds": ["sg-0123456789abcdef0"],
    }
    rules = resources(template, "AWS::Events::Rule")
    assert sorted(rule["Description"] for rule in rules.values()) == [
        "ecr-token-refresher for cluster onprem",
        "ecr-token-refresher for cluster prod",
    ]
    alarms = [name.removeprefix("Monitoring") for name in resources(template, "AWS::CloudWatch::Alarm")]
    for kind in ("Expiry", "FailedNamespaces", "ForeignSecrets", "FunctionErrors"):
        assert any(name.startswith(f"{kind}onprem") for name in alarms), kind
    assert [e["ClusterName"] for e in resources(template, "AWS::EKS::AccessEntry").values()] == ["prod"]


def test_without_an_alarm_destination_synth_warns(default_stack: Synthesized) -> None:
    stack, _ = default_stack
    warnings = [w.entry.data for w in Annotations.from_stack(stack).find_warning("*", Match.any_value())]
    assert any("No alarm destination: set alarmEmail or alarmTopicArn" in str(w) for w in warnings)


@pytest.mark.parametrize("synthesized", ["default_stack", "multi"])
def test_cdk_nag_finds_nothing_unacknowledged(synthesized: str, request: pytest.FixtureRequest) -> None:
    stack, _ = request.getfixturevalue(synthesized)
    annotations = Annotations.from_stack(stack)
    assert annotations.find_error("*", Match.string_like_regexp("AwsSolutions")) == []
    warnings = [str(w.entry.data) for w in annotations.find_warning("*", Match.any_value())]
    assert [w for w in warnings if "No alarm destination" not in w] == []


@pytest.mark.parametrize("synthesized", ["default_stack", "multi"])
def test_every_arn_the_stack_builds_names_the_partition(synthesized: str, request: pytest.FixtureRequest) -> None:
    """aws-cn and aws-us-gov: no ARN is spelled with a literal partition, except those the context gives."""
    _, template = request.getfixturevalue(synthesized)
    text = json.dumps(template.to_json())
    given = ["arn:aws:iam::333333333333:role/puller"]
    for literal in given:
        text = text.replace(literal, "")
    assert "arn:aws:" not in text
    assert '"Ref": "AWS::Partition"' in text


def test_two_stacks_on_one_cluster_never_share_a_metric_series() -> None:
    """Each stack's functions publish, and its alarms watch, the series of its own `service` dimension."""
    for stack_name in ("EcrTokenRefresher", "Other"):
        _, template = synth(stackName=stack_name)
        template.has_resource_properties(
            "AWS::Lambda::Function",
            {"Environment": {"Variables": Match.object_like({"POWERTOOLS_SERVICE_NAME": stack_name})}},
        )
        alarms = template.find_resources("AWS::CloudWatch::Alarm")
        custom = [a["Properties"] for a in alarms.values() if a["Properties"].get("Namespace") == "EcrTokenRefresher"]
        assert custom
        for alarm in custom:
            assert {"Name": "service", "Value": stack_name} in alarm["Dimensions"]


def test_a_schedule_over_three_hours_keeps_the_event_age_within_six_hours() -> None:
    """scheduleMinutes 181 to 360 used to crash synth (two periods exceed the 21,600 s Lambda accepts)."""
    _, template = synth(scheduleMinutes=240, expiryAlarmMinutes=60)
    template.has_resource_properties(
        "AWS::Lambda::EventInvokeConfig", {"MaximumEventAgeInSeconds": 21600, "MaximumRetryAttempts": 0}
    )
    template.has_resource_properties(
        "AWS::Events::Rule",
        {"Targets": [Match.object_like({"RetryPolicy": Match.object_like({"MaximumEventAgeInSeconds": 21600})})]},
    )


def test_the_dead_letter_alarm_counts_new_failures_so_one_never_holds_it_for_two_weeks() -> None:
    """ApproximateNumberOfMessagesVisible stays up for the queue's 14-day retention after one failed
    delivery, hiding later ones; messages sent in the period alarm on each new failure and clear after."""
    _, template = synth()
    (alarm,) = [a for a in resources(template, "AWS::CloudWatch::Alarm").values() if a.get("Namespace") == "AWS/SQS"]
    assert (alarm["MetricName"], alarm["Statistic"], alarm["Threshold"]) == ("NumberOfMessagesSent", "Sum", 1)
