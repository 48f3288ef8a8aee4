"""The function's asset is named by everything it is made of: a changed pin, requirement or bundling
recipe is a new asset (a new S3 key cdk-assets uploads), so no two bundles ever share one name."""

from __future__ import annotations

import re
import shutil
from pathlib import Path
from typing import Any

import aws_cdk as cdk
import pytest
from aws_cdk.assertions import Template

from infra import bundling
from infra.refresher import RUNTIME
from infra.stack import EcrTokenRefresherStack
from tests.infra.conftest import NO_BUNDLING, config_for


def s3_key(**context: Any) -> str:
    """The function code's S3 key in a synthesized template (bundling skipped, hashing not)."""
    app = cdk.App(context=NO_BUNDLING)
    config = config_for(**context)
    stack = EcrTokenRefresherStack(app, "Asset", config=config)
    function = next(iter(Template.from_stack(stack).find_resources("AWS::Lambda::Function").values()))
    key: str = function["Properties"]["Code"]["S3Key"]
    return key


@pytest.fixture
def recipe_copy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The recipe's files, copied so that a test may change one."""
    copies = []
    for path in bundling.RECIPE:
        copy = tmp_path / path.name
        shutil.copy(path, copy)
        copies.append(copy)
    monkeypatch.setattr(bundling, "RECIPE", tuple(copies))
    return tmp_path


def test_a_changed_pin_is_a_new_asset(recipe_copy: Path) -> None:
    before = s3_key()
    lock = recipe_copy / "requirements.lock"
    lock.write_text(lock.read_text().replace("urllib3==2.8.0", "urllib3==2.8.1"))
    assert s3_key() != before


def test_the_architecture_and_the_source_are_in_the_name(recipe_copy: Path) -> None:
    assert s3_key() != s3_key(architecture="x86_64")
    before = bundling.bundle_hash(python_version="3.13", platform="manylinux2014_aarch64")
    (recipe_copy / "bundling.py").write_text("# another recipe\n")
    assert bundling.bundle_hash(python_version="3.13", platform="manylinux2014_aarch64") != before
    assert RUNTIME.name == "python3.13"


def test_the_same_inputs_give_the_same_name() -> None:
    assert s3_key() == s3_key()


def test_every_aws_service_the_function_creates_a_client_for_keeps_its_model_in_the_bundle() -> None:
    """The trim keeps botocore's model of each service named in a `.client("...")` call of lambda_fn (a
    missing one is `UnknownServiceError` at run time, as `check` in VPC mode once was for `lambda`)."""
    called = set()
    for source in Path(bundling.SOURCE_PACKAGE).rglob("*.py"):
        called |= set(re.findall(r"\.client\(\s*\"([a-z0-9-]+)\"", source.read_text()))
    assert called >= {"ecr", "eks", "sts", "secretsmanager", "lambda"}
    assert called <= bundling.KEPT_BOTOCORE_DATA, called - bundling.KEPT_BOTOCORE_DATA
