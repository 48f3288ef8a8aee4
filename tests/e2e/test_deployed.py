"""What `cdk deploy` ships, run as Lambda runs it: the deployed template, function, schedule and code
read back from (moto's) AWS, then the uploaded zip invoked under the Runtime Interface Emulator, one
event at a time, the cluster checked after each."""

from __future__ import annotations

import base64
import json
import re
import time
from typing import Any

import jmespath
import pytest
from kubernetes import client as k8s
from moto.eks.models import eks_backends

from sandbox.cdk_deploy import ROOT, SKIPPED_BY_MOTO
from sandbox.moto_aws import ACCOUNT, REGION, MotoAws
from tests.e2e.conftest import CLUSTER, CONTEXT, OTHER_REGISTRY, Deployed

pytestmark = pytest.mark.e2e
EVENTS = ROOT / "events"
OWN_REGISTRY = "123456789012.dkr.ecr.us-east-1.amazonaws.com"


def outcomes(body: dict[str, Any]) -> dict[str, str]:
    return {entry["namespace"]: entry["outcome"] for entry in body["namespaces"]}


def secret(deployed: Deployed, namespace: str) -> k8s.V1Secret:
    return deployed.cluster.admin().read_namespaced_secret("regcred", namespace)


def auths(deployed: Deployed, namespace: str) -> dict[str, Any]:
    data = secret(deployed, namespace).data or {}
    found: dict[str, Any] = json.loads(base64.b64decode(data[".dockerconfigjson"]))["auths"]
    return found


def versions(deployed: Deployed, names: list[str]) -> dict[str, str]:
    return {name: str(secret(deployed, name).metadata.resource_version) for name in names}


def scheduled_event(deployed: Deployed) -> dict[str, Any]:
    """What the deployed rule sends: an EventBridge scheduled event naming the rule (its target has no input)."""
    event: dict[str, Any] = json.loads((EVENTS / "scheduled.json").read_text())
    return event | {"resources": [deployed.rule["Arn"]], "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}


def test_what_was_deployed_is_what_the_app_declares(deployed: Deployed) -> None:
    function = deployed.function
    assert (function["Handler"], function["Runtime"], function["Timeout"], function["MemorySize"]) == (
        "lambda_fn.handler.lambda_handler",
        "python3.13",
        30,
        512,
    )
    declared = next(iter(deployed.resources("AWS::Lambda::Function").values()))
    assert declared["Architectures"] == ["x86_64"]  # moto reports x86_64 whatever is declared
    variables = function["Environment"]["Variables"]
    assert {key: variables[key] for key in ("CLUSTER_NAME", "NAMESPACES", "SERVICE_ACCOUNTS", "REGISTRIES")} == {
        "CLUSTER_NAME": CONTEXT["clusterName"],
        "NAMESPACES": "team-*",
        "SERVICE_ACCOUNTS": "default",
        "REGISTRIES": CONTEXT["registries"],
    }
    assert function["Role"].startswith("arn:aws:iam::123456789012:role/")
    assert (deployed.rule["ScheduleExpression"], deployed.rule["State"]) == ("rate(1 minute)", "ENABLED")
    (target,) = deployed.rule["Targets"]
    assert target["Arn"] == function["FunctionArn"]
    assert "Input" not in target
    assert (target["RetryPolicy"], "DeadLetterConfig" in target) == (
        {"MaximumRetryAttempts": 2, "MaximumEventAgeInSeconds": 120},
        True,
    )


def test_the_readmes_verify_step_finds_the_deployed_function(deployed: Deployed) -> None:
    """docs/deploy.md, Verify: its `--query` over describe-stacks names the function the stack deployed."""
    query = re.search(r'--query "([^"]+)"', (ROOT / "docs" / "deploy.md").read_text())
    assert query is not None
    (stack,) = deployed.deployment.aws.client("cloudformation").describe_stacks(StackName=deployed.stack)["Stacks"]
    # moto 5 builds a stack's outputs when the stack is made, not when a change set (cdk deploy) fills it,
    # so it answers none: they are rebuilt as CloudFormation answers them, from the deployed template's
    # keys and the physical IDs. Once moto answers them, this fails: use its answer then.
    assert "Outputs" not in stack
    ids = deployed.deployment.physical_ids(deployed.stack)
    stack["Outputs"] = [
        {"OutputKey": key, "OutputValue": ids[output["Value"]["Ref"]]}
        for key, output in deployed.template["Outputs"].items()
        if isinstance(output["Value"], dict) and output["Value"].get("Ref") in ids
    ]
    found = jmespath.search(query[1].replace("Clusterprod", f"Cluster{CONTEXT['clusterName']}"), {"Stacks": [stack]})
    assert found == [deployed.function["FunctionName"]]


def test_what_moto_leaves_out_is_known(deployed: Deployed) -> None:
    """The divergences of this tier from real AWS: the resources moto's CloudFormation skips."""
    skipped = deployed.deployment.skipped(deployed.stack)
    assert {deployed.template["Resources"][name]["Type"] for name in skipped} == set(SKIPPED_BY_MOTO)


def test_the_uploaded_zip_is_the_self_contained_bundle(deployed: Deployed) -> None:
    root = deployed.task_root
    assert (root / "lambda_fn" / "handler.py").exists()
    assert (root / "botocore" / "data" / "ecr").is_dir()
    assert not (root / "botocore" / "data" / "s3").exists()  # trimmed to the services called
    assert not (root / "kubernetes" / "aio").exists()
    assert not [path for path in ("tests", "infra", "sandbox", "localkube") if (root / path).exists()]
    assert list((root / "lambda_fn").glob("__pycache__/*.cpython-313.pyc"))  # compiled by the runtime's Python


def test_the_scheduled_event_runs_the_configured_refresh(deployed: Deployed, namespaces: list[str]) -> None:
    invocation = deployed.invoke(scheduled_event(deployed))
    assert invocation.status == 200
    body = invocation.body
    assert body["ok"] is True, body
    assert outcomes(body) == {"team-a": "created", "team-b": "created", "team-c": "adopted"}
    assert set(auths(deployed, "team-a")) == {OWN_REGISTRY, OTHER_REGISTRY}
    assert auths(deployed, "team-c")[OWN_REGISTRY]["password"] != "from-the-cron-job"
    account = deployed.cluster.admin().read_namespaced_service_account("default", "team-a")
    assert [ref.name for ref in account.image_pull_secrets] == ["regcred"]
    with pytest.raises(k8s.ApiException):
        secret(deployed, "other")


@pytest.mark.parametrize("name", sorted(path.name for path in EVENTS.glob("*.json")))
def test_every_shipped_event(deployed: Deployed, namespaces: list[str], name: str) -> None:
    teams = ["team-a", "team-b", "team-c"]
    before = versions(deployed, teams)
    body = deployed.invoke(json.loads((EVENTS / name).read_text())).body
    if name == "check.json":
        assert body["ok"] is True, [c for c in body["checks"] if c["status"] != "ok"]
        assert {n["namespace"]: n["state"] for n in body["namespaces"]} == dict.fromkeys(teams, "managed")
        assert versions(deployed, teams) == before
    elif name == "dry-run.json":
        assert (body["dry_run"], set(outcomes(body).values())) == (True, {"unchanged"})
        assert versions(deployed, teams) == before
    elif name == "manual-override.json":
        assert outcomes(body) == {"team-a": "updated", "team-b": "updated"}
        after = versions(deployed, teams)
        assert after["team-c"] == before["team-c"]
        assert after["team-a"] != before["team-a"]
    else:
        assert set(outcomes(body).values()) == {"unchanged"}
        assert versions(deployed, teams) == before


@pytest.mark.parametrize("event", [["not", "an", "object"], {"surprise": 1}, {"namespaces": ["kube-system"]}])
def test_a_malformed_or_widening_event_fails_and_writes_nothing(
    deployed: Deployed, namespaces: list[str], event: Any
) -> None:
    before = versions(deployed, ["team-a", "team-b", "team-c"])
    invocation = deployed.invoke(event)
    assert (invocation.status, invocation.error_type) == (200, "ConfigError")
    assert versions(deployed, ["team-a", "team-b", "team-c"]) == before


def test_near_the_deadline_the_run_stops_in_time_and_says_so(deployed: Deployed, namespaces: list[str]) -> None:
    """30 s timeout, 1 s added to every request, 250 new namespaces: the run stops starting namespaces
    10 s before the end, reports the rest as not attempted, and is never killed mid-write."""
    core = deployed.cluster.admin()
    load = [f"team-load-{index:03d}" for index in range(250)]
    for name in load:
        core.create_namespace(k8s.V1Namespace(metadata=k8s.V1ObjectMeta(name=name)))
    deployed.cluster.proxy.delay = 1.0
    try:
        invocation = deployed.invoke(scheduled_event(deployed))
    finally:
        deployed.cluster.proxy.delay = 0.0
    assert not invocation.timed_out, invocation.body
    assert invocation.error_type == "RefreshFailed"
    assert invocation.seconds < 30
    summary = next(
        json.loads(line)
        for line in reversed(deployed.runtime.output().splitlines())
        if line.startswith("{") and '"refresh finished"' in line
    )["summary"]
    assert summary["counts"]["failed"] > 0
    assert summary["counts"]["created"] > 0
    assert any("not attempted" in reason for reason in summary.get("failures_by_reason", {}))
    for name in load:
        try:
            written = auths(deployed, name)
        except k8s.ApiException:
            continue
        assert set(written) == {OWN_REGISTRY, OTHER_REGISTRY}  # every write whole, none cut short


def test_no_credential_in_the_runtime_output_or_the_answers(deployed: Deployed) -> None:
    written = deployed.runtime.output() + json.dumps(deployed.responses)
    assert "refresh finished" in written
    passwords = ["123456789012-auth-token", "210987654321-auth-token"]
    secrets = [
        *passwords,
        *(base64.b64encode(f"AWS:{p}".encode()).decode() for p in passwords),
        deployed.role.secret_access_key,
        deployed.role.session_token,
        "k8s-aws-v1.",
    ]
    assert [s[:8] for s in secrets if s in written] == []


def test_the_summary_line_is_json_with_its_level(deployed: Deployed) -> None:
    lines = [json.loads(line) for line in deployed.runtime.output().splitlines() if line.startswith('{"level"')]
    finished = [line for line in lines if line.get("message") == "refresh finished"]
    assert finished
    assert {line["level"] for line in finished} == {"INFO"}
    assert all(line["service"] == "EcrTokenRefresher" for line in finished)  # the stack names the series


@pytest.mark.parametrize(
    ("network", "access"),
    [
        ({"endpointPublicAccess": False, "endpointPrivateAccess": True, "vpcId": "vpc-0e2e"}, "private only"),
        ({"publicAccessCidrs": ["203.0.113.0/24"], "vpcId": "vpc-0e2e"}, "public, open to 203.0.113.0/24 only"),
    ],
    ids=["private", "cidr-restricted"],
)
def test_check_in_the_deployed_zip_judges_a_private_or_restricted_endpoint(
    aws: MotoAws, deployed: Deployed, network: dict[str, Any], access: str
) -> None:
    """The bundle's botocore trim once dropped the `lambda` model: `{"check": true}` crashed with
    UnknownServiceError for every VPC-mode user, the ones who need the preflight most. Here the deployed
    function (outside any VPC) asks for its own configuration and says it cannot reach the endpoint."""
    cluster = eks_backends[ACCOUNT][REGION].clusters[CLUSTER]
    before = dict(cluster.resources_vpc_config)
    cluster.resources_vpc_config = {**before, **network}
    try:
        invocation = deployed.invoke({"check": True})
    finally:
        cluster.resources_vpc_config = before
    assert (invocation.status, invocation.error_type) == (200, None), invocation.body
    (line,) = [c for c in invocation.body["checks"] if c["check"] == "EKS endpoint"]
    assert line["status"] == "failed", line
    assert f"{access}, and the function runs outside any VPC" in line["detail"]
