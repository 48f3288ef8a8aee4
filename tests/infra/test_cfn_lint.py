"""cfn-lint finds nothing in the synthesized templates (config: .cfnlintrc.yaml)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.infra.conftest import Synthesized

ROOT = Path(__file__).parents[2]


@pytest.mark.parametrize("synthesized", ["default_stack", "multi"])
def test_cfn_lint_is_clean(synthesized: str, request: pytest.FixtureRequest, tmp_path: Path) -> None:
    synthesized_stack: Synthesized = request.getfixturevalue(synthesized)
    template = tmp_path / "template.json"
    template.write_text(json.dumps(synthesized_stack[1].to_json()))
    lint = subprocess.run(  # noqa: S603 - the venv's own cfn-lint
        [str(Path(sys.executable).parent / "cfn-lint"), "--config-file", str(ROOT / ".cfnlintrc.yaml"), str(template)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert (lint.returncode, lint.stdout + lint.stderr) == (0, "")
