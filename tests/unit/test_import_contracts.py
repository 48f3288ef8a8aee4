"""Every module of the function is under an import contract (pyproject.toml): in the core, which imports
neither the AWS SDK nor the kubernetes client, or among the adapters and front doors, which leave the
kubernetes client to lambda_fn.k8s. A new module fails here until it is put in one of the two."""

from __future__ import annotations

import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
KUBERNETES_ADAPTER = "lambda_fn.k8s"


def test_every_module_is_in_the_core_or_an_adapter_contract() -> None:
    contracts = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]["contracts"]
    core, adapters = ({*contract["source_modules"]} for contract in contracts[:2])
    assert set(contracts[0]["forbidden_modules"]) == {"boto3", "botocore", "kubernetes"}
    assert contracts[1]["forbidden_modules"] == ["kubernetes"]
    modules = {f"lambda_fn.{path.stem}" for path in (ROOT / "lambda_fn").glob("*.py") if path.stem != "__init__"}
    modules |= {f"lambda_fn.{path.name}" for path in (ROOT / "lambda_fn").iterdir() if (path / "__init__.py").exists()}
    assert core & adapters == set()
    assert sorted(modules - core - adapters - {KUBERNETES_ADAPTER}) == []
    assert sorted((core | adapters) - modules) == []
