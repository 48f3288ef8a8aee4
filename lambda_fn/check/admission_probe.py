"""Admission, probed with dry runs (judged by RBAC and admission, never stored): whether the shipped
policy confines this identity, and whether it admits the secret in every target namespace."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from enum import StrEnum

from lambda_fn.check.cluster_access import PROBE_SECRET
from lambda_fn.check.report import Finding, Status, shown
from lambda_fn.dockerconfig import build_dockerconfigjson
from lambda_fn.errors import (
    AlreadyExists,
    Conflict,
    Forbidden,
    Invalid,
    KubernetesError,
    NamespaceTerminating,
    NotFound,
)
from lambda_fn.models import RegistryCredential, SecretState
from lambda_fn.ports import PreflightApi
from lambda_fn.secret_contract import (
    DENIED,
    DOCKERCONFIGJSON_KEY,
    DOCKERCONFIGJSON_TYPE,
    MANAGED_BY_LABEL,
    MANAGED_BY_VALUE,
    NAME_RULE,
    POLICY_DENIAL,
    RBAC_DENIAL,
)

# The shipped policy's name rule, as kube-apiserver words the denial (the secret's name may be cut off by
# the 300 characters an error keeps).
SHIPPED_RULE = DENIED + NAME_RULE.format("")
POLICY_FIX = (
    "as the function: apply the rendered manifest on Kubernetes 1.30 or later (it holds the policy; "
    "admissionPolicy=false leaves it out)"
)


class Answer(StrEnum):
    """A dry run's answer other than a refusal by admission (which is its message)."""

    ADMITTED = "admitted"
    UNASKED = "unasked"  # RBAC decided, or the namespace is being deleted
    ABSENT = "absent"  # no such namespace


def probe_secret(name: str, namespace: str, hosts: Iterable[str] = ()) -> SecretState:
    """A secret of the written shape, with an empty login for each of `hosts` (the registries the namespace
    receives: the policy's tenant rule judges the hosts a secret holds)."""
    # Built as a run builds it (the same bytes around each host), with an empty password.
    logins = [RegistryCredential(host, password="", expires_at=datetime.now(UTC)) for host in sorted(hosts)]
    return SecretState(
        name=name,
        namespace=namespace,
        type=DOCKERCONFIGJSON_TYPE,
        labels={MANAGED_BY_LABEL: MANAGED_BY_VALUE},
        data={DOCKERCONFIGJSON_KEY: build_dockerconfigjson(logins)},
    )


def confinement(api: PreflightApi, namespace: str) -> list[Finding]:
    """A secret under another name: the shipped policy refuses it with its own rule."""
    name = "admission policy"
    try:
        api.dry_run_create(probe_secret(PROBE_SECRET, namespace))
    except (Invalid, Forbidden) as exc:
        if isinstance(exc, Forbidden) and RBAC_DENIAL.search(str(exc)):
            return []  # RBAC refused the create: reported with the permissions
        policy = POLICY_DENIAL.search(str(exc))
        if policy and SHIPPED_RULE in str(exc):
            detail = f"{policy[1]!r} confines this identity (a dry-run create of {PROBE_SECRET!r} was refused)"
            return [Finding(name, Status.OK, detail)]
        detail = f"the probe was refused, but not by the shipped policy's rule ({SHIPPED_RULE!r}): {exc}"
        return [Finding(name, Status.UNKNOWN, detail, POLICY_FIX)]
    except KubernetesError as exc:
        return [Finding(name, Status.UNKNOWN, f"could not probe: {exc}")]
    return [
        Finding(
            name,
            Status.UNKNOWN,
            f"none confines this identity: a dry-run create of a secret named {PROBE_SECRET!r} in {namespace} "
            "was allowed, so its token could create any secret wherever it may create one",
            POLICY_FIX + ". From your own kubeconfig this is expected: the policy binds only the function's identity",
        )
    ]


def admitted(
    api: PreflightApi,
    secret_name: str,
    namespaces: Sequence[str],
    *,
    concurrency: int,
    hosts: Callable[[str], Iterable[str]] = lambda _namespace: (),
) -> tuple[set[str], list[Finding]]:
    """The secret itself, holding the registries each namespace receives (`hosts`), in each target
    namespace: a stale policy (rendered before a namespace, glob, selector or tenant was added), another
    policy or a webhook refuses it there, and every run would fail in those namespaces. Returns the
    namespaces the API server says do not exist, and the finding."""
    name = f"admission of {secret_name!r}"
    with ThreadPoolExecutor(max_workers=concurrency) as pool:
        found = pool.map(lambda ns: admission(api, probe_secret(secret_name, ns, hosts(ns))), namespaces)
        answers = dict(zip(namespaces, found, strict=True))
    absent = {ns for ns, answer in answers.items() if answer == Answer.ABSENT}
    refused = {ns: answer for ns, answer in answers.items() if answer not in set(Answer)}
    unasked = [ns for ns, answer in answers.items() if answer in (Answer.UNASKED, Answer.ABSENT)]
    if refused:
        return absent, [
            Finding(
                name,
                Status.FAILED,
                f"refused in {shown(refused)}; first: {next(iter(refused.values()))}",
                "re-apply the manifest rendered for this configuration (its admission policy names the target "
                'namespaces): `make apply CONTEXT="..."`; a refusal by another policy or a '
                "webhook is for its owner to lift",
            )
        ]
    if unasked:
        detail = (
            f"admitted in {len(namespaces) - len(unasked)} of {len(namespaces)}; not asked in {shown(unasked)} "
            "(RBAC refused the create, or the namespace does not exist: see above)"
        )
        return absent, [Finding(name, Status.UNKNOWN, detail)]
    return absent, [
        Finding(name, Status.OK, f"a dry-run create is admitted in all {len(namespaces)} target namespaces")
    ]


def admission(api: PreflightApi, secret: SecretState) -> str:
    """An Answer, or the refusal: a dry-run create, or for a secret that exists already (409: validating
    admission runs before the existence check) a dry-run replace of it as an update would write it."""
    try:
        if secret.resource_version:
            api.dry_run_replace(secret)
        else:
            api.dry_run_create(secret)
    except (AlreadyExists, Conflict):
        return Answer.ADMITTED
    except NotFound:
        return Answer.ABSENT
    except NamespaceTerminating:
        return Answer.UNASKED
    except Forbidden as exc:
        return Answer.UNASKED if RBAC_DENIAL.search(str(exc)) else str(exc)
    except KubernetesError as exc:
        return str(exc)
    return Answer.ADMITTED
