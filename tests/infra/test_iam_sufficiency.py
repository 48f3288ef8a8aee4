"""The synthesized role policy, evaluated by moto's IAM policy engine, allows every call the function and
the Lambda platform make for it at run time, on the function's own resources, and nothing beside them.

"Least privilege" must not mean "too little to run": a role without log writes runs blind, its EMF
metrics never reach CloudWatch and its alarms never fire.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from fnmatch import fnmatchcase
from typing import Any

import pytest
from moto.iam.access_control import IAMPolicy, PermissionResult

from tests.infra.conftest import Synthesized, synth

ACCOUNT, REGION = "111122223333", "eu-west-1"
PSEUDO = {"AWS::Partition": "aws", "AWS::Region": REGION, "AWS::AccountId": ACCOUNT, "AWS::URLSuffix": "amazonaws.com"}
OTHER_REGISTRY = "210987654321.dkr.ecr.eu-west-1.amazonaws.com"
PULLER_ROLE = "arn:aws:iam::333333333333:role/puller"
KUBECONFIG_SECRET = f"arn:aws:secretsmanager:{REGION}:{ACCOUNT}:secret:onprem-kubeconfig-AbCdEf"
KMS_KEY = f"arn:aws:kms:{REGION}:{ACCOUNT}:key/0a1b2c3d-4e5f-6a7b-8c9d-0e1f2a3b4c5d"


class Deployed:
    """The template as CloudFormation would resolve it in ACCOUNT/REGION: each resource's name is its
    logical ID, so an ARN built by the stack and one built here name the same thing."""

    def __init__(self, template: Mapping[str, Any]) -> None:
        self.resources: dict[str, Any] = template["Resources"]

    def resolve(self, value: Any) -> Any:
        if isinstance(value, list):
            return [self.resolve(item) for item in value]
        if not isinstance(value, dict):
            return value
        if "Ref" in value:
            return PSEUDO.get(value["Ref"], value["Ref"])
        if "Fn::GetAtt" in value:
            return self.arn(value["Fn::GetAtt"][0])
        if "Fn::Join" in value:
            separator, parts = value["Fn::Join"]
            return separator.join(str(self.resolve(part)) for part in parts)
        return {key: self.resolve(item) for key, item in value.items()}

    def arn(self, logical_id: str) -> str:
        kind = self.resources[logical_id]["Type"]
        return {
            "AWS::IAM::Role": f"arn:aws:iam::{ACCOUNT}:role/{logical_id}",
            "AWS::Logs::LogGroup": f"arn:aws:logs:{REGION}:{ACCOUNT}:log-group:{logical_id}:*",
            "AWS::Lambda::Function": f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{logical_id}",
            "AWS::SQS::Queue": f"arn:aws:sqs:{REGION}:{ACCOUNT}:{logical_id}",
        }[kind]

    def of_type(self, kind: str) -> list[str]:
        return [name for name, resource in self.resources.items() if resource["Type"] == kind]

    def function_role(self, cluster: str) -> str:
        prefix = f"Cluster{cluster.replace('-', '')}Refresher"
        return next(name for name in self.of_type("AWS::IAM::Role") if name.startswith(prefix))

    def function(self, cluster: str) -> str:
        prefix = f"Cluster{cluster.replace('-', '')}Refresher"
        return next(name for name in self.of_type("AWS::Lambda::Function") if name.startswith(prefix))

    def log_group(self, cluster: str) -> str:
        prefix = f"Cluster{cluster.replace('-', '')}Refresher"
        return next(name for name in self.of_type("AWS::Logs::LogGroup") if name.startswith(prefix))

    def policy(self, role: str) -> IAMPolicy:
        """Every statement attached to `role`: its inline policies and the AWS::IAM::Policy resources."""
        assert not self.resources[role]["Properties"].get("ManagedPolicyArns"), "managed policies cannot be evaluated"
        statements = [
            statement
            for policy in self.resources[role]["Properties"].get("Policies", [])
            for statement in policy["PolicyDocument"]["Statement"]
        ]
        for name in self.of_type("AWS::IAM::Policy"):
            properties = self.resources[name]["Properties"]
            if {"Ref": role} in properties.get("Roles", []):
                statements += properties["PolicyDocument"]["Statement"]
        document = json.dumps({"Version": "2012-10-17", "Statement": self.resolve(statements)})
        # moto matches a resource as a regex with only `*` translated; IAM's `?` (any one character) is
        # the regex `.` there (ARNs here hold no other regex character that `?` could meet).
        return IAMPolicy(document.replace("?", "."))


def policy_statements(deployed: Deployed, cluster: str) -> list[dict[str, Any]]:
    """The statements of the function role's policy resources, resolved."""
    role = deployed.function_role(cluster)
    return [
        statement
        for name in deployed.of_type("AWS::IAM::Policy")
        if {"Ref": role} in deployed.resources[name]["Properties"].get("Roles", [])
        for statement in deployed.resolve(deployed.resources[name]["Properties"]["PolicyDocument"]["Statement"])
    ]


def allowed(policy: IAMPolicy, action: str, resource: str) -> bool:
    return policy.is_action_permitted(action, resource) == PermissionResult.PERMITTED


def runtime_calls(deployed: Deployed, cluster: str) -> list[tuple[str, str]]:
    """What a run in `cluster` calls as the role, and what Lambda calls as the role for it."""
    role = deployed.function_role(cluster)
    stream = (
        f"arn:aws:logs:{REGION}:{ACCOUNT}:log-group:{deployed.log_group(cluster)}:log-stream:2026/11/30/[$LATEST]ab"
    )
    return [
        ("logs:CreateLogStream", stream),
        ("logs:PutLogEvents", stream),
        ("xray:PutTraceSegments", "*"),
        ("xray:PutTelemetryRecords", "*"),
        ("ecr:GetAuthorizationToken", "*"),
        ("ecr:BatchGetImage", f"arn:aws:ecr:{REGION}:{ACCOUNT}:repository/team-a/api"),
        ("ecr:GetDownloadUrlForLayer", f"arn:aws:ecr:{REGION}:{ACCOUNT}:repository/team-a/api"),
        ("ecr:BatchCheckLayerAvailability", f"arn:aws:ecr:{REGION}:{ACCOUNT}:repository/team-a/api"),
        ("eks:DescribeCluster", f"arn:aws:eks:{REGION}:{ACCOUNT}:cluster/{cluster}"),
        ("eks:DescribeAccessEntry", f"arn:aws:eks:{REGION}:{ACCOUNT}:access-entry/{cluster}/role/{ACCOUNT}/{role}/9e1"),
        ("lambda:GetFunctionConfiguration", deployed.arn(deployed.function(cluster))),  # check: its own network
    ]


def test_the_default_role_allows_every_runtime_call_and_nothing_beside(default_stack: Synthesized) -> None:
    deployed = Deployed(default_stack[1].to_json())
    policy = deployed.policy(deployed.function_role("my-cluster"))
    assert [call for call in runtime_calls(deployed, "my-cluster") if not allowed(policy, *call)] == []
    others = [
        ("logs:PutLogEvents", f"arn:aws:logs:{REGION}:{ACCOUNT}:log-group:/aws/lambda/other:log-stream:x"),
        ("logs:CreateLogGroup", f"arn:aws:logs:{REGION}:{ACCOUNT}:log-group:anything"),
        ("eks:DescribeCluster", f"arn:aws:eks:{REGION}:{ACCOUNT}:cluster/other"),
        ("eks:DescribeAccessEntry", f"arn:aws:eks:{REGION}:{ACCOUNT}:access-entry/my-cluster/role/{ACCOUNT}/admin/1"),
        ("lambda:GetFunctionConfiguration", f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:other"),
        ("lambda:UpdateFunctionConfiguration", deployed.arn(deployed.function("my-cluster"))),
        ("ecr:BatchGetImage", f"arn:aws:ecr:{REGION}:999999999999:repository/app"),
        ("ecr:PutImage", f"arn:aws:ecr:{REGION}:{ACCOUNT}:repository/team-a/api"),
        ("sts:AssumeRole", PULLER_ROLE),
        ("secretsmanager:GetSecretValue", KUBECONFIG_SECRET),
        ("ec2:CreateNetworkInterface", "*"),
        ("iam:PassRole", "*"),
    ]
    assert [call for call in others if allowed(policy, *call)] == []


def test_registries_roles_prefixes_and_vpc_add_exactly_what_they_need() -> None:
    _, template = synth(
        clusterName="blue",
        registries=[OTHER_REGISTRY, f"333333333333.dkr.ecr.us-east-1.amazonaws.com={PULLER_ROLE}"],
        repositories=["team-a/", f"{OTHER_REGISTRY}/base/"],
        vpcSubnetIds=["subnet-0123456789abcdef0"],
        vpcSecurityGroupIds=["sg-0123456789abcdef0"],
        alarmEmail="ops@example.com",
    )
    deployed = Deployed(template.to_json())
    policy = deployed.policy(deployed.function_role("blue"))
    needed = [
        *runtime_calls(deployed, "blue"),
        ("ecr:BatchGetImage", "arn:aws:ecr:eu-west-1:210987654321:repository/base/python"),
        ("sts:AssumeRole", PULLER_ROLE),
        *[
            (action, "*")
            for action in (
                "ec2:CreateNetworkInterface",
                "ec2:DescribeNetworkInterfaces",
                "ec2:DescribeSubnets",
                "ec2:DeleteNetworkInterface",
                "ec2:AssignPrivateIpAddresses",
                "ec2:UnassignPrivateIpAddresses",
            )
        ],
    ]
    assert [call for call in needed if not allowed(policy, *call)] == []
    beyond = [
        ("ecr:BatchGetImage", f"arn:aws:ecr:{REGION}:{ACCOUNT}:repository/team-b/api"),  # not a configured prefix
        ("ecr:BatchGetImage", "arn:aws:ecr:eu-west-1:210987654321:repository/team-a/api"),
        ("ecr:BatchGetImage", "arn:aws:ecr:us-east-1:333333333333:repository/app"),  # pulled with its own role
        ("sts:AssumeRole", "arn:aws:iam::333333333333:role/admin"),
    ]
    assert [call for call in beyond if allowed(policy, *call)] == []


@pytest.mark.parametrize("with_key", [False, True])
def test_a_kubeconfig_cluster_reads_its_secret_and_nothing_of_eks(with_key: bool) -> None:
    cluster = {"name": "onprem", "kubeconfigSecretArn": KUBECONFIG_SECRET} | (
        {"kmsKeyArn": KMS_KEY} if with_key else {}
    )
    _, template = synth(clusters=[cluster])
    deployed = Deployed(template.to_json())
    policy = deployed.policy(deployed.function_role("onprem"))
    assert allowed(policy, "secretsmanager:GetSecretValue", KUBECONFIG_SECRET)
    assert allowed(policy, "kms:Decrypt", KMS_KEY) is with_key
    assert not allowed(policy, "secretsmanager:GetSecretValue", KUBECONFIG_SECRET.replace("onprem", "other"))
    assert not allowed(policy, "eks:DescribeCluster", f"arn:aws:eks:{REGION}:{ACCOUNT}:cluster/onprem")
    template.resource_count_is("AWS::EKS::AccessEntry", 0)
    if with_key:  # the key decrypts only for Secrets Manager, and only this secret
        key_statement = next(s for s in policy_statements(deployed, "onprem") if s.get("Sid") == "KubeconfigSecretKey")
        assert key_statement["Condition"] == {
            "StringEquals": {"kms:ViaService": f"secretsmanager.{REGION}.amazonaws.com"},
            "StringLike": {"kms:EncryptionContext:SecretARN": [KUBECONFIG_SECRET, f"{KUBECONFIG_SECRET}-??????"]},
        }


@pytest.mark.parametrize(
    ("given", "secret"),
    [
        (KUBECONFIG_SECRET.removesuffix("-AbCdEf"), KUBECONFIG_SECRET),  # partial: the suffix is wildcarded
        (KUBECONFIG_SECRET, KUBECONFIG_SECRET),  # complete
        # A name that ends like a suffix (`team-onprem`): partial, though its text reads as complete.
        (
            KUBECONFIG_SECRET.removesuffix("-AbCdEf").replace("onprem", "team-onprem"),
            KUBECONFIG_SECRET.replace("onprem", "team-onprem"),
        ),
    ],
    ids=["partial", "complete", "partial-ending-like-a-suffix"],
)
def test_a_secret_arn_is_granted_whether_partial_or_complete(given: str, secret: str) -> None:
    _, template = synth(clusters=[{"name": "onprem", "kubeconfigSecretArn": given}])
    deployed = Deployed(template.to_json())
    # moto's evaluator turns `?` into a broken regex; IAM's `*` and `?` are fnmatch's, without classes.
    (granted,) = [s["Resource"] for s in policy_statements(deployed, "onprem") if s.get("Sid") == "KubeconfigSecret"]
    assert not any("[" in resource for resource in granted)
    assert any(fnmatchcase(secret, resource) for resource in granted)
    assert not any(fnmatchcase(f"{given}-other-AbCdEf", resource) for resource in granted)


def test_the_run_on_deploy_provider_writes_its_own_logs_and_invokes_the_refreshers_only(
    default_stack: Synthesized,
) -> None:
    deployed = Deployed(default_stack[1].to_json())
    (role,) = [name for name in deployed.of_type("AWS::IAM::Role") if name.startswith("RunOnDeployRole")]
    (log_group,) = [name for name in deployed.of_type("AWS::Logs::LogGroup") if name.startswith("RunOnDeployLogs")]
    policy = deployed.policy(role)
    function = deployed.arn(next(name for name in deployed.of_type("AWS::Lambda::Function") if "Refresher" in name))
    stream = f"arn:aws:logs:{REGION}:{ACCOUNT}:log-group:{log_group}:log-stream:2026/11/30/[$LATEST]ab"
    needed = [("logs:CreateLogStream", stream), ("logs:PutLogEvents", stream), ("lambda:InvokeFunction", function)]
    assert [call for call in needed if not allowed(policy, *call)] == []
    beyond = [
        ("logs:PutLogEvents", f"arn:aws:logs:{REGION}:{ACCOUNT}:log-group:/aws/lambda/other:log-stream:x"),
        ("logs:CreateLogGroup", f"arn:aws:logs:{REGION}:{ACCOUNT}:log-group:anything"),
        ("lambda:InvokeFunction", f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:other"),
    ]
    assert [call for call in beyond if allowed(policy, *call)] == []
    (provider,) = [
        props
        for name in deployed.of_type("AWS::Lambda::Function")
        if (props := deployed.resources[name]["Properties"]).get("Role") == {"Fn::GetAtt": [role, "Arn"]}
    ]
    assert provider["LoggingConfig"]["LogGroup"] == {"Ref": log_group}


def test_a_tenants_registry_role_may_be_assumed_like_a_shared_ones() -> None:
    tenant_role = "arn:aws:iam::444444444444:role/team-a-pull"
    tenants = [
        {
            "name": "team-a",
            "namespaces": ["team-a"],
            "registries": [f"444444444444.dkr.ecr.{REGION}.amazonaws.com={tenant_role}"],
        }
    ]
    _, template = synth(clusterName="blue", namespaces=["team-*"], tenants=tenants)
    deployed = Deployed(template.to_json())
    policy = deployed.policy(deployed.function_role("blue"))
    assert allowed(policy, "sts:AssumeRole", tenant_role)
    assert not allowed(policy, "sts:AssumeRole", "arn:aws:iam::444444444444:role/admin")
