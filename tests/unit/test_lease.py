"""One run at a time: the Lease is taken, renewed, released; a run that finds it held does nothing."""

from __future__ import annotations

from datetime import timedelta

import pytest

from lambda_fn import lease as lease_module
from lambda_fn.errors import Forbidden
from lambda_fn.lease import LEASE_SECONDS, run_lease
from lambda_fn.models import LEASE_NAMESPACE, LeaseState, lease_name
from tests.fakes import NOW, FakeCluster

KEY = (LEASE_NAMESPACE, lease_name("regcred"))


def test_a_free_lease_is_taken_for_the_run_and_handed_back() -> None:
    cluster = FakeCluster()
    with run_lease(cluster, "regcred", "run-1", now=lambda: NOW) as lease:
        assert lease.held
        assert cluster.leases[KEY].holder == "run-1"
        assert cluster.leases[KEY].duration_seconds == LEASE_SECONDS
    assert cluster.leases[KEY].holder is None  # the next run need not wait for it to expire


def test_a_lease_another_run_renewed_within_its_duration_stops_this_run() -> None:
    cluster = FakeCluster()
    cluster.leases[KEY] = LeaseState(KEY[1], LEASE_NAMESPACE, "run-0", LEASE_SECONDS, NOW - timedelta(seconds=30), "7")
    with run_lease(cluster, "regcred", "run-1", now=lambda: NOW) as lease:
        assert not lease.held
        assert lease.holder_elsewhere is not None
        assert lease.holder_elsewhere.startswith("run-0")
    assert cluster.leases[KEY].holder == "run-0"  # not touched


def test_a_lease_left_by_a_dead_run_is_taken_once_it_expired() -> None:
    cluster = FakeCluster()
    expired = NOW - timedelta(seconds=LEASE_SECONDS + 1)
    cluster.leases[KEY] = LeaseState(KEY[1], LEASE_NAMESPACE, "run-0", LEASE_SECONDS, expired, "7")
    with run_lease(cluster, "regcred", "run-1", now=lambda: NOW) as lease:
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
    with run_lease(cluster, "regcred", "run-1", now=lambda: NOW) as lease:
        assert not lease.held
        assert lease.holder_elsewhere == "another run, which took it a moment ago"


def test_the_lease_is_renewed_while_the_run_lasts(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(lease_module, "RENEW_SECONDS", 0.01)
    cluster = FakeCluster()
    clock = iter(NOW + timedelta(seconds=second) for second in range(10_000))
    with run_lease(cluster, "regcred", "run-1", now=lambda: next(clock)) as lease:
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
    with run_lease(cluster, "regcred", "run-1", now=lambda: NOW) as lease:
        assert not lease.held
        assert lease.holder_elsewhere is None
        assert lease.error is not None
        assert "make apply" in lease.error


def test_long_secret_names_give_a_lease_name_an_object_can_have() -> None:
    assert lease_name("regcred") == "ecr-token-refresher.regcred"
    long = lease_name("a" * 253)
    assert len(long) == 253
    assert long != lease_name("a" * 252 + "b")
