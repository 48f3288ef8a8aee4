"""What `check` reads of an EKS cluster, answered by botocore's Stubber where moto has no answer
(access entries, authentication modes, restricted endpoints): each problem is one line with its fix."""

from __future__ import annotations

from typing import Any

import pytest

from lambda_fn.aws import unbounded
from lambda_fn.check import Status
from lambda_fn.check.aws_access import AwsAccess, eks_cluster
from tests.unit.test_aws_errors import StubbedSession

ROLE = "arn:aws:iam::111122223333:role/refresher"


def preflight(
    cluster: dict[str, Any], entry: dict[str, Any] | None, *, function_vpc: str | Exception | None = None
) -> dict[str, tuple[Status, str]]:
    """`function_vpc`: when given, `check` runs in the Lambda `refresher`, whose configuration says this
    VPC ("" for none) or fails with this error."""
    session = StubbedSession()
    function_name = None
    if function_vpc is not None:
        function_name, functions = "refresher", session.stub("lambda")
        if isinstance(function_vpc, Exception):
            functions.add_client_error("get_function_configuration", "AccessDeniedException", str(function_vpc), 403)
        else:
            network = {"VpcConfig": {"VpcId": function_vpc, "SubnetIds": [], "SecurityGroupIds": []}}
            functions.add_response("get_function_configuration", network, {"FunctionName": "refresher"})
    eks = session.stub("eks")
    eks.add_response("describe_cluster", {"cluster": {"name": "prod", **cluster}}, {"name": "prod"})
    request = {"clusterName": "prod", "principalArn": ROLE}
    if entry is None:
        eks.add_client_error(
            "describe_access_entry", "ResourceNotFoundException", "no entry", 404, expected_params=request
        )
    else:
        eks.add_response("describe_access_entry", {"accessEntry": entry}, request)
    aws = AwsAccess(session, "eu-west-1", unbounded, function_name)  # type: ignore[arg-type]
    return {f.name: (f.status, f"{f.detail} | {f.fix}") for f in eks_cluster(aws, "prod", ROLE)}


ACTIVE = {"status": "ACTIVE", "endpoint": "https://prod.example", "accessConfig": {"authenticationMode": "API"}}


def test_an_active_cluster_with_access_entries_and_an_entry_passes() -> None:
    found = preflight(ACTIVE, {"kubernetesGroups": ["ecr-token-refresher"]})
    assert {name: status for name, (status, _) in found.items()} == {
        "EKS cluster": Status.OK,
        "EKS authentication mode": Status.OK,
        "EKS endpoint": Status.OK,
        "EKS access entry": Status.OK,
    }
    assert "groups ecr-token-refresher" in found["EKS access entry"][1]


def test_config_map_authentication_fails_with_the_one_way_command() -> None:
    status, text = preflight({**ACTIVE, "accessConfig": {"authenticationMode": "CONFIG_MAP"}}, {})[
        "EKS authentication mode"
    ]
    assert status is Status.FAILED
    assert "aws eks update-cluster-config --name prod --access-config authenticationMode=API_AND_CONFIG_MAP" in text


@pytest.mark.parametrize(
    ("vpc", "expected"),
    [
        ({"endpointPublicAccess": False, "endpointPrivateAccess": True}, "private only"),
        ({"endpointPublicAccess": True, "publicAccessCidrs": ["203.0.113.0/24"]}, "open to 203.0.113.0/24 only"),
    ],
)
def test_an_endpoint_the_function_may_not_reach_is_named(vpc: dict[str, Any], expected: str) -> None:
    status, text = preflight({**ACTIVE, "resourcesVpcConfig": vpc}, {})["EKS endpoint"]
    assert status is Status.UNKNOWN
    assert expected in text


PRIVATE = {"endpointPublicAccess": False, "endpointPrivateAccess": True, "vpcId": "vpc-cluster"}
RESTRICTED = {"endpointPublicAccess": True, "publicAccessCidrs": ["203.0.113.0/24"], "vpcId": "vpc-cluster"}


@pytest.mark.parametrize(
    ("vpc", "function_vpc", "status", "expected"),
    [
        (PRIVATE, "vpc-cluster", Status.OK, "private only; the function runs in the cluster's VPC (vpc-cluster)"),
        (PRIVATE, "", Status.FAILED, "private only, and the function runs outside any VPC"),
        (PRIVATE, "vpc-other", Status.UNKNOWN, "the function runs in vpc-other, the cluster in vpc-cluster"),
        (RESTRICTED, "", Status.FAILED, "open to 203.0.113.0/24 only, and the function runs outside any VPC"),
        ({**RESTRICTED, "endpointPrivateAccess": True}, "vpc-cluster", Status.OK, "runs in the cluster's VPC"),
        (RESTRICTED, "vpc-cluster", Status.UNKNOWN, "private access off; the function runs in the cluster's VPC"),
        ({**RESTRICTED, "publicAccessCidrs": ["203.0.113.0/24", "0.0.0.0/0"]}, "", Status.OK, "public"),
        (PRIVATE, Exception("not authorized"), Status.UNKNOWN, "network settings could not be read"),
    ],
)
def test_in_the_lambda_the_endpoint_is_judged_against_the_functions_own_vpc(
    vpc: dict[str, Any], function_vpc: str | Exception, status: Status, expected: str
) -> None:
    found, text = preflight({**ACTIVE, "resourcesVpcConfig": vpc}, {}, function_vpc=function_vpc)["EKS endpoint"]
    assert (found, expected in text) == (status, True), text
    if status is Status.FAILED:
        assert "vpcSubnetIds" in text


def test_a_missing_access_entry_fails_with_the_command_that_makes_it() -> None:
    status, text = preflight(ACTIVE, None)["EKS access entry"]
    assert status is Status.FAILED
    assert f"aws eks create-access-entry --cluster-name prod --principal-arn {ROLE}" in text
