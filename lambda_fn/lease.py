"""One run at a time per deployment and cluster: a coordination.k8s.io Lease held for the run.

A run that finds the Lease held (renewed within its duration by another holder) does nothing and says
so: the holder is doing the work, and two runs over the same secrets would double every request and
meet each other's writes as conflicts (which the resourceVersion guards turn into retries, never into
lost data). The holder renews it while the run lasts; a holder that dies (a Lambda killed at its
timeout) leaves it to expire within LEASE_SECONDS, shorter than the schedule's next run, so no run waits
on a dead one. Taking and renewing are guarded writes (the resourceVersion read); a write of ours that a
retry repeats (409, though it landed) is recognised by reading the holder back.

The Lease is an object of the manifest (`make apply` creates it with the administrator's rights), so the
function needs only get and update on that one name: no create in kube-system, where the control plane
keeps its own leader-election Leases.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from lambda_fn.errors import AlreadyExists, Conflict, KubernetesError, explain
from lambda_fn.models import LEASE_NAMESPACE, LeaseState
from lambda_fn.ports import ClusterApi

LEASE_SECONDS = 60
RENEW_SECONDS = 20


@dataclass(frozen=True)
class RunLease:
    """Whether this run may go on, and why not: held by another run, or the Lease could not be used."""

    held: bool
    holder_elsewhere: str | None = None  # another run holds it: this run does nothing
    error: str | None = None  # the Lease could not be used: the run goes on without it, and fails


@contextmanager
def run_lease(cluster: ClusterApi, name: str, holder: str, *, now: Callable[[], datetime]) -> Iterator[RunLease]:
    """Hold the Lease `kube-system/<name>` for the duration of the `with` block, renewing it meanwhile."""
    try:
        taken = _take(cluster, name, holder, now=now)
    except KubernetesError as exc:
        yield RunLease(held=False, error=f"could not take the Lease {LEASE_NAMESPACE}/{name}: {explain(exc)}")
        return
    if isinstance(taken, str):
        yield RunLease(held=False, holder_elsewhere=taken)
        return
    stop = threading.Event()
    renewer = threading.Thread(target=_renew_until, args=(cluster, taken, stop, now), name="lease", daemon=True)
    renewer.start()
    try:
        yield RunLease(held=True)
    finally:
        stop.set()
        renewer.join()
        _release(cluster, holder, name)


def _take(cluster: ClusterApi, name: str, holder: str, *, now: Callable[[], datetime]) -> LeaseState | str:
    """The Lease, now held by `holder`; or, when another run holds it, who and until when."""
    current = cluster.read_lease(LEASE_NAMESPACE, name)
    if current is not None and current.held_by_another(holder, now()):
        return f"{current.holder} (renewed {current.renewed_at:%H:%M:%S} UTC, for {current.duration_seconds}s)"
    wanted = LeaseState(name, LEASE_NAMESPACE, holder, LEASE_SECONDS, now())
    try:
        if current is None:
            return cluster.create_lease(wanted)
        return cluster.replace_lease(replace(wanted, resource_version=current.resource_version))
    except (AlreadyExists, Conflict):
        landed = cluster.read_lease(LEASE_NAMESPACE, name)
        if landed is not None and landed.holder == holder:
            return landed  # our own write, repeated by a retry after it had landed
        return f"{landed.holder if landed else 'another run'}, which took it a moment ago"


def _renew_until(cluster: ClusterApi, lease: LeaseState, stop: threading.Event, now: Callable[[], datetime]) -> None:
    """Renew every RENEW_SECONDS; a failed renewal is tried again at the next tick while the Lease has not
    expired, and a conflict reads it back (our own retried write, or lost to a run that took it after
    it expired: then there is nothing left to renew)."""
    expires_at = now() + timedelta(seconds=LEASE_SECONDS)
    while not stop.wait(RENEW_SECONDS) and now() < expires_at:
        try:
            lease = cluster.replace_lease(replace(lease, renewed_at=now()))
        except Conflict:
            current = _read_or_none(cluster, lease.name)
            if current is None or current.holder != lease.holder:
                return
            lease = current
            continue  # ours: renewed at the next tick, from what the server holds
        except KubernetesError:
            continue
        expires_at = now() + timedelta(seconds=LEASE_SECONDS)


def _read_or_none(cluster: ClusterApi, name: str) -> LeaseState | None:
    try:
        return cluster.read_lease(LEASE_NAMESPACE, name)
    except KubernetesError:
        return None


def _release(cluster: ClusterApi, holder: str, name: str) -> None:
    """Hand the Lease back at once, so the next run need not wait for it to expire."""
    try:
        current = cluster.read_lease(LEASE_NAMESPACE, name)
        if current is not None and current.holder == holder:
            cluster.replace_lease(replace(current, holder=None))
    except KubernetesError:
        pass  # it expires within LEASE_SECONDS anyway
