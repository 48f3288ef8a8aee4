"""Synthesise the stack offline (no bundling, no AWS credentials) for assertions."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")

import aws_cdk as cdk
from aws_cdk.assertions import Template
from cdk_nag import AwsSolutionsChecks

from infra.bundling import BundledCode
from infra.config import DeploymentConfig
from infra.stack import EcrTokenRefresherStack

# cdk.json's context (the CDK's feature flags) and the one key a deployment must give.
DEFAULTS: dict[str, Any] = json.loads((Path(__file__).parents[2] / "cdk.json").read_text())["context"] | {
    "clusterName": "my-cluster"
}
# Skip asset bundling in tests: pip install per synth would take most of the suite's time.
NO_BUNDLING: dict[str, Any] = {"aws:cdk:bundling-stacks": []}


def config_for(**context: Any) -> DeploymentConfig:
    return DeploymentConfig.from_context(DEFAULTS | context)


def synth(**context: Any) -> tuple[EcrTokenRefresherStack, Template]:
    """The stack for cdk.json's context plus `context`, with cdk-nag attached."""
    app = cdk.App(context=NO_BUNDLING)
    code = BundledCode(cdk.aws_lambda.Code.from_asset("lambda_fn"), "0123456789abcdef" * 4)
    stack = EcrTokenRefresherStack(app, "Test", config=config_for(**context), code=code)
    cdk.Validations.of(app).add_plugins(AwsSolutionsChecks(app))
    template = Template.from_stack(stack)
    return stack, template


Synthesized = tuple[EcrTokenRefresherStack, Template]


@pytest.fixture(scope="session")
def default_stack() -> Synthesized:
    """cdk.json's context as shipped."""
    return synth()


MULTI = {
    "clusters": ["blue", "green"],
    "namespaces": ["team-*"],
    "serviceAccounts": ["default"],
    "registries": [
        "210987654321.dkr.ecr.eu-west-1.amazonaws.com",
        "333333333333.dkr.ecr.us-east-1.amazonaws.com=arn:aws:iam::333333333333:role/puller",
    ],
    "alarmEmail": "ops@example.com",
    "vpcSubnetIds": ["subnet-0123456789abcdef0"],
    "vpcSecurityGroupIds": ["sg-0123456789abcdef0"],
}


@pytest.fixture(scope="session")
def multi() -> Synthesized:
    """Two clusters, globs, service accounts, cross-account registries, a VPC and an e-mail."""
    return synth(**MULTI)
