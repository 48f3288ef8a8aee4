"""Clusters in other accounts and regions: one stack per environment, named and pinned to it, each with
only its clusters; names, outputs and manifests unique per environment; what cannot span environments
refused at synth."""

from __future__ import annotations

import json

import aws_cdk as cdk
import pytest
from aws_cdk.assertions import Template
from cdk_nag import AwsSolutionsChecks

from infra.bundling import BundledCode
from infra.config import Environment
from infra.rbac import main as rbac_main
from infra.rbac import manifest_files, to_yaml
from infra.stack import EcrTokenRefresherStack, environment_stacks
from lambda_fn.errors import ConfigError
from tests.infra.conftest import NO_BUNDLING, config_for

CLUSTERS = [
    "local",  # the deploy's own account and region
    {"name": "prod", "account": "111111111111", "region": "eu-west-1"},
    {"name": "prod", "account": "222222222222", "region": "eu-west-1"},
    {"name": "batch", "account": "222222222222", "region": "us-east-1"},
    {"name": "prod-us", "account": "222222222222", "region": "us-east-1"},
]


def stacks(**context: object) -> list[EcrTokenRefresherStack]:
    app = cdk.App(context=NO_BUNDLING)

    def code() -> BundledCode:  # a Code may serve one stack only
        return BundledCode(cdk.aws_lambda.Code.from_asset("lambda_fn"), "0123456789abcdef" * 4)

    found = list(environment_stacks(app, config_for(**context), code))
    cdk.Validations.of(app).add_plugins(AwsSolutionsChecks(app))  # a pinned stack must pass cdk-nag too
    return found


def test_one_stack_per_environment_pinned_to_it_with_its_clusters_only() -> None:
    found = {stack.stack_name: stack for stack in stacks(clusters=CLUSTERS)}
    assert list(found) == [
        "EcrTokenRefresher",
        "EcrTokenRefresher-111111111111-eu-west-1",
        "EcrTokenRefresher-222222222222-eu-west-1",
        "EcrTokenRefresher-222222222222-us-east-1",
    ]
    assert cdk.Token.is_unresolved(found["EcrTokenRefresher"].account)  # env-agnostic: the deploy's
    pinned = found["EcrTokenRefresher-222222222222-us-east-1"]
    assert (pinned.account, pinned.region) == ("222222222222", "us-east-1")
    template = Template.from_stack(pinned)
    outputs = set(template.to_json()["Outputs"])
    assert {"ClusterbatchFunctionName", "ClusterprodusFunctionName"} <= outputs
    assert not any(key.startswith(("Clusterlocal", "Clusterprod" + "FunctionName")) for key in outputs)
    template.resource_count_is("AWS::EKS::AccessEntry", 2)
    functions = template.find_resources("AWS::Lambda::Function")
    variables = [
        f["Properties"]["Environment"]["Variables"] for f in functions.values() if "Environment" in f["Properties"]
    ]
    assert sorted(v["CLUSTER_NAME"] for v in variables if "CLUSTER_NAME" in v) == ["batch", "prod-us"]
    # The Kubernetes names stay the deployment's (a cluster is in one environment); the metrics' service is
    # the stack's, so two stacks in one account and region never share a series.
    assert {v["RUN_LEASE"] for v in variables if "RUN_LEASE" in v} == {"ecr-token-refresher"}
    assert {v["POWERTOOLS_SERVICE_NAME"] for v in variables if "RUN_LEASE" in v} == {pinned.stack_name}
    dashboards = template.find_resources("AWS::CloudWatch::Dashboard")
    assert [d["Properties"]["DashboardName"] for d in dashboards.values()] == [pinned.stack_name]


def test_removing_an_environment_leaves_the_others_stacks_as_they_were() -> None:
    before = {s.stack_name: Template.from_stack(s).to_json() for s in stacks(clusters=CLUSTERS)}
    after = {s.stack_name: Template.from_stack(s).to_json() for s in stacks(clusters=CLUSTERS[:3])}
    assert set(before) - set(after) == {"EcrTokenRefresher-222222222222-us-east-1"}
    assert all(after[name] == before[name] for name in after)


def test_each_environment_gets_its_manifests_with_its_own_registry() -> None:
    config, deploys = config_for(clusters=CLUSTERS), "999999999999.dkr.ecr.us-east-1.amazonaws.com"
    files = manifest_files(config, own_registry=deploys)
    assert sorted(files) == [
        "rbac.111111111111-eu-west-1.yaml",
        "rbac.222222222222-eu-west-1.yaml",
        "rbac.222222222222-us-east-1.yaml",
        "rbac.yaml",
    ]
    own = {
        "rbac.yaml": (config.clusters[0], deploys),
        "rbac.222222222222-us-east-1.yaml": (config.clusters[3], "222222222222.dkr.ecr.us-east-1.amazonaws.com"),
    }
    for name, (cluster, registry) in own.items():  # the policy lets each adopt its own registry's recipe
        assert files[name] == to_yaml(config, cluster, own_registry=registry)


def problems(**context: object) -> str:
    try:
        config_for(**context)
    except ConfigError as exc:
        return str(exc)
    return ""


def test_what_cannot_span_environments_is_refused_naming_the_fix() -> None:
    assert "'111111111111/eu-west-1/prod' is listed twice" in problems(clusters=[CLUSTERS[1], CLUSTERS[1]])
    assert problems(clusters=CLUSTERS) == ""  # one name in two accounts is two clusters
    assert "give account and region together" in problems(clusters=[{"name": "a", "account": "111111111111"}])
    assert "is not a 12-digit AWS account ID" in problems(
        clusters=[{"name": "a", "account": "1", "region": "eu-west-1"}]
    )
    assert "is not an AWS region" in problems(clusters=[{"name": "a", "account": "111111111111", "region": "europe"}])
    secret = "arn:aws:secretsmanager:eu-west-1:333333333333:secret:onprem-AbCdEf"
    assert "keep the secret beside the function" in problems(
        clusters=[{"name": "onprem", "kubeconfigSecretArn": secret, "account": "111111111111", "region": "eu-west-1"}]
    )
    assert "vpcSubnetIds: subnets belong to one account and region" in problems(
        clusters=CLUSTERS, vpcSubnetIds="subnet-0123456789abcdef0", vpcSecurityGroupIds="sg-0123456789abcdef0"
    )
    topic = "arn:aws:sns:eu-west-1:111111111111:alarms"
    assert "the alarms of the stack in 222222222222/eu-west-1" not in problems(clusters=CLUSTERS, alarmTopicArn=topic)
    assert "the topic is in eu-west-1; the alarms of the stack in 222222222222/us-east-1 publish" in problems(
        clusters=CLUSTERS, alarmTopicArn=topic
    )
    assert "would be longer than the 128 characters CloudFormation accepts" in problems(
        clusters=CLUSTERS, stackName="S" + "s" * 110
    )
    assert config_for(clusters=CLUSTERS[1:2]).clusters[0].environment == Environment("111111111111", "eu-west-1")


def test_make_rbac_picks_a_cluster_by_its_environment_where_a_name_repeats(capsys: pytest.CaptureFixture[str]) -> None:
    context = [f"clusters={json.dumps(CLUSTERS)}", "namespaces=team-*"]
    assert rbac_main(["--cluster", "prod", *context]) == 2
    assert "names clusters in several environments: give one of local, 111111111111/eu-west-1/prod" in (
        capsys.readouterr().err
    )
    assert rbac_main(["--cluster", "222222222222/eu-west-1/prod", *context]) == 0
    printed = capsys.readouterr()
    assert printed.out.startswith("# ecr-token-refresher for cluster prod")
    assert "own registry is unknown" not in printed.err  # a pinned environment's own registry is known
    assert rbac_main(["--cluster", "batch", *context]) == 0  # unique: the name is enough
