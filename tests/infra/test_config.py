"""Deployment configuration: validated at synth, each problem named by its context key, no silent
defaults, no typo passing unnoticed."""

from __future__ import annotations

import hashlib
import json

import pytest

from infra.config import DEFAULT_STACK_NAME, SERVICE_ACCOUNTS_SUFFIX, Cluster, DeploymentConfig, kubernetes_name
from lambda_fn.errors import ConfigError
from tests.infra.conftest import DEFAULTS, config_for

SECRET_ARN = "arn:aws:secretsmanager:eu-west-1:111122223333:secret:onprem-kubeconfig-AbCdEf"


def problems(**context: object) -> str:
    with pytest.raises(ConfigError) as caught:
        config_for(**context)
    return str(caught.value)


def test_defaults_are_valid() -> None:
    config = config_for()
    assert config.clusters == (Cluster("my-cluster"),)
    assert config.schedule_minutes == 1
    assert config.lists_namespaces is False
    assert config.reserved_concurrency is None
    assert (config.stack_name, config.kubernetes_group) == (DEFAULT_STACK_NAME, "ecr-token-refresher")


def test_a_synth_without_a_cluster_fails_naming_the_key() -> None:
    """cdk.json ships no cluster: a deploy never lands on an example name by accident."""
    context = {key: value for key, value in DEFAULTS.items() if key != "clusterName"}
    with pytest.raises(ConfigError, match="clusterName: required: pass -c clusterName="):
        DeploymentConfig.from_context(context)


@pytest.mark.parametrize(
    ("typo", "suggestion"),
    [("namespace", "namespaces"), ("clustername", "clusterName"), ("alarmEmial", "alarmEmail"), ("zzz", None)],
)
def test_an_unknown_context_key_fails_naming_the_closest_known_one(typo: str, suggestion: str | None) -> None:
    message = problems(**{typo: "x"})
    expected = f"did you mean {suggestion}?" if suggestion else "see the table in docs/configuration.md"
    assert f"{typo}: unknown context key; {expected}" in message


def test_the_cdks_own_context_keys_are_not_checked() -> None:
    config_for(**{"@aws-cdk/core:newStyleStackSynthesis": True, "aws:cdk:bundling-stacks": [], "cdk-nag": 1})


@pytest.mark.parametrize(
    ("context", "expected"),
    [
        ({"namespaces": ["Team_A"]}, "namespaces: 'Team_A' is not a namespace name"),
        ({"namespaceSelector": "a in (b"}, "namespaceSelector: 'a in (b' is not a label selector"),
        ({"registries": ["docker.io"]}, "registries: 'docker.io' is not an ECR registry host"),
        ({"secretName": "Bad Name"}, "secretName: 'Bad Name' is not a valid Kubernetes name"),
        ({"refreshThresholdMinutes": "x"}, "refreshThresholdMinutes: 'x' is not a whole number from 0 to 690"),
        (
            {"includeOwnRegistry": False},
            "registries: no registry to serve: list hosts, or set includeOwnRegistry to true",
        ),
        ({"scheduleMinutes": 360}, "scheduleMinutes: a run every 360 min with refreshThresholdMinutes=360"),
        ({"scheduleMinutes": 0}, "scheduleMinutes: '0' is not a whole number from 1 to 360"),
        ({"refreshThresholdMinutes": 30}, "scheduleMinutes: a run every 1 min with refreshThresholdMinutes=30"),
        (
            {"refreshThresholdMinutes": 60},
            "expiryAlarmMinutes: 120 would alarm in a healthy steady state: secrets are renewed when "
            "refreshThresholdMinutes=60 remain",
        ),
        ({"refreshThresholdMinutes": 150, "expiryAlarmMinutes": 120}, "(here 119) or raise refreshThresholdMinutes"),
        (  # the security model's names-only mode, 250 namespaces: CreateFunction would refuse it
            {"namespaces": [f"team-{index:03d}-production" for index in range(250)]},
            "namespaces: the function's environment for cluster 'my-cluster' would be",
        ),
        ({"clusters": ["ok", "not ok"]}, "clusters: 'not ok' is not a valid cluster name"),
        ({"clusters": ["a", "a"]}, "clusters: 'a' is listed twice"),
        ({"clusters": [{"name": "x", "kubeconfigSecretArn": "nope"}]}, "kubeconfigSecretArn 'nope' is not a Secrets"),
        ({"clusters": [{"name": "x", "kmsKeyArn": "arn"}]}, "kmsKeyArn 'arn' must be a KMS key ARN, beside a"),
        ({"clusters": [{"name": "x", "zone": "y"}]}, "each entry is a cluster name or {name[, account, region]"),
        ({"existingAccessEntries": ["ghost"]}, "existingAccessEntries: 'ghost' is not one of the EKS clusters"),
        ({"vpcSubnetIds": ["subnet-0123456789abcdef0"]}, "vpcSubnetIds: set vpcSubnetIds and vpcSecurityGroupIds"),
        ({"vpcSecurityGroupIds": ["sg-x"], "vpcSubnetIds": ["subnet-x"]}, "is not an id like"),
        ({"alarmEmail": "nobody"}, "alarmEmail: 'nobody' is not an e-mail address"),
        (
            {"alarmEmail": "ops@example.com", "alarmTopicArn": "arn:aws:sns:eu-west-1:111122223333:ops"},
            "alarmEmail: give alarmEmail (a new topic with this subscription) or alarmTopicArn (your topic), not both",
        ),
        (
            {"kubernetesGroup": "system:masters"},
            "kubernetesGroup: 'system:masters' starts with system:, which Kubernetes reserves; use e.g. ecr-token",
        ),
        ({"kubernetesServiceAccount": "nope"}, "kubernetesServiceAccount: 'nope' is not <namespace>/<name>"),
        (  # a tenant's admins could impersonate it (impersonate is in the built-in edit and admin roles)
            {"kubernetesServiceAccount": "team-a/puller"},
            "kubernetesServiceAccount: 'team-a/puller' is outside kube-system: the admins of 'team-a' could",
        ),
        ({"runOnDeploy": "sometimes"}, "runOnDeploy: 'sometimes' is not a boolean; use true or false"),
        ({"logRetentionDays": 100}, "logRetentionDays: CloudWatch Logs keeps logs for one of 1, 3, 5"),
        ({"architecture": "ppc64"}, "architecture: 'ppc64' is not one of arm64, x86_64"),
        ({"reservedConcurrency": 0}, "reservedConcurrency: '0' is not a whole number from 1 to 1000"),
        ({"repositories": ["Team_A/"]}, "repositories: 'Team_A/': use [<registry host>/]<repository"),
        (
            {"repositories": ["210987654321.dkr.ecr.eu-west-1.amazonaws.com/base/"]},
            "210987654321.dkr.ecr.eu-west-1.amazonaws.com is not among the registries pulled with the function's",
        ),
        ({"stackName": "1bad"}, "stackName: '1bad' is not a CloudFormation stack name"),
        ({"memorySize": ["512"]}, "memorySize: ['512'] is a list; give one value"),
        ({"stackName": ["Prod"]}, "stackName: ['Prod'] is a list; give one value"),
    ],
)
def test_invalid_context_fails_synth_naming_the_key(context: dict[str, object], expected: str) -> None:
    assert expected in problems(**context)


def test_context_from_the_command_line_is_text() -> None:
    config = config_for(namespaces="team-*,default", scheduleMinutes="15", runOnDeploy="false", clusters="a,b")
    assert config.settings.namespaces == ("team-*", "default")
    assert config.schedule_minutes == 15
    assert config.run_on_deploy is False
    assert config.lists_namespaces is True
    assert [cluster.name for cluster in config.clusters] == ["a", "b"]


def test_cluster_names_that_would_share_output_keys_are_refused() -> None:
    assert "'prod-eu' and 'prod_eu' would share the stack's output keys Clusterprodeu...: rename one" in problems(
        clusters=["prod-eu", "prod_eu"]
    )


def test_json_from_the_command_line_is_read_as_json() -> None:
    """The CDK CLI passes `-c 'clusters=[{...}]'` as text: `clusters` that starts like JSON is JSON."""
    config = config_for(clusters=f'[{{"name": "onprem", "kubeconfigSecretArn": "{SECRET_ARN}"}}]')
    assert config.clusters == (Cluster("onprem", SECRET_ARN, manage_access_entry=False),)
    # JSON only where entries may be objects: a list of names is comma-separated on the command line.
    for key in ("namespaces", "alarmEmail"):
        assert f"{key}: a JSON list given as text: on the command line a list is comma-separated" in problems(
            **{key: '["a-*"]'}
        )
    for broken in ('[{"name": x}]', '{"name": "onprem"}'):
        assert "clusters: not a JSON list of cluster names or objects" in problems(clusters=broken)
    assert config_for(namespaces="[a-c]*,default").settings.namespaces == ("[a-c]*", "default")  # a glob, not JSON
    assert config_for(namespaces="[12]").settings.namespaces == ("[12]",)  # valid JSON, but a glob


def test_clusters_by_name_by_kubeconfig_and_with_entries_managed_elsewhere() -> None:
    config = config_for(
        clusters=["prod", {"name": "onprem", "kubeconfigSecretArn": SECRET_ARN}, "legacy"],
        existingAccessEntries="legacy",
    )
    assert config.clusters == (
        Cluster("prod"),
        Cluster("onprem", SECRET_ARN, manage_access_entry=False),
        Cluster("legacy", manage_access_entry=False),
    )
    assert config.environment(config.clusters[1])["KUBECONFIG_SECRET"] == SECRET_ARN
    assert "KUBECONFIG_SECRET" not in config.environment(config.clusters[0])


def test_repository_prefixes_per_registry() -> None:
    registry = "210987654321.dkr.ecr.eu-west-1.amazonaws.com"
    config = config_for(registries=[registry], repositories=["team-a/", f"{registry}/base/", f"{registry}/tools"])
    assert config.repositories == {"": ("team-a/",), registry: ("base/", "tools")}


@pytest.mark.parametrize(
    ("stack", "name"),
    [
        ("EcrTokenRefresher", "ecr-token-refresher"),
        ("Prod", "ecr-token-refresher-prod"),
        ("TeamA-Staging", f"ecr-token-refresher-team-a-staging-{hashlib.sha256(b'TeamA-Staging').hexdigest()[:6]}"),
    ],
)
def test_cluster_wide_kubernetes_names_come_from_the_stack_name(stack: str, name: str) -> None:
    assert kubernetes_name(stack) == name
    config = config_for(stackName=stack)
    assert (config.kubernetes_name, config.kubernetes_group) == (name, name)


def test_stack_names_that_would_share_a_kubernetes_name_never_do() -> None:
    """`TeamA` and `Team-A` both used to become ecr-token-refresher-team-a: one group, one ClusterRole and one
    policy for two stacks, the second apply overwriting the first. PascalCase names keep their names."""
    spellings = ["TeamA", "Team-A", "teamA", "team-a", "TEAMA"]
    names = [kubernetes_name(spelling) for spelling in spellings]
    assert len(set(names)) == len(spellings)
    assert names[0] == "ecr-token-refresher-team-a"
    assert kubernetes_name("EcrTokenRefresher") == "ecr-token-refresher"
    assert kubernetes_name("Staging") == "ecr-token-refresher-staging"
    assert all(len(kubernetes_name(name)) <= 63 for name in ["A" * 120, "a-" * 60 + "b"])


def test_no_stack_takes_another_stacks_service_account_policy_name() -> None:
    """Stack `Prod` names its service accounts' policy ecr-token-refresher-prod-serviceaccounts: a stack
    named `ProdServiceaccounts` (or `Serviceaccounts`, beside the default stack) must not be given it."""
    for stack, other in [("ProdServiceaccounts", "Prod"), ("Serviceaccounts", "EcrTokenRefresher")]:
        assert kubernetes_name(stack) != kubernetes_name(other) + SERVICE_ACCOUNTS_SUFFIX
        assert not kubernetes_name(stack).endswith(SERVICE_ACCOUNTS_SUFFIX)


TENANT_HOST = "222222222222.dkr.ecr.eu-west-1.amazonaws.com"
TENANT_ROLE = "arn:aws:iam::222222222222:role/team-a-pull"
TENANTS = [{"name": "team-a", "namespaces": ["team-a-*"], "registries": [f"{TENANT_HOST}={TENANT_ROLE}"]}]


def test_tenants_from_cdk_json_and_from_the_command_line_reach_the_function_alike() -> None:
    from_json = config_for(namespaces=["team-*"], tenants=TENANTS)
    from_text = config_for(namespaces="team-*", tenants=json.dumps(TENANTS))
    assert from_json.settings.tenants == from_text.settings.tenants
    assert from_json.settings.tenants[0].hosts == {TENANT_HOST}
    environment = from_json.environment(from_json.clusters[0])
    assert json.loads(environment["TENANTS"]) == TENANTS
    assert [spec.host for spec in from_json.registries][-1] == TENANT_HOST  # the role assumes it too


def test_a_bad_tenant_fails_synth_naming_the_key_and_the_tenant() -> None:
    found = problems(namespaces="team-a", tenants=[{"name": "team-a", "namespaceSelector": "t=a", "registries": []}])
    assert "tenants: tenant 'team-a': registries is a non-empty list of <host>[=<role arn>]" in found
    found = problems(namespaces="team-a", tenants=[{**TENANTS[0], "namespaceSelector": "t=a"}])
    assert "tenants: tenant 'team-a': a namespaceSelector needs targets found by globs or a selector" in found
    found = problems(namespaces="team-*", tenants=[{**TENANTS[0], "registries": [TENANT_HOST]}])
    assert f"tenants: tenant 'team-a': {TENANT_HOST} needs a role of its own" in found
