"""CDK composition root: context -> DeploymentConfig -> stack -> cdk-nag -> synth (+ the RBAC manifest)."""

from __future__ import annotations

import sys
from pathlib import Path

import aws_cdk as cdk
from cdk_nag import AwsSolutionsChecks

from infra.config import DeploymentConfig
from infra.rbac import to_yaml
from infra.stack import EcrTokenRefresherStack
from lambda_fn.errors import ConfigError


def main() -> None:
    app = cdk.App()
    try:
        config = DeploymentConfig.from_context(app.node.try_get_context)
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
    stack_name = app.node.try_get_context("stackName") or "EcrTokenRefresher"
    # Env-agnostic on purpose: synth needs no AWS credentials; account and region come at deploy.
    EcrTokenRefresherStack(app, stack_name, config=config)
    cdk.Validations.of(app).add_plugins(AwsSolutionsChecks(app))
    assembly = app.synth()
    (Path(assembly.directory) / "rbac.yaml").write_text(to_yaml(config))


if __name__ == "__main__":
    main()
