"""`cdk bootstrap` and `cdk deploy` of this project's app by the real CDK CLI, into moto's server, and
what was deployed read back through AWS's APIs (moto's): the template, the function, its schedule,
and the code zip the CLI uploaded.

The CLI must talk to `localhost` (with 127.0.0.1 moto takes the first label of an S3 host for a
bucket). moto cannot run Lambda-backed custom resources (it needs Docker), so the deployment turns the
run-on-deploy invocation off; moto also skips some resources (see SKIPPED_BY_MOTO).
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sandbox.moto_aws import ACCOUNT, REGION, MotoAws

ROOT = Path(__file__).resolve().parent.parent
# What `cdk bootstrap --trust` requires: the policy CloudFormation deploys with there (moto enforces none).
ADMINISTRATOR = "arn:aws:iam::aws:policy/AdministratorAccess"
CDK = ROOT / "node_modules" / ".bin" / "cdk"
# Resource types moto's CloudFormation leaves out (listed with an empty type in the stack).
SKIPPED_BY_MOTO = (
    "AWS::CloudWatch::Alarm",
    "AWS::EKS::AccessEntry",
    "AWS::Lambda::EventInvokeConfig",
    "AWS::SNS::Subscription",
    "AWS::SNS::TopicPolicy",
    "AWS::SQS::QueuePolicy",
    "AWS::CDK::Metadata",
)


@dataclass
class Deployment:
    aws: MotoAws
    output: Path  # the cloud assembly (kept between runs: an unchanged asset is not bundled again)
    log: Path

    @property
    def endpoint(self) -> str:
        return self.aws.url.replace("127.0.0.1", "localhost")

    def cli(self, *argv: str, cwd: Path = ROOT, account: str = ACCOUNT, region: str = REGION) -> None:
        """The CDK CLI with moto's endpoint and the credentials of `account` (moto's test keys for ACCOUNT),
        its output appended to the log."""
        if not CDK.exists():
            subprocess.run(["npm", "ci", "--no-audit", "--no-fund", "--silent"], cwd=ROOT, check=True)  # noqa: S607
        credentials = self.aws.account_credentials(account)
        keys = (
            {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}
            if credentials is None
            else {
                "AWS_ACCESS_KEY_ID": credentials.access_key_id,
                "AWS_SECRET_ACCESS_KEY": credentials.secret_access_key,
                "AWS_SESSION_TOKEN": credentials.session_token,
            }
        )
        environment = (
            {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
            | keys
            | {
                "AWS_ENDPOINT_URL": self.endpoint,
                "AWS_REGION": region,
                "AWS_DEFAULT_REGION": region,
                "CDK_DISABLE_CLI_TELEMETRY": "true",
                "JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION": "20",
                "NODE_NO_WARNINGS": "1",
            }
        )
        with self.log.open("a") as log:
            log.write(f"\n$ cdk {' '.join(argv)}\n")
            log.flush()
            subprocess.run([str(CDK), *argv], cwd=cwd, env=environment, stdout=log, stderr=log, check=True)  # noqa: S603

    def bootstrap(self, account: str = ACCOUNT, region: str = REGION, *, trust: str | None = None) -> None:
        """`cdk bootstrap` of one environment, with that account's credentials (the CLI bootstraps no other);
        `trust`: the account that may deploy there (with the execution policy `--trust` requires)."""
        trusting = ["--trust", trust, "--cloudformation-execution-policies", ADMINISTRATOR] if trust else []
        # Bootstrapping needs no app: run where no cdk.json is, so that the app is not synthesized.
        self.cli(
            "bootstrap", f"aws://{account}/{region}", *trusting, "--no-notices", cwd=self.log.parent, account=account
        )

    def deploy_all(self, context: dict[str, str]) -> None:
        """`cdk deploy --all` of the app with `context`, as ACCOUNT (every other environment through its
        bootstrap roles)."""
        flags = [item for key, value in context.items() for item in ("-c", f"{key}={value}")]
        self.cli("deploy", "--all", "--require-approval", "never", "--no-notices", "--output", str(self.output), *flags)

    def stacks(self, account: str = ACCOUNT, region: str = REGION) -> list[str]:
        """The stacks deployed in one environment, the bootstrap's left out."""
        client = self.aws.client(
            "cloudformation", region_name=region, credentials=self.aws.account_credentials(account)
        )
        summaries = client.list_stacks()["StackSummaries"]
        return sorted(
            s["StackName"]
            for s in summaries
            if s["StackName"] != "CDKToolkit" and s["StackStatus"] == "CREATE_COMPLETE"
        )

    def deploy(self, context: dict[str, str]) -> str:
        """Bootstrap the account, then deploy the app with `context`; the stack's name."""
        self.bootstrap()
        self.deploy_all(context)
        deployed = self.stacks()
        if len(deployed) != 1:
            raise RuntimeError(f"expected one deployed stack, found {deployed}")
        return deployed[0]

    def template(self, stack: str, account: str = ACCOUNT, region: str = REGION) -> dict[str, Any]:
        client = self.aws.client(
            "cloudformation", region_name=region, credentials=self.aws.account_credentials(account)
        )
        body = client.get_template(StackName=stack)["TemplateBody"]
        return body if isinstance(body, dict) else dict(json.loads(body))

    def physical_ids(self, stack: str, account: str = ACCOUNT, region: str = REGION) -> dict[str, str]:
        """Logical ID -> physical ID of what moto created (skipped resources have neither)."""
        client = self.aws.client(
            "cloudformation", region_name=region, credentials=self.aws.account_credentials(account)
        )
        resources = client.describe_stack_resources(StackName=stack)["StackResources"]
        return {r["LogicalResourceId"]: r["PhysicalResourceId"] for r in resources if r.get("PhysicalResourceId")}

    def skipped(self, stack: str) -> set[str]:
        """The logical IDs moto left out: it lists them with an empty resource type."""
        resources = self.aws.client("cloudformation").describe_stack_resources(StackName=stack)["StackResources"]
        created = {r["LogicalResourceId"] for r in resources if r.get("ResourceType")}
        return set(self.template(stack)["Resources"]) - created

    def function(self, name: str, account: str = ACCOUNT, region: str = REGION) -> dict[str, Any]:
        client = self.aws.client("lambda", region_name=region, credentials=self.aws.account_credentials(account))
        configuration: dict[str, Any] = client.get_function_configuration(FunctionName=name)
        return configuration

    def code(self, code_property: dict[str, Any], into: Path, account: str = ACCOUNT, region: str = REGION) -> Path:
        """The zip the CLI uploaded, from the assets bucket and key the template names, unpacked."""
        bucket = resolve(code_property["S3Bucket"], account, region)
        key = resolve(code_property["S3Key"], account, region)
        client = self.aws.client("s3", region_name=region, credentials=self.aws.account_credentials(account))
        archive = client.get_object(Bucket=bucket, Key=key)["Body"].read()
        zipfile.ZipFile(io.BytesIO(archive)).extractall(into)
        return into


def resolve(value: Any, account: str = ACCOUNT, region: str = REGION) -> str:
    """A template value with the CDK's pseudo-parameters (`${AWS::AccountId}`, Fn::Sub) made concrete."""
    if isinstance(value, dict) and "Fn::Sub" in value:
        value = value["Fn::Sub"]
    return (
        str(value)
        .replace("${AWS::AccountId}", account)
        .replace("${AWS::Region}", region)
        .replace("${AWS::Partition}", "aws")
    )
