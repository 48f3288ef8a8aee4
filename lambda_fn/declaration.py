"""A setting declared once, on its `Settings` field: its name in each place it can be set (the
function's environment, the CDK context, a CLI flag, a manual event's field), how its text reads, its
bounds and its help. The parsers, the validation, the CDK context reader, the CLI flags and the
configuration table's test all read these declarations; nothing else spells a setting's names.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import timedelta
from enum import Enum
from typing import Any, Literal

Surface = Literal["env", "context", "flag", "event"]
DECLARED = "declared"  # the key of a field's metadata that holds its declaration


class Kind(Enum):
    """How a setting's text (an environment variable's value) reads."""

    TEXT = "text"
    NAMES = "names"  # comma-separated
    FLAG = "flag"  # true/false
    NUMBER = "number"  # a whole number, of `unit` when the setting is a duration
    LIST = "list"  # comma-separated entries, each read by the setting's own `parse`
    JSON = "json"  # a JSON document (a list of objects), read by the setting's own `parse`


@dataclass(frozen=True)
class Declared:
    field: str
    default: Any
    env: str | None
    kind: Kind
    context: str | None  # the CDK context key
    per_cluster: bool  # the deployment sets it for each cluster (not from its own context key)
    flag: str | None
    event: str | None  # the manual event's field
    bounds: tuple[int, int] | None  # of the number (in `unit` for a duration)
    unit: timedelta | None
    parse: Callable[[Any], Any] | None  # each entry of a LIST (text), or a JSON setting's document
    help: str
    metavar: str | None  # the flag's argument, in --help

    def name(self, surface: Surface) -> str | None:
        return {"env": self.env, "context": self.context, "flag": self.flag, "event": self.event}[surface]

    def read(self, raw: str) -> Any:
        """The value of the text `raw`; ValueError with one message per fault."""
        if self.kind is Kind.NAMES:
            return split(raw)
        if self.kind is Kind.FLAG:
            if raw.lower() in {"true", "1", "yes"}:
                return True
            if raw.lower() in {"false", "0", "no"}:
                return False
            raise ValueError(f"{raw!r} is not a boolean; use true or false")
        if self.kind is Kind.NUMBER:
            low, high = self.bounds or (0, 0)
            if not raw.isdigit() or not low <= int(raw) <= high:
                raise ValueError(f"{raw!r} is not a whole number from {low} to {high}")
            return int(raw) * self.unit if self.unit else int(raw)
        if self.kind is Kind.LIST:
            return self.read_entries(split(raw))
        if self.kind is Kind.JSON:
            assert self.parse is not None  # noqa: S101 - declared with the kind
            try:
                document = json.loads(raw)
            except json.JSONDecodeError as exc:
                raise ValueError(f"not JSON ({exc.msg} at character {exc.pos})") from None
            return self.parse(document)
        return self.parse(raw) if self.parse else raw

    def read_entries(self, entries: Iterable[str]) -> tuple[Any, ...]:
        """A LIST setting's entries, each read whole; ValueError with one message per bad entry."""
        assert self.parse is not None  # noqa: S101 - declared with the kind
        values, faults = [], []
        for entry in entries:
            try:
                values.append(self.parse(entry))
            except ValueError as exc:
                faults.append(str(exc))
        if faults:
            raise ValueError(*faults)
        return tuple(values)

    def number(self, value: Any) -> int:
        """A NUMBER setting's value as the whole number its text gives (minutes, for a duration of minutes)."""
        return int(value / self.unit) if self.unit else int(value)

    def out_of_bounds(self, value: Any) -> str | None:
        """The fix when `value` lies outside the bounds; None when within (or unbounded)."""
        if self.bounds is None:
            return None
        low, high = self.bounds
        if low <= self.number(value) <= high:
            return None
        unit = {timedelta(minutes=1): " minutes", timedelta(seconds=1): " seconds"}.get(self.unit, "")  # type: ignore[arg-type]
        return f"must be from {low} to {high}{unit}"

    @property
    def default_text(self) -> str | None:
        """The default as the configuration table and `--help` write it; None when there is none."""
        if self.default is None or self.default == () or self.default is dataclasses.MISSING:
            return None
        if self.kind is Kind.FLAG:
            return str(self.default).lower()
        if self.kind is Kind.NUMBER:
            return str(self.number(self.default))
        if self.kind is Kind.NAMES:
            return ",".join(self.default)
        if self.kind is Kind.JSON:
            return None
        return str(self.default)


def setting(
    default: Any = dataclasses.MISSING,
    *,
    env: str | None = None,
    kind: Kind = Kind.TEXT,
    context: str | None = None,
    per_cluster: bool = False,
    flag: str | None = None,
    event: str | None = None,
    bounds: tuple[int, int] | None = None,
    unit: timedelta | None = None,
    parse: Callable[[Any], Any] | None = None,
    help: str = "",
    metavar: str | None = None,
) -> Any:
    """A dataclass field declaring a setting (see Declared)."""
    declaration = {
        "env": env,
        "kind": kind,
        "context": context,
        "per_cluster": per_cluster,
        "flag": flag,
        "event": event,
        "bounds": bounds,
        "unit": unit,
        "parse": parse,
        "help": help,
        "metavar": metavar,
    }
    return dataclasses.field(default=default, metadata={DECLARED: declaration})


def declarations(settings_class: type) -> tuple[Declared, ...]:
    """Every declared setting of `settings_class`, in field order."""
    return tuple(
        Declared(field=field.name, default=field.default, **field.metadata[DECLARED])
        for field in dataclasses.fields(settings_class)
        if DECLARED in field.metadata
    )


def names(settings_class: type, surface: Surface) -> Mapping[str, str]:
    """Each setting's name in `surface`, by field: for messages that name what the user wrote."""
    return {
        declared.field: name
        for declared in declarations(settings_class)
        if (name := declared.name(surface)) is not None
    }


def split(text: str) -> tuple[str, ...]:
    return tuple(item.strip() for item in text.split(",") if item.strip())
