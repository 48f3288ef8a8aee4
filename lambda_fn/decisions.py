"""The one per-namespace decision (create, update, adopt, repair, leave), and the secret it writes.

A managed secret is believed only as far as the API server attests it: its managedFields say which
field manager last changed which fields, and when (server time). The secret's content is this tool's
only while this tool's manager is the last to have changed its data, its label and its annotations; a
write by anyone else since (`kubectl edit`, the recipe's `kubectl apply`, a stolen token under another
manager name) makes it suspect, and a suspect secret is read, rewritten whole and reported `repaired`.
Its expiry is never believed past 12 hours after the server's time of this tool's last write, whatever
the annotations say.
"""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from enum import Enum

from lambda_fn.config import TOKEN_LIFETIME, Settings
from lambda_fn.dockerconfig import build_dockerconfigjson, read_auths, recipe_host
from lambda_fn.models import FieldPath, Outcome, RegistryCredential, SecretState, WriteRecord
from lambda_fn.secret_contract import (
    DOCKERCONFIGJSON_KEY,
    DOCKERCONFIGJSON_TYPE,
    EXPIRES_AT_ANNOTATION,
    FIELD_MANAGER,
    MANAGED_BY_LABEL,
    MANAGED_BY_VALUE,
    REFRESHED_AT_ANNOTATION,
    REGISTRIES_ANNOTATION,
)

# The fields a write by another manager may not have touched for the content to stay this tool's.
GUARDED_FIELDS: frozenset[FieldPath] = frozenset(
    {("metadata", "labels", MANAGED_BY_LABEL)}
    | {
        ("metadata", "annotations", key)
        for key in (REFRESHED_AT_ANNOTATION, EXPIRES_AT_ANNOTATION, REGISTRIES_ANNOTATION)
    }
)
OUR_DATA: FieldPath = ("data", DOCKERCONFIGJSON_KEY)
# How far the refreshed-at annotation may run ahead of the server's time of the write (clock skew).
CLOCK_SKEW = timedelta(minutes=5)
# Renewals are spread over up to this long, by namespace name: a fleet written in one run (the first
# run, a rotation) does not fall due again in one run, which would make every sixth hour's run the
# size of a first run.
RENEWAL_SPREAD = timedelta(hours=1)


class Action(Enum):
    CREATE = "create"
    UPDATE = "update"
    ADOPT = "adopt"
    READ = "read in full"  # the metadata alone cannot settle it
    DONE = "done"  # nothing to write: the verdict's outcome stands


@dataclass(frozen=True)
class Verdict:
    action: Action
    outcome: Outcome | None = None  # how the namespace ends once `action` is done; None for READ
    reason: str = ""
    foreign: bool = False  # a same-named secret this tool does not manage, left alone
    kept: bool = False  # ours and valid, kept as it is for a registry without a token: still served


@dataclass(frozen=True)
class Registries:
    """The credentials of one run, and what the registries annotation records for them."""

    credentials: tuple[RegistryCredential, ...]
    # Configured registries whose token could not be had this run (host → why): not written, not dropped.
    unavailable: Mapping[str, str] = field(default_factory=dict)

    @property
    def annotation(self) -> str:
        return ",".join(credential.scope for credential in self.credentials)

    @property
    def hosts(self) -> frozenset[str]:
        return frozenset(credential.host for credential in self.credentials)

    @property
    def expires_at(self) -> datetime:
        return min(credential.expires_at for credential in self.credentials)


def decide(state: SecretState | None, registries: Registries, settings: Settings, *, now: datetime) -> Verdict:
    """What to do with one namespace's secret, from its state as read (metadata only or whole)."""
    if state is None:
        return Verdict(Action.CREATE, Outcome.CREATED, _without(registries))
    if state.labels.get(MANAGED_BY_LABEL) != MANAGED_BY_VALUE:
        return _foreign(state, registries, settings)
    if state.type is not None and state.type != DOCKERCONFIGJSON_TYPE:
        return Verdict(
            Action.DONE,
            Outcome.FAILED,
            f"the managed secret has type {state.type!r}, which cannot be changed in place; "
            "delete it and the next run recreates it",
        )
    suspicion = suspect(state)
    threshold = renewal_threshold(state.namespace, settings)
    held = sorted(set(recorded_hosts(state)) & set(registries.unavailable))
    if held and suspicion is None and _not_due(state, threshold, now=now):
        # Rewriting it now would drop a login still valid for hours; once due, it is rewritten without it
        # (that login ends soon anyway, and the others must not end with it).
        return Verdict(
            Action.DONE, Outcome.FAILED, f"kept as it is: {_no_token(held)}; renewed once there is one", kept=True
        )
    if not settings.force and suspicion is None and _is_fresh(state, registries, threshold, now=now):
        return Verdict(Action.DONE, Outcome.UNCHANGED)
    if state.data is None:
        return Verdict(Action.READ)
    if state.immutable:
        return Verdict(
            Action.DONE,
            Outcome.FAILED,
            "the secret is marked immutable, so its token cannot be renewed in place; delete it (the next run "
            "recreates it) and do not set `immutable` on it",
        )
    if suspicion is not None:
        return Verdict(Action.UPDATE, Outcome.REPAIRED, suspicion)
    return Verdict(Action.UPDATE, Outcome.UPDATED, _joined(_registry_change(state, registries), _without(registries)))


def _foreign(state: SecretState, registries: Registries, settings: Settings) -> Verdict:
    """A same-named secret without our label: the kubectl recipe's (adopt it), or someone else's."""
    unlabelled = f"a secret named {state.name!r} exists without the label {MANAGED_BY_LABEL}={MANAGED_BY_VALUE}"
    if not settings.adopt_existing:
        return Verdict(Action.DONE, Outcome.SKIPPED, f"{unlabelled}; left untouched (adoption is off)", foreign=True)
    if state.data is None:
        return Verdict(Action.READ)
    host = recipe_host(state.data.get(DOCKERCONFIGJSON_KEY))
    adoptable = state.type == DOCKERCONFIGJSON_TYPE and not state.immutable
    if adoptable and host is not None and host in registries.unavailable:
        return Verdict(Action.DONE, Outcome.FAILED, f"the kubectl recipe's secret kept as it is: {_no_token([host])}")
    if adoptable and host in registries.hosts:
        return Verdict(
            Action.ADOPT, Outcome.ADOPTED, _joined(f"the kubectl recipe's secret for {host}", _without(registries))
        )
    return Verdict(
        Action.DONE,
        Outcome.SKIPPED,
        f"{unlabelled} and is not the kubectl recipe's pull secret for an ECR registry served here (one compact "
        "`auths` entry, as `kubectl create secret docker-registry` writes it); left untouched",
        foreign=True,
    )


def suspect(state: SecretState) -> str | None:
    """Why a managed secret's content may not be this tool's, from the server's record of its writes;
    None when the record shows this tool's manager as the last to change its data, label and annotations."""
    return _suspicion(state.writes, state.annotations.get(REFRESHED_AT_ANNOTATION))


# A run asks this of each secret more than once (deciding it, then reading its expiry) and it depends on
# the server's record alone: worked out once (the 20,000-namespace bench's steady state, `make bench-apiserver`).
@functools.lru_cache(maxsize=1024)
def _suspicion(writes: tuple[WriteRecord, ...] | None, refreshed_annotation: str | None) -> str | None:
    if writes is None:
        return "the API server keeps no record of who wrote the secret (managedFields); rewritten to be sure"
    ours = [write for write in writes if write.manager == FIELD_MANAGER]
    others = sorted(
        {write.manager for write in writes if write.manager != FIELD_MANAGER and _touches_ours(write.fields)}
    )
    if others:
        return f"repaired: changed by another writer since this tool's last write ({', '.join(others)})"
    if len(ours) != 1 or ours[0].time is None or OUR_DATA not in ours[0].fields:
        return "repaired: the API server does not record this tool as the last writer of its data"
    extra = sorted(path[1] for path in ours[0].fields if len(path) == 2 and path[0] == "data" and path != OUR_DATA)
    if extra:
        return f"repaired: it holds data keys this tool never writes ({', '.join(extra)})"
    refreshed_at = _timestamp(refreshed_annotation)
    if refreshed_at is None or refreshed_at > ours[0].time + CLOCK_SKEW:
        return "repaired: its refreshed-at annotation is later than the API server's time of the write"
    return None


def _touches_ours(fields: frozenset[FieldPath]) -> bool:
    return bool(fields & GUARDED_FIELDS) or any(path[:1] == ("data",) and len(path) == 2 for path in fields)


def attested_write(state: SecretState) -> datetime | None:
    """The server's time of this tool's last write of the secret, when nothing suspect happened since."""
    if suspect(state) is not None or state.writes is None:
        return None
    return next(write.time for write in state.writes if write.manager == FIELD_MANAGER)


def _is_fresh(state: SecretState, registries: Registries, threshold: timedelta, *, now: datetime) -> bool:
    """Same registries and roles, exactly those in the data (when read), and more than the threshold left."""
    if state.annotations.get(REGISTRIES_ANNOTATION) != registries.annotation:
        return False
    if state.data is not None:
        auths = read_auths(state.data.get(DOCKERCONFIGJSON_KEY)) or {}
        if set(auths) != registries.hosts or set(state.data) != {DOCKERCONFIGJSON_KEY}:
            return False
    return _not_due(state, threshold, now=now)


def _not_due(state: SecretState, threshold: timedelta, *, now: datetime) -> bool:
    """More than `threshold` left before the secret's token expires, as far as the server's record goes."""
    expires_at = recorded_expiry(state)
    return expires_at is not None and expires_at - now > threshold


def renewal_threshold(namespace: str, settings: Settings) -> timedelta:
    """When this namespace's secret falls due: the configured threshold plus a share of the spread that
    its name fixes (the same every run, so renewals stay spread), never so much that a new token would
    be due at once."""
    spread = min(RENEWAL_SPREAD, (TOKEN_LIFETIME - settings.refresh_threshold) / 2)
    share = int.from_bytes(hashlib.blake2b(namespace.encode(), digest_size=2).digest(), "big") / 65536
    return settings.refresh_threshold + spread * share


def recorded_expiry(state: SecretState | None) -> datetime | None:
    """When a managed secret's token expires, as far as the server's record supports it: never later than
    12 hours after the server's time of this tool's last write; None if it is not ours, or suspect."""
    if state is None or state.labels.get(MANAGED_BY_LABEL) != MANAGED_BY_VALUE:
        return None
    written_at = attested_write(state)
    expires_at = _timestamp(state.annotations.get(EXPIRES_AT_ANNOTATION))
    if written_at is None or expires_at is None:
        return None
    return min(expires_at, written_at + TOKEN_LIFETIME)


def _timestamp(text: str | None) -> datetime | None:
    try:
        moment = datetime.fromisoformat(text or "")
    except ValueError:
        return None
    return moment if moment.tzinfo is not None else None


def _registry_change(state: SecretState, registries: Registries) -> str:
    """Names the hosts an update adds and retires (empty when only the token is renewed)."""
    before = set(recorded_hosts(state))
    added, retired = sorted(registries.hosts - before), sorted(before - registries.hosts)
    parts = [f"adds {', '.join(added)}"] * bool(added and before) + [f"retires {', '.join(retired)}"] * bool(retired)
    return "registries changed: " + "; ".join(parts) if parts else ""


def _without(registries: Registries) -> str:
    """Names the configured registries a write leaves out this run (empty when none)."""
    return "written without " + unserved(registries.unavailable) if registries.unavailable else ""


# Why a tenant's registry is not served in a namespace its names and globs do not match (lambda_fn/tenancy.py).
TENANT_UNLISTED = "tenant {}'s selector could not be listed"


def unserved(unavailable: Mapping[str, str]) -> str:
    """The registries a run could not serve, by cause: `a, b: no token this run; c: tenant t's selector ...`
    (a token's failure is in the run's errors, once)."""
    causes: dict[str, list[str]] = {}
    for host, why in sorted(unavailable.items()):
        causes.setdefault(why if why.startswith(TENANT_UNLISTED.partition("{")[0]) else "no token this run", []).append(
            host
        )
    return "; ".join(f"{', '.join(hosts)}: {why}" for why, hosts in causes.items())


def _no_token(hosts: list[str]) -> str:
    return f"no token for {', '.join(hosts)} this run (the run's errors say why)"


def _joined(*reasons: str) -> str:
    return "; ".join(reason for reason in reasons if reason)


def recorded_hosts(state: SecretState) -> list[str]:
    """The hosts this tool wrote last time, from the registries annotation (`host` or `host=role`)."""
    entries = state.annotations.get(REGISTRIES_ANNOTATION, "").split(",")
    return [entry.partition("=")[0] for entry in entries if entry]


def desired_secret(
    state: SecretState | None,
    registries: Registries,
    *,
    namespace: str,
    secret_name: str,
    now: datetime,
) -> SecretState:
    """The secret this tool writes: one data key holding exactly the served registries' logins (whatever
    else was planted in the data goes), with labels, annotations and the raw object of `state` kept."""
    old = state or SecretState(secret_name, namespace, DOCKERCONFIGJSON_TYPE)
    return replace(
        old,
        type=DOCKERCONFIGJSON_TYPE,
        labels={**old.labels, MANAGED_BY_LABEL: MANAGED_BY_VALUE},
        annotations={
            **old.annotations,
            REFRESHED_AT_ANNOTATION: now.isoformat(timespec="seconds"),
            EXPIRES_AT_ANNOTATION: registries.expires_at.isoformat(timespec="seconds"),
            REGISTRIES_ANNOTATION: registries.annotation,
        },
        data={DOCKERCONFIGJSON_KEY: build_dockerconfigjson(registries.credentials)},
    )
