"""The venv `make` builds is the lock, exactly, and the file two CDK packages both ship is aws-cdk-lib's.

`make` installs with `uv pip sync` from requirements.lock and then writes aws-cdk-lib again, alone
(see the Makefile): these tests fail when a step resolves something the lock does not pin, or when the
install order leaves aws-cdk.cloud-assembly-schema's copy of the shared module on disk.
"""

from __future__ import annotations

import base64
import hashlib
import sys
import sysconfig
from importlib import metadata
from pathlib import Path

from packaging.utils import canonicalize_name

from tests.locks import locked

ROOT = Path(__file__).parents[2]
SHARED_MODULE = "aws_cdk/cloud_assembly_schema/__init__.py"


def installed() -> dict[str, str]:
    """What the venv's site-packages hold (not what the source tree on sys.path may add)."""
    site_packages = sysconfig.get_paths()["purelib"]
    return {canonicalize_name(d.metadata["Name"]): d.version for d in metadata.distributions(path=[site_packages])}


def test_the_venv_holds_exactly_what_the_lock_pins() -> None:
    """Nothing missing, nothing extra, no version other than the pin (a resolver at install time would show here)."""
    assert sys.prefix != sys.base_prefix, "run from make's venv"
    assert installed() == locked(ROOT / "requirements.lock")


def test_the_installer_pin_is_the_locks_own() -> None:
    """installer.lock (what the venv's own pip installs first) pins the uv that requirements.lock pins."""
    assert locked(ROOT / "installer.lock") == {"uv": locked(ROOT / "requirements.lock")["uv"]}


def test_the_shared_cloud_assembly_schema_module_is_aws_cdk_libs_copy() -> None:
    """aws-cdk-lib's RECORD hash matches the file on disk; with the schema package's copy jsii fails at synth."""
    lib = metadata.distribution("aws-cdk-lib")
    (record,) = [f for f in lib.files or [] if str(f) == SHARED_MODULE]
    assert record.hash is not None
    on_disk = Path(str(lib.locate_file(record))).read_bytes()
    digest = base64.urlsafe_b64encode(hashlib.new(record.hash.mode, on_disk).digest()).rstrip(b"=").decode()
    assert digest == record.hash.value, "aws-cdk.cloud-assembly-schema's copy is on disk: reinstall aws-cdk-lib last"
