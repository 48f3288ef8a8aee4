"""The expiry watchdog's figure, read from the EMF line the handler prints: seconds until the first
target secret expires, as they stand after the run (0 where a namespace is left without one)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from lambda_fn.errors import RefreshFailed
from localkube import FaultRule, LocalKube
from tests.emf import emf_values

Invoke = Callable[..., dict[str, Any]]
TWELVE_HOURS = 12 * 3600


def published(printed: str) -> list[float]:
    return emf_values(printed, "SecondsUntilFirstExpiry")


def test_fresh_secrets_publish_twelve_hours(kube: LocalKube, invoke: Invoke, logs: Callable[[], str]) -> None:
    invoke()
    assert TWELVE_HOURS - 120 < published(logs())[-1] <= TWELVE_HOURS


def test_a_namespace_left_without_a_secret_publishes_zero(
    kube: LocalKube, invoke: Invoke, logs: Callable[[], str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("NAMESPACES", "team-*")
    kube.faults.append(FaultRule(method="POST", path="/namespaces/team-b/", status=500))
    with pytest.raises(RefreshFailed):
        invoke()
    assert published(logs())[-1] == 0


def test_a_secret_that_could_not_be_renewed_publishes_its_own_expiry(
    kube: LocalKube, invoke: Invoke, logs: Callable[[], str]
) -> None:
    invoke()
    secret = kube.store.get("secrets", "default", "regcred")
    three_hours = datetime.now(UTC) + timedelta(hours=3)
    secret["metadata"]["annotations"]["ecr-token-refresher/expires-at"] = three_hours.isoformat(timespec="seconds")
    kube.store.replace("secrets", "default", "regcred", secret, manager="ecr-token-refresher")  # time passing
    kube.faults.append(FaultRule(method="PUT", status=500))
    with pytest.raises(RefreshFailed):
        invoke()
    assert 3 * 3600 - 120 < published(logs())[-1] <= 3 * 3600


@pytest.mark.parametrize(
    "fault",
    [
        FaultRule(method="GET", path="^/api/v1/namespaces$", status=401),  # access entry deleted, token expired
        FaultRule(method="GET", path="^/api/v1/namespaces$", status=403),  # RBAC drift
        FaultRule(method="GET", path="^/api/v1/namespaces$", drop=True),  # unreachable
    ],
    ids=["401", "403", "unreachable"],
)
def test_a_glob_run_that_cannot_list_namespaces_publishes_zero_and_a_failure(
    kube: LocalKube, invoke: Invoke, logs: Callable[[], str], monkeypatch: pytest.MonkeyPatch, fault: FaultRule
) -> None:
    """Unknown is never healthy: the README's own `team-*` with a cluster that refuses or cannot be reached
    used to publish 12 hours left and no failed namespace, every minute, while every secret expired."""
    monkeypatch.setenv("NAMESPACES", "team-*")
    invoke()
    kube.faults.append(fault)
    with pytest.raises(RefreshFailed):
        invoke()
    assert published(logs())[-1] == 0
    assert emf_values(logs(), "NamespacesFailed")[-1] >= 1


def test_unknown_targets_publish_at_most_what_the_named_secrets_hold(
    kube: LocalKube, invoke: Invoke, logs: Callable[[], str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Names beside a glob are still served when the list fails; the figure is theirs, never more."""
    monkeypatch.setenv("NAMESPACES", "default,team-*")
    invoke()
    kube.faults.append(FaultRule(method="GET", path="^/api/v1/namespaces$", status=403))
    with pytest.raises(RefreshFailed):
        invoke()
    assert TWELVE_HOURS - 120 < published(logs())[-1] <= TWELVE_HOURS
    assert emf_values(logs(), "NamespacesFailed")[-1] == 1
