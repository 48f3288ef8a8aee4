"""Bundle the function without Docker: pip installs wheels for the Lambda's platform and Python.

There is no Docker fallback: a failed pip install fails the synth with pip's own message. What the
code never loads is left out; each cut is measured by `make asset`. The asset's hash covers
everything the bundle is made of (the code, the pins, this recipe, the platform and Python), so a
changed pin is a new asset that cdk-assets uploads and the function runs.
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jsii
from aws_cdk import AssetHashType, BundlingOptions, DockerImage, ILocalBundling
from aws_cdk import aws_lambda as lambda_

ROOT = Path(__file__).resolve().parent.parent
SOURCE_PACKAGE = ROOT / "lambda_fn"
LOCK = SOURCE_PACKAGE / "requirements.lock"
# Left out of the bundle (globs, with their dist-info): lambda_fn.k8s never imports the async client
# (kubernetes.aio) nor, therefore, aiohttp and its helpers; console scripts are never run. boto3 and
# botocore are shipped, at the versions tested, rather than run from the runtime's copy against the
# bundle's urllib3; botocore keeps the models of the services the function calls, and X-Ray's, which
# the X-Ray SDK loads at import.
LEFT_OUT = (
    "bin",
    "kubernetes/aio",
    "aiohttp",
    "aiohttp_retry",
    "aiosignal",
    "aiohappyeyeballs",
    "frozenlist",
    "multidict",
    "propcache",
    "yarl",
)
# kubernetes.client.api loads each API module lazily; lambda_fn.k8s uses only CoreV1Api.
KEPT_API_MODULES = {"__init__.py", "core_v1_api.py"}
KEPT_BOTOCORE_DATA = {
    "ecr",
    "eks",
    "sts",
    "secretsmanager",
    "lambda",  # check, in the Lambda: GetFunctionConfiguration on itself (its VPC, for a private endpoint)
    "xray",
    "endpoints.json",
    "partitions.json",
    "sdk-default-configuration.json",
    "_retry.json",
}


@jsii.implements(ILocalBundling)
class LocalPipBundling:
    def __init__(self, *, python_version: str, platform: str = "manylinux2014_aarch64") -> None:
        self._python_version = python_version
        self._platform = platform

    def try_bundle(self, output_dir: str, *, image: DockerImage, **_: Any) -> bool:
        bundle_into(Path(output_dir), python_version=self._python_version, platform=self._platform)
        return True


def bundle_into(
    output: Path,
    *,
    python_version: str,
    platform: str = "manylinux2014_aarch64",
    trim: bool = True,
    precompile: bool = True,
) -> None:
    """The locked wheels (every one checked against its hash) for the runtime, trimmed, plus lambda_fn.

    `trim` and `precompile` exist so bench/asset_footprint.py can measure what each one buys.
    """
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
            # The lock is complete: resolving here could pick an unpinned release for an extra.
            "--no-deps",
            "--require-hashes",
            "-r",
            str(LOCK),
        ],
        check=True,
    )
    if trim:
        _trim(output)
    shutil.copytree(
        SOURCE_PACKAGE, output / "lambda_fn", ignore=shutil.ignore_patterns("__pycache__", "*.txt", "*.lock")
    )
    if precompile:
        compile_bytecode(output, python_version=python_version)


def _trim(output: Path) -> None:
    for pattern in LEFT_OUT:
        for path in [output / pattern, *output.glob(f"{pattern}-*.dist-info")]:
            shutil.rmtree(path, ignore_errors=True)
    for module in (output / "kubernetes" / "client" / "api").glob("*.py"):
        if module.name not in KEPT_API_MODULES:
            module.unlink()
    for model in (output / "botocore" / "data").iterdir():
        if model.name in KEPT_BOTOCORE_DATA:
            continue
        if model.is_dir():
            shutil.rmtree(model)
        else:
            model.unlink()


def compile_bytecode(output: Path, *, python_version: str) -> bool:
    """`.pyc` built by the runtime's own Python when one is on this machine (the runtime's
    /var/task is read-only, so otherwise every cold start compiles). unchecked-hash: valid
    whatever the zip does to file times."""
    interpreter = runtime_interpreter(python_version)
    if interpreter is None:
        return False
    subprocess.run(  # noqa: S603 - a local interpreter, our bundle folder
        [interpreter, "-m", "compileall", "-q", "-j", "0", "--invalidation-mode", "unchecked-hash", str(output)],
        check=True,
    )
    return True


def runtime_interpreter(python_version: str) -> str | None:
    """A working `python<version>` here: pyenv's install, else one on PATH (pyenv shims may fail)."""
    candidates = [str(p) for p in sorted(Path.home().glob(f".pyenv/versions/{python_version}.*/bin/python"))]
    candidates += filter(None, [shutil.which(f"python{python_version}")])
    for candidate in candidates:
        probe = subprocess.run([candidate, "--version"], capture_output=True, check=False)  # noqa: S603
        if probe.returncode == 0:
            return candidate
    return None


PLATFORMS = {"arm64": "manylinux2014_aarch64", "x86_64": "manylinux2014_x86_64"}
# What the bundle is made of, besides lambda_fn/ itself: any change here is a new asset.
RECIPE = (LOCK, Path(__file__).resolve())


@dataclass(frozen=True)
class BundledCode:
    code: lambda_.Code
    hash: str


def bundle_hash(*, python_version: str, platform: str) -> str:
    """sha256 over the function's source files, the pins, this recipe, the platform and Python."""
    digest = hashlib.sha256(f"python{python_version} {platform}\n".encode())
    sources = sorted(path for path in SOURCE_PACKAGE.rglob("*") if path.is_file() and "__pycache__" not in path.parts)
    named = [(str(path.relative_to(ROOT)), path) for path in sources] + [(path.name, path) for path in RECIPE]
    for name, path in named:
        digest.update(name.encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()


def bundled_code(runtime: lambda_.Runtime, *, architecture: str) -> BundledCode:
    python_version = runtime.name.removeprefix("python")
    platform = PLATFORMS[architecture]
    asset_hash = bundle_hash(python_version=python_version, platform=platform)
    code = lambda_.Code.from_asset(
        str(SOURCE_PACKAGE),
        asset_hash_type=AssetHashType.CUSTOM,
        asset_hash=asset_hash,
        bundling=BundlingOptions(
            # Required by the API, never pulled: local bundling always succeeds or raises.
            image=DockerImage.from_registry("unused-local-bundling-only"),
            local=LocalPipBundling(python_version=python_version, platform=platform),
        ),
    )
    return BundledCode(code, asset_hash)
