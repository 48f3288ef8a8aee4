"""Clusters in two accounts and two regions, one configuration: the real CDK CLI bootstraps each environment
(trusting the deploying account) and deploys them all with `cdk deploy --all` into moto, assuming each
environment's bootstrap roles; then each deployed function's zip runs under the Lambda emulator, as its
role in its account and region, against its own cluster (a local API server registered in moto there)."""

from __future__ import annotations

import base64
import json
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from localkube import ADMIN, EksTokenAuthenticator, LocalKube, StsIdentityResolver
from localkube.eks_auth import AccessEntry
from sandbox.cdk_deploy import ROOT, Deployment
from sandbox.eks_cluster import KUBERNETES_GROUP, refresher_rules
from sandbox.lambda_runtime import LambdaRuntime
from sandbox.moto_aws import ACCOUNT, MotoAws
from tests.e2e.conftest import WORK, assumed, lambda_environment

pytestmark = pytest.mark.e2e
OTHER_ACCOUNT = "111111111111"
ENVIRONMENTS = [
    (ACCOUNT, "us-east-1"),
    (ACCOUNT, "eu-west-1"),
    (OTHER_ACCOUNT, "us-east-1"),
    (OTHER_ACCOUNT, "eu-west-1"),
]
CLUSTER = "prod"  # one name in every environment: four different clusters
SCHEDULED: dict[str, Any] = json.loads((ROOT / "events" / "scheduled.json").read_text())


@dataclass
class Environment:
    account: str
    region: str
    kube: LocalKube
    authenticator: EksTokenAuthenticator

    @property
    def stack(self) -> str:
        return f"EcrTokenRefresher-{self.account}-{self.region}"


@pytest.fixture(scope="module")
def environments(aws: MotoAws) -> Iterator[list[Environment]]:
    """Four environments, each bootstrapped, with its cluster; then the app deployed to all of them."""
    if shutil.which("go") is None:
        pytest.skip("SKIPPING the e2e tier: Go is not installed (the Lambda emulator needs it)")
    aws.reset()
    found = []
    for account, region in ENVIRONMENTS:
        authenticator = EksTokenAuthenticator(
            cluster_name=CLUSTER, resolve_arn=StsIdentityResolver(aws.url), access_entries={}, secret_keys={}
        )
        kube = LocalKube(users=(ADMIN,), group_rules={KUBERNETES_GROUP: refresher_rules()}, eks=authenticator).start()
        kube.store.add_namespace("kube-system")  # where the runs' Lease is taken
        kube.store.add_namespace("team-a")
        aws.create_eks_cluster(CLUSTER, endpoint=kube.url, ca_pem=kube.ca_pem, account=account, region=region)
        found.append(Environment(account, region, kube, authenticator))
    work = WORK / "environments"
    work.mkdir(parents=True, exist_ok=True)
    deployment = Deployment(aws, work / "cdk.out", work / "cdk.log")
    deployment.log.write_text("")
    for environment in found:
        deployment.bootstrap(environment.account, environment.region, trust=ACCOUNT)
    clusters = [{"name": CLUSTER, "account": e.account, "region": e.region} for e in found]
    deployment.deploy_all(
        {
            "clusters": json.dumps(clusters),
            "namespaces": "team-*",
            "architecture": "x86_64",  # the bundle runs on this machine
            "runOnDeploy": "false",  # moto cannot run a Lambda-backed custom resource (it needs Docker)
            "alarmEmail": "ops@example.com",
        }
    )
    try:
        yield found
    finally:
        for environment in found:
            environment.kube.stop()


@pytest.fixture(scope="module")
def deployment(aws: MotoAws, environments: list[Environment]) -> Deployment:
    work = WORK / "environments"
    return Deployment(aws, work / "cdk.out", work / "cdk.log")


def test_each_environment_holds_its_own_stack_only(deployment: Deployment, environments: list[Environment]) -> None:
    for environment in environments:
        assert deployment.stacks(environment.account, environment.region) == [environment.stack]
    assert deployment.stacks(OTHER_ACCOUNT, "ap-south-1") == []


def test_each_function_runs_in_its_environment_against_its_own_cluster(
    aws: MotoAws, deployment: Deployment, environments: list[Environment]
) -> None:
    task_root = WORK / "environments" / "task"
    for environment in environments:
        where = (environment.account, environment.region)
        template = deployment.template(environment.stack, *where)
        resources = template["Resources"]
        function_id = next(k for k, v in resources.items() if v["Type"] == "AWS::Lambda::Function" and "Refresher" in k)
        declared = resources[function_id]["Properties"]
        configuration = deployment.function(deployment.physical_ids(environment.stack, *where)[function_id], *where)
        assert configuration["FunctionArn"].split(":")[3:5] == [environment.region, environment.account]
        shutil.rmtree(task_root, ignore_errors=True)
        deployment.code(declared["Code"], task_root, *where)  # from that environment's assets bucket
        role = assumed(aws, configuration)
        entry = next(v["Properties"] for v in resources.values() if v["Type"] == "AWS::EKS::AccessEntry")
        environment.authenticator.access_entries = {
            configuration["Role"]: AccessEntry("ecr-token-refresher", tuple(entry["KubernetesGroups"]))
        }
        environment.authenticator.secret_keys = {role.access_key_id: role.secret_access_key}
        variables = lambda_environment(aws, configuration, declared, role, region=environment.region)
        python_version = configuration["Runtime"].removeprefix("python")
        with LambdaRuntime(
            task_root,
            configuration["Handler"],
            variables,
            python_version=python_version,
            log=task_root.parent / "rie.log",
        ) as runtime:
            body = runtime.invoke(SCHEDULED).body
        assert body["counts"] == dict.fromkeys(body["counts"], 0) | {"created": 1}, body
        assert body["errors"] == []
        secret = environment.kube.store.get("secrets", "team-a", "regcred")
        auths = json.loads(base64.b64decode(secret["data"][".dockerconfigjson"]))["auths"]
        # The function's own registry is its environment's: it ran there, as its role there.
        assert set(auths) == {f"{environment.account}.dkr.ecr.{environment.region}.amazonaws.com"}
