"""Bundle the function without Docker: pip installs wheels for the Lambda's platform and Python.

Docker stays the fallback (CDK uses it when try_bundle returns False), but nothing here needs it.
What the runtime already has or the code never loads is left out; each cut is measured in the
close notes of the CDK issue and by `make asset`.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import jsii
from aws_cdk import BundlingOptions, DockerImage, ILocalBundling
from aws_cdk import aws_lambda as lambda_

ROOT = Path(__file__).resolve().parent.parent
SOURCE_PACKAGE = ROOT / "lambda_fn"
# The Lambda Python runtime ships boto3/botocore (and their s3transfer); the async client
# (kubernetes.aio, ~40 MB) is never imported by lambda_fn.k8s.
LEFT_OUT = ("boto3", "botocore", "s3transfer", "kubernetes/aio", "bin")


@jsii.implements(ILocalBundling)
class LocalPipBundling:
    def __init__(self, *, python_version: str, platform: str = "manylinux2014_aarch64") -> None:
        self._python_version = python_version
        self._platform = platform

    def try_bundle(self, output_dir: str, *, image: DockerImage, **_: Any) -> bool:
        bundle_into(Path(output_dir), python_version=self._python_version, platform=self._platform)
        return True


def bundle_into(output: Path, *, python_version: str, platform: str = "manylinux2014_aarch64") -> None:
    """Wheels of lambda_fn/requirements.txt for the runtime, minus LEFT_OUT, plus lambda_fn itself."""
    subprocess.run(  # noqa: S603 - fixed arguments, our own requirements
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
            "--target",
            str(output),
            "--platform",
            platform,
            "--only-binary=:all:",
            "--python-version",
            python_version,
            "--implementation",
            "cp",
            "--no-compile",
            "-r",
            str(SOURCE_PACKAGE / "requirements.txt"),
            "-c",
            str(ROOT / "constraints.txt"),
        ],
        check=True,
    )
    for pattern in LEFT_OUT:
        for path in [output / pattern, *output.glob(f"{pattern}-*.dist-info")]:
            shutil.rmtree(path, ignore_errors=True)
    shutil.copytree(SOURCE_PACKAGE, output / "lambda_fn", ignore=shutil.ignore_patterns("__pycache__", "*.txt"))
    compile_bytecode(output, python_version=python_version)


def compile_bytecode(output: Path, *, python_version: str) -> bool:
    """`.pyc` built by the runtime's own Python when one is on this machine (the runtime's
    /var/task is read-only, so otherwise every cold start compiles). unchecked-hash: valid
    whatever the zip does to file times."""
    interpreter = shutil.which(f"python{python_version}") or next(
        (str(p) for p in sorted(Path.home().glob(f".pyenv/versions/{python_version}.*/bin/python"))), None
    )
    if interpreter is None:
        return False
    subprocess.run(  # noqa: S603 - a local interpreter, our bundle folder
        [interpreter, "-m", "compileall", "-q", "-j", "0", "--invalidation-mode", "unchecked-hash", str(output)],
        check=True,
    )
    return True


def code_asset(runtime: lambda_.Runtime) -> lambda_.Code:
    python_version = runtime.name.removeprefix("python")
    return lambda_.Code.from_asset(
        str(SOURCE_PACKAGE),
        bundling=BundlingOptions(
            image=runtime.bundling_image,
            local=LocalPipBundling(python_version=python_version),
            # Docker fallback: the same install inside the runtime's build image.
            command=[
                "bash",
                "-c",
                "pip install -r requirements.txt -t /asset-output && cp -r . /asset-output/lambda_fn",
            ],
        ),
    )
