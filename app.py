"""CDK composition root: context -> DeploymentConfig -> a stack per environment -> cdk-nag -> synth (+ the
Kubernetes manifests)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import aws_cdk as cdk
from cdk_nag import AwsSolutionsChecks

from infra.config import DeploymentConfig
from infra.rbac import manifest_files
from infra.stack import environment_stacks
from lambda_fn.aws import registry_host
from lambda_fn.errors import ConfigError


def main() -> None:
    app = cdk.App()
    try:
        config = DeploymentConfig.from_context(app.node.get_all_context())
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
    environment_stacks(app, config)
    cdk.Validations.of(app).add_plugins(AwsSolutionsChecks(app))
    assembly = app.synth()
    # The CDK CLI names the account and region when it has credentials; the admission policy then lets
    # the function adopt its own registry's kubectl secrets too.
    account, region = os.environ.get("CDK_DEFAULT_ACCOUNT"), os.environ.get("CDK_DEFAULT_REGION")
    own_registry = registry_host(account, region) if account and region else None
    for name, manifest in manifest_files(config, own_registry=own_registry).items():
        (Path(assembly.directory) / name).write_text(manifest)


if __name__ == "__main__":
    main()
