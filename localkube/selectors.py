"""Label selectors as kube-apiserver parses them: =, ==, !=, in, notin, exists, !exists, >, <."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from localkube.status import StatusError

INT64_MAX = 2**63 - 1
_TOKEN = re.compile(r"\s*(\(|\)|,|!=|==|=|!|>|<|[^\s(),=!<>]+)")
_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")
_KEY = re.compile(
    r"^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$"
)


@dataclass(frozen=True)
class Requirement:
    key: str
    operator: str  # "in", "notin", "exists", "!", "gt", "lt"
    values: frozenset[str] = frozenset()

    def matches(self, labels: Mapping[str, str]) -> bool:
        checks: dict[str, Callable[[], bool]] = {
            "exists": lambda: self.key in labels,
            "!": lambda: self.key not in labels,
            "in": lambda: labels.get(self.key) in self.values,
            "notin": lambda: labels.get(self.key) not in self.values,
            "gt": lambda: _integer(labels.get(self.key)) > int(next(iter(self.values))),
            "lt": lambda: _integer(labels.get(self.key)) < int(next(iter(self.values))),
        }
        return checks[self.operator]()


def _integer(value: str | None) -> float:
    """A label's value as kube-apiserver compares it with > and < (strconv.ParseInt: ASCII digits, within
    int64); NaN, which never matches, otherwise."""
    return int(value) if value and _is_int64(value) else float("nan")


def _is_int64(text: str) -> bool:
    return text.isascii() and text.isdigit() and int(text) <= INT64_MAX


def parse_selector(text: str) -> tuple[Requirement, ...]:
    """Parse a selector; StatusError 400 with the apiserver's wording when it is malformed."""
    tokens = _tokenize(text)
    requirements: list[Requirement] = []
    position = 0
    while position < len(tokens):
        requirement, position = _requirement(tokens, position, text)
        requirements.append(requirement)
        if position < len(tokens):
            if tokens[position] != ",":
                raise _bad(text, f"found '{tokens[position]}', expected: ','")
            position += 1
            if position == len(tokens):
                raise _bad(text, "found '', expected: identifier after ','")
    return tuple(requirements)


def matches(requirements: tuple[Requirement, ...], labels: Mapping[str, str]) -> bool:
    return all(requirement.matches(labels) for requirement in requirements)


def _tokenize(text: str) -> list[str]:
    tokens, position = [], 0
    stripped = text.strip()
    while position < len(stripped):
        match = _TOKEN.match(stripped, position)
        if not match:  # pragma: no cover - the pattern accepts every non-space character
            raise _bad(text, "unexpected character")
        tokens.append(match.group(1))
        position = match.end()
    return tokens


def _requirement(tokens: list[str], position: int, text: str) -> tuple[Requirement, int]:
    if tokens[position] == "!":
        key = _key(tokens, position + 1, text)
        return Requirement(key, "!"), position + 2
    key = _key(tokens, position, text)
    position += 1
    if position == len(tokens) or tokens[position] == ",":
        return Requirement(key, "exists"), position
    operator = tokens[position]
    if operator in ("=", "==", "!="):
        value = tokens[position + 1] if position + 1 < len(tokens) and tokens[position + 1] != "," else ""
        _value(value, text)
        consumed = 2 if value else 1
        return Requirement(key, "notin" if operator == "!=" else "in", frozenset({value})), position + consumed
    if operator in ("in", "notin"):
        return _set_requirement(tokens, position + 1, key, operator, text)
    if operator in (">", "<"):
        value = tokens[position + 1] if position + 1 < len(tokens) else ""
        if not _is_int64(_value(value, text)):
            raise _bad(
                text, f"values[0]: Invalid value: \"{value}\": for 'Gt', 'Lt' operators, the value must be an integer"
            )
        return Requirement(key, "gt" if operator == ">" else "lt", frozenset({value})), position + 2
    raise _bad(text, f"found '{operator}', expected: in, notin, =, ==, !=, gt, lt")


def _set_requirement(tokens: list[str], position: int, key: str, operator: str, text: str) -> tuple[Requirement, int]:
    if position >= len(tokens) or tokens[position] != "(":
        raise _bad(text, "found '', expected: '('")
    values: set[str] = set()
    position += 1
    while position < len(tokens) and tokens[position] != ")":
        if tokens[position] != ",":
            values.add(_value(tokens[position], text))
        position += 1
    if position >= len(tokens):
        raise _bad(text, "found '', expected: ')'")
    return Requirement(key, operator, frozenset(values or {""})), position + 1


def _key(tokens: list[str], position: int, text: str) -> str:
    key = tokens[position] if position < len(tokens) else ""
    if not _KEY.match(key) or len(key.rpartition("/")[2]) > 63:
        raise _bad(text, f'invalid label key "{key}": name part must consist of alphanumeric characters')
    return key


def _value(value: str, text: str) -> str:
    if len(value) > 63 or not _VALUE.match(value):
        raise _bad(text, f'invalid label value: "{value}": must be 63 characters or less')
    return value


def _bad(text: str, detail: str) -> StatusError:
    return StatusError(400, "BadRequest", f"unable to parse requirement: {detail} (selector {text!r})")
