"""docs/configuration.md's table says what the declarations say (lambda_fn/config.py): each setting's
variable, context key, flag, event field and default, and every context key the app knows."""

from __future__ import annotations

from pathlib import Path

import pytest

from infra.config import DEPLOYMENT_KEYS, KNOWN_KEYS
from lambda_fn.config import Settings
from lambda_fn.declaration import Declared, declarations
from lambda_fn.events import ManualRun

TABLE = Path(__file__).resolve().parents[2] / "docs" / "configuration.md"


def rows() -> list[list[str]]:
    """The cells of each row of the settings table (after its header)."""
    lines = [line for line in TABLE.read_text().splitlines() if line.startswith("| ")]
    return [[cell.strip() for cell in line.strip("|").split(" | ")] for line in lines[1:]]


def row_of(declared: Declared) -> list[str]:
    first = f"`{declared.env}`" if declared.env else "—"
    found = [cells for cells in rows() if cells[0] == first and (declared.env or str(declared.flag) in cells[2])]
    assert len(found) == 1, f"docs/configuration.md has {len(found)} rows for {declared.env or declared.flag}"
    return found[0]


@pytest.mark.parametrize("declared", declarations(Settings), ids=lambda declared: declared.field)
def test_each_declared_setting_has_its_row(declared: Declared) -> None:
    _, context, flag_and_event, default, _ = row_of(declared)
    if declared.context:
        assert f"`{declared.context}" in context
    else:
        assert not context.startswith("`")
    flag, _, event = flag_and_event.partition(" / ")
    assert (declared.flag or "—") in flag
    if declared.event:
        assert f"`{declared.event}`" in event
    else:
        assert not event
    if declared.default_text:
        assert f"`{declared.default_text}`" in default
    else:
        assert not default.startswith("`")


@pytest.mark.parametrize("declared", DEPLOYMENT_KEYS.values(), ids=lambda declared: declared.field)
def test_each_deployment_key_has_its_row_with_its_default(declared: Declared) -> None:
    """The deployment's own keys (infra/config.py): a row naming the key, with the default in the same
    place among the keys a row groups (`memorySize`, `timeoutSeconds` | `512`, `300`)."""
    found = [cells for cells in rows() if f"`{declared.context}`" in cells[1]]
    assert len(found) == 1, f"docs/configuration.md has {len(found)} rows for {declared.context}"
    keys = found[0][1].split("`")[1::2]
    defaults = found[0][3].split("`")[1::2]
    if declared.default_text and defaults:
        assert defaults[keys.index(str(declared.context))] == declared.default_text


def test_every_variable_and_context_key_in_the_table_is_known() -> None:
    variables = {declared.env for declared in declarations(Settings)}
    for cells in rows():
        if cells[0].startswith("`"):
            assert cells[0].strip("`") in variables
        keys = [part.split("`")[0].split(":")[0] for part in cells[1].split("`")[1::2]]
        assert set(keys) - KNOWN_KEYS <= {"ecr-token-refresher"}, cells[1]
    documented = " ".join(cells[1] for cells in rows())
    assert [key for key in sorted(KNOWN_KEYS) if f"`{key}" not in documented] == []


def test_a_manual_event_sets_the_declared_event_fields() -> None:
    events = {declared.event for declared in declarations(Settings) if declared.event}
    assert set(ManualRun.model_fields) == events | {"check"}
