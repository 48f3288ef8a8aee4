"""As deployed: the real CDK CLI deploys the app into moto's server, and the zip it uploaded runs
under the Lambda Runtime Interface Emulator, as the deployed role, against the real kube-apiserver
registered in moto as the EKS cluster. The emulator and kube-apiserver both build from Go modules:
without Go the tier is skipped, loudly."""

from __future__ import annotations

import base64
import json
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client as k8s

from localkube import EksTokenAuthenticator
from localkube.eks_auth import AccessEntry
from localkube.kubeconfig import write_kubeconfig
from sandbox.cdk_deploy import ROOT, Deployment
from sandbox.clients import api_client
from sandbox.lambda_runtime import LambdaRuntime
from sandbox.latency_proxy import LatencyProxy
from sandbox.moto_aws import REGION, AwsCredentials, MotoAws
from sandbox.real_apiserver import ADMIN_TOKEN, RealKube

CLUSTER = "e2e"
PULLER = "arn:aws:iam::210987654321:role/puller"
OTHER_REGISTRY = "210987654321.dkr.ecr.us-east-1.amazonaws.com"
CONTEXT = {
    "clusterName": CLUSTER,
    "namespaces": "team-*",
    "serviceAccounts": "default",
    "registries": f"{OTHER_REGISTRY}={PULLER}",
    "alarmEmail": "ops@example.com",
    "architecture": "x86_64",  # the bundle runs on this machine
    "timeoutSeconds": "30",  # the shortest there is: the deadline case needs no long wait
    "runOnDeploy": "false",  # moto cannot run a Lambda-backed custom resource (it needs Docker)
}
WORK = ROOT / ".cache" / "e2e"


@dataclass
class Cluster:
    """The session's kube-apiserver, reached by the function through a proxy that can add latency."""

    kube: RealKube
    proxy: LatencyProxy

    @property
    def authenticator(self) -> EksTokenAuthenticator:
        assert self.kube.authenticator is not None  # the session's server authenticates EKS tokens
        return self.kube.authenticator

    def admin(self) -> k8s.CoreV1Api:
        return k8s.CoreV1Api(api_client(self.kube.url, self.kube.ca_pem, ADMIN_TOKEN))


@dataclass
class Deployed:
    deployment: Deployment
    stack: str
    template: dict[str, Any]
    function: dict[str, Any]  # GetFunctionConfiguration
    rule: dict[str, Any]  # DescribeRule, with its targets
    task_root: Path
    role: AwsCredentials
    runtime: LambdaRuntime
    cluster: Cluster
    responses: list[Any]

    def resources(self, kind: str) -> dict[str, dict[str, Any]]:
        return {k: v["Properties"] for k, v in self.template["Resources"].items() if v["Type"] == kind}

    def invoke(self, event: Any) -> Any:
        invocation = self.runtime.invoke(event)
        self.responses.append(invocation.body)
        return invocation


@pytest.fixture(scope="module")
def cluster(request: pytest.FixtureRequest) -> Iterator[Cluster]:
    """The session's real kube-apiserver, behind a latency proxy, answering for cluster `e2e`."""
    if shutil.which("go") is None:
        message = "SKIPPING the e2e tier: Go is not installed (the Lambda emulator and kube-apiserver need it)"
        print(f"\n*** {message} ***")
        pytest.skip(message)
    real: RealKube = request.getfixturevalue("real_kube")
    cluster = Cluster(real, LatencyProxy(real.port))
    shared = cluster.authenticator
    before = (shared.cluster_name, shared.access_entries, shared.secret_keys)
    shared.cluster_name = CLUSTER
    with cluster.proxy:
        yield cluster
    shared.cluster_name, shared.access_entries, shared.secret_keys = before  # the server outlives this module


@pytest.fixture(scope="module")
def deployed(aws: MotoAws, cluster: Cluster) -> Iterator[Deployed]:
    aws.reset()
    WORK.mkdir(parents=True, exist_ok=True)
    aws.create_eks_cluster(CLUSTER, endpoint=cluster.proxy.url, ca_pem=cluster.kube.ca_pem)
    deployment = Deployment(aws, WORK / "cdk.out", WORK / "cdk.log")
    deployment.log.write_text("")
    print("\ne2e: deploying with runOnDeploy=false: moto cannot run Lambda-backed custom resources")
    stack = deployment.deploy(CONTEXT)
    template = deployment.template(stack)
    ids = deployment.physical_ids(stack)
    resources = template["Resources"]
    function_id = next(k for k, v in resources.items() if v["Type"] == "AWS::Lambda::Function" and "Refresher" in k)
    configuration = deployment.function(ids[function_id])
    rule_id = next(k for k, v in resources.items() if v["Type"] == "AWS::Events::Rule")
    events = aws.client("events")
    rule = events.describe_rule(Name=ids[rule_id])
    rule["Targets"] = events.list_targets_by_rule(Rule=ids[rule_id])["Targets"]
    task_root = WORK / "task"
    shutil.rmtree(task_root, ignore_errors=True)
    deployment.code(resources[function_id]["Properties"]["Code"], task_root)
    role = assumed(aws, configuration)
    # The access entry the stack declares (moto skips it) maps the deployed role to its group.
    entry = next(v["Properties"] for v in resources.values() if v["Type"] == "AWS::EKS::AccessEntry")
    groups = tuple(entry["KubernetesGroups"])
    cluster.authenticator.access_entries = {configuration["Role"]: AccessEntry("ecr-token-refresher", groups)}
    cluster.authenticator.secret_keys = {role.access_key_id: role.secret_access_key}
    kubeconfig = write_kubeconfig(
        WORK / "admin.kubeconfig", server=cluster.kube.url, ca_pem=cluster.kube.ca_pem, token=ADMIN_TOKEN
    )
    kubectl = ["kubectl", f"--kubeconfig={kubeconfig}"]
    manifest = ["-f", str(WORK / "cdk.out" / "rbac.yaml")]
    subprocess.run([*kubectl, "apply", *manifest], check=True, capture_output=True)  # noqa: S603
    environment = lambda_environment(aws, configuration, resources[function_id]["Properties"], role)
    python_version = configuration["Runtime"].removeprefix("python")
    try:
        with LambdaRuntime(
            task_root, configuration["Handler"], environment, python_version=python_version, log=WORK / "runtime.log"
        ) as runtime:
            yield Deployed(deployment, stack, template, configuration, rule, task_root, role, runtime, cluster, [])
    finally:
        # The server outlives this module: its RBAC and admission policy would bind other tests' identity.
        subprocess.run([*kubectl, "delete", *manifest], check=True, capture_output=True)  # noqa: S603


def assumed(aws: MotoAws, configuration: dict[str, Any]) -> AwsCredentials:
    """The deployed role's credentials, assumed through moto's STS as Lambda assumes it."""
    session_name = configuration["FunctionName"][:64]  # as Lambda names its sessions
    keys = aws.client("sts").assume_role(RoleArn=configuration["Role"], RoleSessionName=session_name)["Credentials"]
    return AwsCredentials(keys["AccessKeyId"], keys["SecretAccessKey"], keys["SessionToken"])


def lambda_environment(
    aws: MotoAws, configuration: dict[str, Any], declared: dict[str, Any], role: AwsCredentials, region: str = REGION
) -> dict[str, str]:
    """What Lambda gives the function: its variables, its limits, its region, its role's credentials."""
    logging = declared["LoggingConfig"]  # moto keeps no logging configuration: as the template declares
    return {
        **configuration["Environment"]["Variables"],
        "AWS_LAMBDA_FUNCTION_NAME": configuration["FunctionName"],
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(configuration["MemorySize"]),
        "AWS_LAMBDA_FUNCTION_TIMEOUT": str(configuration["Timeout"]),
        "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
        "AWS_LAMBDA_LOG_FORMAT": logging["LogFormat"],
        "AWS_LAMBDA_LOG_LEVEL": logging["ApplicationLogLevel"],
        "AWS_REGION": region,
        "AWS_DEFAULT_REGION": region,
        "AWS_ACCESS_KEY_ID": role.access_key_id,
        "AWS_SECRET_ACCESS_KEY": role.secret_access_key,
        "AWS_SESSION_TOKEN": role.session_token,
        # Every AWS call goes to moto; nothing else of this machine's environment reaches the function.
        "AWS_ENDPOINT_URL": aws.url,
        # No X-Ray daemon here: the traces the SDK would send to it are turned off.
        "POWERTOOLS_TRACE_DISABLED": "true",
    }


@pytest.fixture(scope="module")
def namespaces(deployed: Deployed) -> list[str]:
    """team-a and team-b, team-c holding the kubectl recipe's secret, and `other` (not a target),
    each with its `default` service account."""
    core = deployed.cluster.admin()
    names = ["team-a", "team-b", "team-c", "other"]
    for name in names:
        core.create_namespace(k8s.V1Namespace(metadata=k8s.V1ObjectMeta(name=name)))
        core.create_namespaced_service_account(name, k8s.V1ServiceAccount(metadata=k8s.V1ObjectMeta(name="default")))
    own = f"{deployed.function['Role'].split(':')[4]}.dkr.ecr.{REGION}.amazonaws.com"
    auths = {own: {"username": "AWS", "password": "from-the-cron-job", "auth": "QVdTOmZyb20tdGhlLWNyb24tam9i"}}
    compact = json.dumps({"auths": auths}, separators=(",", ":"))  # as kubectl writes it
    data: dict[str, bytes | str] = {".dockerconfigjson": base64.b64encode(compact.encode()).decode()}
    recipe = k8s.V1Secret(metadata=k8s.V1ObjectMeta(name="regcred"), type="kubernetes.io/dockerconfigjson", data=data)
    core.create_namespaced_secret("team-c", recipe)
    return names
