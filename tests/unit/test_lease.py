"""One run at a time: the Lease is taken, renewed, released; a run that finds it held does nothing."""

from __future__ import annotations

from datetime import timedelta

import pytest

from lambda_fn import lease as lease_module
from lambda_fn.errors import AlreadyExists, ApiUnavailable, Forbidden
from lambda_fn.lease import LEASE_SECONDS, run_lease
from lambda_fn.models import LEASE_NAMESPACE, LeaseState
from tests.fakes import NOW, FakeCluster

KEY = (LEASE_NAMESPACE, "ecr-token-refresher")


def test_a_free_lease_is_taken_for_the_run_and_handed_back() -> None:
    cluster = FakeCluster()
    with run_lease(cluster, "ecr-token-refresher", "run-1", now=lambda: NOW) as lease:
        assert lease.held
        assert cluster.leases[KEY].holder == "run-1"
        assert cluster.leases[KEY].duration_seconds == LEASE_SECONDS
    assert cluster.leases[KEY].holder is None  # the next run need not wait for it to expire


def test_a_lease_another_run_renewed_within_its_duration_stops_this_run() -> None:
    cluster = FakeCluster()
    cluster.leases[KEY] = LeaseState(KEY[1], LEASE_NAMESPACE, "run-0", LEASE_SECONDS, NOW - timedelta(seconds=30), "7")
    with run_lease(cluster, "ecr-token-refresher", "run-1", now=lambda: NOW) as lease:
        assert not lease.held
        assert lease.holder_elsewhere is not None
        assert lease.holder_elsewhere.startswith("run-0")
    assert cluster.leases[KEY].holder == "run-0"  # not touched


def test_a_lease_left_by_a_dead_run_is_taken_once_it_expired() -> None:
    cluster = FakeCluster()
    expired = NOW - timedelta(seconds=LEASE_SECONDS + 1)
    cluster.leases[KEY] = LeaseState(KEY[1], LEASE_NAMESPACE, "run-0", LEASE_SECONDS, expired, "7")
    with run_lease(cluster, "ecr-token-refresher", "run-1", now=lambda: NOW) as lease:
        assert lease.held
        assert cluster.leases[KEY].holder == "run-1"


def test_two_runs_taking_it_at_once_cannot_both_hold_it() -> None:
    cluster = FakeCluster()
    original = cluster.read_lease

    def read_then_lose_the_race(namespace: str, name: str) -> LeaseState | None:
        found = original(namespace, name)
        cluster.leases[KEY] = LeaseState(KEY[1], LEASE_NAMESPACE, "run-0", LEASE_SECONDS, NOW, "9")
        return found

    cluster.read_lease = read_then_lose_the_race  # type: ignore[method-assign]
    with run_lease(cluster, "ecr-token-refresher", "run-1", now=lambda: NOW) as lease:
        assert not lease.held
        assert lease.holder_elsewhere == "run-0, which took it a moment ago"


def test_the_lease_is_renewed_while_the_run_lasts(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(lease_module, "RENEW_SECONDS", 0.01)
    cluster = FakeCluster()
    clock = iter(NOW + timedelta(seconds=second) for second in range(10_000))
    with run_lease(cluster, "ecr-token-refresher", "run-1", now=lambda: next(clock)) as lease:
        assert lease.held
        taken_at = cluster.leases[KEY].renewed_at
        while cluster.calls.count(("replace_lease", LEASE_NAMESPACE)) < 2:
            pass
        assert taken_at is not None
        assert cluster.leases[KEY].renewed_at > taken_at  # type: ignore[operator]


def test_a_lease_that_cannot_be_used_lets_the_run_go_on_and_says_why() -> None:
    cluster = FakeCluster()

    def refused() -> None:
        raise Forbidden('403 Forbidden: leases.coordination.k8s.io "x" is forbidden')

    cluster.hooks["read_lease", LEASE_NAMESPACE] = refused
    with run_lease(cluster, "ecr-token-refresher", "run-1", now=lambda: NOW) as lease:
        assert not lease.held
        assert lease.holder_elsewhere is None
        assert lease.error is not None
        assert "make apply" in lease.error


def test_a_renewal_stamped_in_the_future_is_not_believed_past_a_few_seconds() -> None:
    """A holder whose clock runs hours fast must not keep the Lease for hours after it died."""
    cluster = FakeCluster()
    ahead = NOW + timedelta(hours=3)
    cluster.leases[KEY] = LeaseState(KEY[1], LEASE_NAMESPACE, "run-0", LEASE_SECONDS, ahead, "7")
    with run_lease(cluster, "ecr-token-refresher", "run-1", now=lambda: NOW) as lease:
        assert lease.held


def test_our_own_write_repeated_by_a_retry_is_recognised() -> None:
    """The first create landed, the retry got 409: the run holds the Lease, it does not step aside."""
    cluster = FakeCluster()
    original = cluster.create_lease

    def landed_then_conflict(lease: LeaseState) -> LeaseState:
        original(lease)
        raise AlreadyExists("409 AlreadyExists")

    cluster.create_lease = landed_then_conflict  # type: ignore[method-assign]
    with run_lease(cluster, "ecr-token-refresher", "run-1", now=lambda: NOW) as lease:
        assert lease.held


def test_a_failed_renewal_is_tried_again(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(lease_module, "RENEW_SECONDS", 0.01)
    cluster = FakeCluster()
    failures = iter([ApiUnavailable("503 ServiceUnavailable")])

    def once_unavailable() -> None:
        failure = next(failures, None)
        if failure is not None:
            raise failure

    cluster.hooks["replace_lease", LEASE_NAMESPACE] = once_unavailable
    clock = iter(NOW + timedelta(seconds=second) for second in range(10_000))
    with run_lease(cluster, "ecr-token-refresher", "run-1", now=lambda: next(clock)) as lease:
        assert lease.held
        while cluster.calls.count(("replace_lease", LEASE_NAMESPACE)) < 3:
            pass
    assert cluster.leases[KEY].resource_version != "1"  # renewed after the failure
