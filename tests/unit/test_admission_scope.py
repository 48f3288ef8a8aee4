"""The admission policy's scope matches what the refresher resolves: globs as fnmatch reads them, selector
requirements as kube-apiserver parses them (their CEL runs on kube-apiserver in test_admission_policy)."""

from __future__ import annotations

import re
from fnmatch import fnmatchcase

import pytest

from infra.admission import glob_regex
from lambda_fn.config import Requirement, parse_selector

NAMES = ["team-a", "team-b", "team-", "teams", "x-team-a", "team-a-b", "a", "ab", "kube-system", "app1", "app12"]


@pytest.mark.parametrize(
    "glob", ["team-*", "*-a", "team-?", "*", "app[0-9]", "app[!0-9]*", "kube-*", "t*m-[ab]", "[a-c][!a-m0-9]*"]
)
def test_a_glob_regex_matches_exactly_what_fnmatch_matches(glob: str) -> None:
    regex = re.compile(glob_regex(glob))
    assert [name for name in NAMES if regex.search(name)] == [name for name in NAMES if fnmatchcase(name, glob)]


def test_a_selector_parses_into_its_requirements() -> None:
    assert parse_selector("team=a, env in (dev,prod), !legacy, tier!=x, n>5, owner, app==web, k notin (a)") == (
        Requirement("team", "=", ("a",)),
        Requirement("env", "in", ("dev", "prod")),
        Requirement("legacy", "!"),
        Requirement("tier", "!=", ("x",)),
        Requirement("n", ">", ("5",)),
        Requirement("owner", ""),
        Requirement("app", "=", ("web",)),
        Requirement("k", "notin", ("a",)),
    )


@pytest.mark.parametrize("selector", ["", "a in ()", "a in (b", "=a", "a b", "a>b"])
def test_what_is_no_selector_parses_to_none(selector: str) -> None:
    assert parse_selector(selector) is None
