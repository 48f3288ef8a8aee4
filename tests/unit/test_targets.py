"""Target resolution: names, globs, selector, exclusions, the kube-* default."""

from __future__ import annotations

import pytest

from lambda_fn.errors import ConfigError
from lambda_fn.models import TargetSpec
from lambda_fn.targets import narrow_targets, resolve_targets
from tests.fakes import FakeCluster


def cluster() -> FakeCluster:
    fake = FakeCluster()
    for name in ("default", "kube-system", "kube-public", "team-a", "team-b", "team-sandbox", "other"):
        fake.add_namespace(name)
    fake.add_namespace("payments", labels={"ecr": "yes"})
    fake.add_namespace("kube-ecr", labels={"ecr": "yes"})
    return fake


def names(spec: TargetSpec, fake: FakeCluster | None = None) -> list[str]:
    return [target.name for target in resolve_targets(fake or cluster(), spec)]


def test_explicit_names_need_no_listing() -> None:
    fake = cluster()
    assert names(TargetSpec(("team-a", "ghost"), None, ()), fake) == ["ghost", "team-a"]
    assert ("list_namespaces", "") not in fake.calls


def test_globs_selector_and_exclusions_combine() -> None:
    spec = TargetSpec(("team-*",), "ecr=yes", ("team-sandbox",))
    assert names(spec) == ["payments", "team-a", "team-b"]


def test_system_namespaces_only_when_named() -> None:
    assert "kube-system" not in names(TargetSpec(("*",), None, ()))
    assert "kube-system" in names(TargetSpec(("*", "kube-system"), None, ()))


def test_explicit_names_win_over_exclusions() -> None:
    assert names(TargetSpec(("team-sandbox", "team-*"), None, ("team-sandbox",))) == [
        "team-a",
        "team-b",
        "team-sandbox",
    ]


CONFIGURED = TargetSpec(("team-*", "default"), "ecr=yes")


def narrowed(narrowing: TargetSpec, configured: TargetSpec = CONFIGURED) -> list[str]:
    fake = cluster()
    return [target.name for target in narrow_targets(fake, resolve_targets(fake, configured), narrowing)]


def test_an_event_chooses_among_the_configured_targets() -> None:
    assert narrowed(TargetSpec(("team-a",), None)) == ["team-a"]
    assert narrowed(TargetSpec(("team-s*",), None)) == ["team-sandbox"]
    assert narrowed(TargetSpec((), "ecr=yes")) == ["payments"]  # kube-ecr is not configured: stays out
    assert narrowed(TargetSpec((), None, ("team-*",))) == ["default", "payments"]


def test_an_event_glob_or_selector_never_adds_a_namespace() -> None:
    assert narrowed(TargetSpec(("*",), None), TargetSpec(("team-a",), None)) == ["team-a"]
    assert narrowed(TargetSpec((), "ecr=yes"), TargetSpec(("team-a",), None)) == []


def test_an_event_naming_a_namespace_outside_the_configuration_is_rejected() -> None:
    with pytest.raises(ConfigError) as caught:
        narrowed(TargetSpec(("team-a", "kube-system", "other"), None))
    assert "kube-system, other outside the configured namespaces" in str(caught.value)
