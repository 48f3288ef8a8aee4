"""The admission policies on a real kube-apiserver: with the rendered manifest as the only RBAC, a stolen
token of the function's role cannot create other secrets, write outside its target namespaces (globs,
selector, exclusions), freeze a secret, touch another team's, or rewrite a service account beyond adding
the secret, while the refresher's first, fresh and update runs, its service-account patches and its
adoption of the kubectl recipe's secret all pass."""

from __future__ import annotations

import subprocess
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client as k8s
from kubernetes.client.exceptions import ApiException

from infra.rbac import render
from localkube.kubeconfig import write_kubeconfig
from sandbox.moto_aws import OWN_REGISTRY, AwsCredentials
from sandbox.real_apiserver import ADMIN_TOKEN, RealKube
from tests.integration.real_cluster import (
    DOCKERCONFIG,
    Cluster,
    Invoke,
    configure,
    outcomes,
    role_client,
    secret,
    wait_for_policy,
)
from tests.selectors import NUMERIC_LABELS

pytestmark = pytest.mark.apiserver
POLICY = "ValidatingAdmissionPolicy 'ecr-token-refresher'"
# `{"auths":{}}`, what a failed fetch or a careless edit leaves: no login for any registry.
DOCKERCONFIG_WITHOUT_OURS = "eyJhdXRocyI6e319"
ACCOUNTS_POLICY = "ValidatingAdmissionPolicy 'ecr-token-refresher-serviceaccounts'"


def denied_by_the_policy(call: Callable[[], object], policy: str = POLICY) -> str:
    with pytest.raises(ApiException) as refused:
        call()
    assert refused.value.status == 422, refused.value.body
    assert policy in (refused.value.body or "")
    return str(refused.value.body)


def recipe_secret(kube: RealKube, namespace: str, tmp_path: Path, server: str = OWN_REGISTRY) -> None:
    """The classic cron job's secret, made by kubectl itself."""
    admin = write_kubeconfig(tmp_path / "admin", server=kube.url, ca_pem=kube.ca_pem, token=ADMIN_TOKEN)
    subprocess.run(  # noqa: S603 - kubectl from PATH, fixed arguments
        [  # noqa: S607
            "kubectl",
            f"--kubeconfig={admin}",
            "-n",
            namespace,
            "create",
            "secret",
            "docker-registry",
            "regcred",
            f"--docker-server={server}",
            "--docker-username=AWS",
            "--docker-password=from-the-cron-job",
        ],
        check=True,
        capture_output=True,
    )


@pytest.fixture
def confined(
    real: tuple[RealKube, Cluster], credentials: AwsCredentials, monkeypatch: pytest.MonkeyPatch
) -> tuple[RealKube, Cluster, Cluster, str]:
    """Team namespaces served by glob, the manifest (RBAC and policy) applied, the policy enforced."""
    kube, admin = real
    prefix = f"ap{uuid.uuid4().hex[:6]}"
    config = configure(monkeypatch, namespaces=[f"{prefix}-*"])
    admin.apply(render(config, own_registry=OWN_REGISTRY))
    for team in ("a", "b"):
        admin.namespace(f"{prefix}-{team}")
    identity = role_client(kube, credentials)
    wait_for_policy(identity, f"{prefix}-a", "'ecr-token-refresher'", admitted=ours_in(identity, f"{prefix}-a"))
    return kube, admin, identity, prefix


def ours_in(identity: Cluster, namespace: str) -> Callable[[], object]:
    """A dry-run create of the secret the refresher writes: the policy must admit it."""
    ours = secret("regcred", DOCKERCONFIG, labels={"app.kubernetes.io/managed-by": "ecr-token-refresher"})
    return lambda: identity.core.create_namespaced_secret(namespace, ours, dry_run="All")


def test_the_refreshers_runs_pass_under_the_policy(
    confined: tuple[RealKube, Cluster, Cluster, str], invoke: Invoke
) -> None:
    _, admin, _, prefix = confined
    names = [f"{prefix}-a", f"{prefix}-b"]
    assert outcomes(invoke()) == dict.fromkeys(names, "created")
    assert outcomes(invoke()) == dict.fromkeys(names, "unchanged")
    assert outcomes(invoke({"force": True})) == dict.fromkeys(names, "updated")
    assert admin.auths(names[0])[OWN_REGISTRY]["username"] == "AWS"


def test_a_stolen_token_cannot_create_other_secrets(confined: tuple[RealKube, Cluster, Cluster, str]) -> None:
    _, _, identity, prefix = confined
    token_secret = secret(
        "admin-token",
        "kubernetes.io/service-account-token",
        annotations={"kubernetes.io/service-account.name": "default"},
    )
    bootstrap = k8s.V1Secret(
        metadata=k8s.V1ObjectMeta(name="bootstrap-token-abcdef"),
        type="bootstrap.kubernetes.io/token",
        string_data={
            "token-id": "abcdef",
            "token-secret": "0123456789abcdef",
            "usage-bootstrap-authentication": "true",
        },
    )
    managed = {"app.kubernetes.io/managed-by": "ecr-token-refresher"}
    attacks = {
        "a service-account token in kube-system": lambda: identity.core.create_namespaced_secret(
            "kube-system", token_secret
        ),
        "a bootstrap token": lambda: identity.core.create_namespaced_secret("kube-system", bootstrap),
        "any secret in a target namespace": lambda: identity.core.create_namespaced_secret(
            f"{prefix}-a", secret("foo")
        ),
        "our name, without our label": lambda: identity.core.create_namespaced_secret(
            f"{prefix}-a", secret("regcred", DOCKERCONFIG)
        ),
        "our name and label, in kube-system": lambda: identity.core.create_namespaced_secret(
            "kube-system", secret("regcred", DOCKERCONFIG, labels=managed)
        ),
    }
    messages = {what: denied_by_the_policy(attack) for what, attack in attacks.items()}
    assert "may only write the secret named regcred" in messages["a bootstrap token"]
    assert "must carry the label" in messages["our name, without our label"]
    assert "only write in its target namespaces" in messages["our name and label, in kube-system"]


def test_a_stolen_token_cannot_write_outside_the_target_namespaces_or_freeze_a_secret(
    confined: tuple[RealKube, Cluster, Cluster, str],
) -> None:
    _, admin, identity, prefix = confined
    outside = admin.namespace(f"x{prefix}-a")  # not matched by the glob {prefix}-*
    managed = {"app.kubernetes.io/managed-by": "ecr-token-refresher"}
    ours = secret("regcred", DOCKERCONFIG, labels=managed)
    message = denied_by_the_policy(lambda: identity.core.create_namespaced_secret(outside, ours))
    assert "only write in its target namespaces" in message
    frozen = secret("regcred", DOCKERCONFIG, labels=managed)
    frozen.immutable = True
    message = denied_by_the_policy(lambda: identity.core.create_namespaced_secret(f"{prefix}-a", frozen))
    assert "may not make a secret immutable" in message
    identity.core.create_namespaced_secret(f"{prefix}-a", ours)
    current = admin.core.read_namespaced_secret("regcred", f"{prefix}-a")
    current.immutable = True
    message = denied_by_the_policy(lambda: identity.core.replace_namespaced_secret("regcred", f"{prefix}-a", current))
    assert "may not make a secret immutable" in message


def test_a_stolen_token_cannot_give_the_secret_an_owner_or_a_finalizer(
    confined: tuple[RealKube, Cluster, Cluster, str],
) -> None:
    """An owner the garbage collector deletes would take the secret with it (a delete by proxy); a
    finalizer would block its deletion. Neither on create, nor added on update."""
    _, admin, identity, prefix = confined
    namespace, managed = f"{prefix}-a", {"app.kubernetes.io/managed-by": "ecr-token-refresher"}
    doomed = admin.core.create_namespaced_config_map(
        namespace, k8s.V1ConfigMap(metadata=k8s.V1ObjectMeta(name="doomed"))
    )
    owner = k8s.V1OwnerReference(api_version="v1", kind="ConfigMap", name="doomed", uid=str(doomed.metadata.uid))
    owned = secret("regcred", DOCKERCONFIG, labels=managed, owner_references=[owner])
    held = secret("regcred", DOCKERCONFIG, labels=managed, finalizers=["example.com/hold"])
    for attempt in (owned, held):
        message = denied_by_the_policy(partial(identity.core.create_namespaced_secret, namespace, attempt))
        assert "may not set or change metadata." in message
    identity.core.create_namespaced_secret(namespace, secret("regcred", DOCKERCONFIG, labels=managed))
    for field, key, value in [
        ("owner_references", "ownerReferences", [owner]),
        ("finalizers", "finalizers", ["example.com/hold"]),
    ]:
        changed = identity.core.read_namespaced_secret("regcred", namespace)
        setattr(changed.metadata, field, value)
        message = denied_by_the_policy(partial(identity.core.replace_namespaced_secret, "regcred", namespace, changed))
        assert f"may not set or change metadata.{key}" in message
    stored = admin.core.read_namespaced_secret("regcred", namespace)
    assert (stored.metadata.owner_references, stored.metadata.finalizers) == (None, None)


def test_a_selector_scope_is_enforced_on_the_namespaces_labels(
    real: tuple[RealKube, Cluster], credentials: AwsCredentials, monkeypatch: pytest.MonkeyPatch, invoke: Invoke
) -> None:
    kube, admin = real
    prefix = f"sel{uuid.uuid4().hex[:6]}"
    selector = f"scope={prefix},tier notin (legacy),!frozen"
    config = configure(monkeypatch, namespaceSelector=selector, excludeNamespaces=[f"{prefix}-excluded"])
    admin.apply(render(config, own_registry=OWN_REGISTRY))
    served = admin.namespace(f"{prefix}-served", {"scope": prefix, "tier": "web"})
    outside = {
        "another scope": admin.namespace(f"{prefix}-other", {"scope": "other"}),
        "a tier not in the set": admin.namespace(f"{prefix}-legacy", {"scope": prefix, "tier": "legacy"}),
        "a label that must be absent": admin.namespace(f"{prefix}-frozen", {"scope": prefix, "frozen": "yes"}),
        "an excluded name": admin.namespace(f"{prefix}-excluded", {"scope": prefix}),
    }
    identity = role_client(kube, credentials)
    # The policy reads a namespace's labels from the API server's cache, a moment behind a new namespace.
    wait_for_policy(identity, served, "'ecr-token-refresher'", admitted=ours_in(identity, served))
    managed = {"app.kubernetes.io/managed-by": "ecr-token-refresher"}
    for what, namespace in outside.items():
        message = denied_by_the_policy(
            partial(
                identity.core.create_namespaced_secret,
                namespace,
                secret("regcred", DOCKERCONFIG, labels=managed),
                dry_run="All",
            )
        )
        assert "only write in its target namespaces" in message, what
    assert outcomes(invoke()) == {served: "created"}


def test_a_numeric_selector_admits_exactly_the_namespaces_kube_apiserver_lists(
    real: tuple[RealKube, Cluster], credentials: AwsCredentials, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`>` and `<` in CEL read label values as the API server's selector does (int64, leading zeros,
    nothing out of range), and a value int() cannot read denies nothing by error."""
    kube, admin = real
    prefix = f"num{uuid.uuid4().hex[:6]}"
    selector = f"scope={prefix},size>5"
    admin.apply(render(configure(monkeypatch, namespaceSelector=selector), own_registry=OWN_REGISTRY))
    names = {
        key: admin.namespace(f"{prefix}-{key}", {"scope": prefix, "size": value})
        for key, value in NUMERIC_LABELS.items()
    }
    identity = role_client(kube, credentials)
    wait_for_policy(identity, names["seven"], "'ecr-token-refresher'", admitted=ours_in(identity, names["seven"]))
    wait_for_policy(identity, names["padded"], "'ecr-token-refresher'", admitted=ours_in(identity, names["padded"]))
    listed = {ns.metadata.name for ns in admin.core.list_namespace(label_selector=selector).items}
    refusals = {namespace: refusal(ours_in(identity, namespace)) for namespace in names.values()}
    admitted = {namespace for namespace, refused in refusals.items() if refused is None}
    assert admitted == listed == {names["seven"], names["largest"], names["padded"]}
    assert all("only write in its target namespaces" in refused for refused in refusals.values() if refused)


def refusal(call: Callable[[], object]) -> str | None:
    """The API server's answer when it refuses, None when it admits."""
    try:
        call()
    except ApiException as exc:
        return f"{exc.status} {exc.body}"
    return None


@pytest.fixture
def confined_accounts(
    real: tuple[RealKube, Cluster], credentials: AwsCredentials, monkeypatch: pytest.MonkeyPatch
) -> tuple[Cluster, Cluster, str]:
    """As `confined`, with the default service accounts configured: RBAC may patch them everywhere."""
    kube, admin = real
    prefix = f"sa{uuid.uuid4().hex[:6]}"
    config = configure(monkeypatch, namespaces=[f"{prefix}-*"], serviceAccounts=["default"])
    admin.apply(render(config, own_registry=OWN_REGISTRY))
    admin.namespace(f"{prefix}-a")
    admin.namespace(f"x{prefix}")
    system_accounts = admin.core.list_namespaced_service_account("kube-system").items
    if not any(account.metadata.name == "default" for account in system_accounts):  # no controller-manager here
        admin.core.create_namespaced_service_account(
            "kube-system", k8s.V1ServiceAccount(metadata=k8s.V1ObjectMeta(name="default"))
        )
    identity = role_client(kube, credentials)
    dry, ours = {"automountServiceAccountToken": True}, {"imagePullSecrets": [{"name": "regcred"}]}
    wait_for_policy(
        identity,
        f"{prefix}-a",
        "'ecr-token-refresher-serviceaccounts'",
        denied=lambda: identity.core.patch_namespaced_service_account("default", f"{prefix}-a", dry, dry_run="All"),
        admitted=lambda: identity.core.patch_namespaced_service_account("default", f"{prefix}-a", ours, dry_run="All"),
    )
    return admin, identity, prefix


def test_a_stolen_token_can_only_add_the_secret_to_service_accounts(
    confined_accounts: tuple[Cluster, Cluster, str], invoke: Invoke
) -> None:
    admin, identity, prefix = confined_accounts
    target = f"{prefix}-a"
    admin.core.patch_namespaced_service_account(
        "default", target, {"imagePullSecrets": [{"name": "theirs"}], "automountServiceAccountToken": False}
    )
    patch = identity.core.patch_namespaced_service_account
    attacks: dict[str, tuple[str, dict[str, Any]]] = {
        "token automount back on, in kube-system": (
            "kube-system",
            {"automountServiceAccountToken": True, "metadata": {"annotations": {"eks.amazonaws.com/role-arn": "x"}}},
        ),
        "our secret, outside the targets": (f"x{prefix}", {"imagePullSecrets": [{"name": "regcred"}]}),
        "token automount back on": (target, {"automountServiceAccountToken": True}),
        "an IRSA role": (target, {"metadata": {"annotations": {"eks.amazonaws.com/role-arn": "x"}}}),
        "a label": (target, {"metadata": {"labels": {"team": "x"}}}),
        "mountable secrets": (target, {"secrets": [{"name": "admin-token"}]}),
        "another pull secret": (target, {"imagePullSecrets": [{"name": "theirs"}, {"name": "evil"}]}),
        "their pull secret removed": (target, {"imagePullSecrets": [{"name": "regcred"}]}),
    }
    messages = {
        what: denied_by_the_policy(partial(patch, "default", where, body), ACCOUNTS_POLICY)
        for what, (where, body) in attacks.items()
    }
    assert "only write in its target namespaces" in messages["our secret, outside the targets"]
    assert "may not change automountServiceAccountToken" in messages["token automount back on"]
    assert "may not change metadata.annotations" in messages["an IRSA role"]
    assert "may only add regcred to imagePullSecrets" in messages["another pull secret"]
    assert "may only add regcred to imagePullSecrets" in messages["their pull secret removed"]
    result = invoke()
    assert outcomes(result) == {target: "created"}
    account = admin.core.read_namespaced_service_account("default", target)
    assert [ref.name for ref in account.image_pull_secrets] == ["theirs", "regcred"]
    assert account.automount_service_account_token is False


def test_a_stolen_token_cannot_overwrite_another_teams_secret(
    confined: tuple[RealKube, Cluster, Cluster, str], invoke: Invoke, tmp_path: Path
) -> None:
    kube, admin, identity, prefix = confined
    other = f"{prefix}-b"
    recipe_secret(kube, other, tmp_path, server="ghcr.io")
    theirs = admin.core.read_namespaced_secret("regcred", other)
    theirs.metadata.labels = {"app.kubernetes.io/managed-by": "ecr-token-refresher"}
    message = denied_by_the_policy(lambda: identity.core.replace_namespaced_secret("regcred", other, theirs))
    assert "may only update a secret labelled" in message
    result = invoke()
    assert outcomes(result)[other] == "skipped"  # the refresher itself leaves it alone, too
    assert (
        admin.core.read_namespaced_secret("regcred", other).metadata.resource_version
        == theirs.metadata.resource_version
    )


def test_the_rendered_rbac_lists_the_secret_by_name_only(confined: tuple[RealKube, Cluster, Cluster, str]) -> None:
    """The ClusterRole's `list` with resourceNames: [regcred] admits the cluster-wide list by that name
    (what every run reads) and nothing wider: the function's own token, the rendered manifest only."""
    _, _, identity, _ = confined
    identity.core.list_secret_for_all_namespaces(field_selector="metadata.name=regcred", limit=500)
    for wider in (None, "metadata.name=admin-token", "type=Opaque"):
        with pytest.raises(ApiException) as refused:
            identity.core.list_secret_for_all_namespaces(limit=500, field_selector=wider)
        assert refused.value.status == 403, wider
        assert "cannot list resource" in (refused.value.body or "")


def test_the_kubectl_recipes_secret_is_adopted_under_the_policy(
    confined: tuple[RealKube, Cluster, Cluster, str], invoke: Invoke, tmp_path: Path
) -> None:
    kube, admin, _, prefix = confined
    recipe_secret(kube, f"{prefix}-a", tmp_path)
    before = admin.core.read_namespaced_secret("regcred", f"{prefix}-a")
    assert before.metadata.labels is None
    assert outcomes(invoke()) == {f"{prefix}-a": "adopted", f"{prefix}-b": "created"}
    after = admin.core.read_namespaced_secret("regcred", f"{prefix}-a")
    assert after.metadata.uid == before.metadata.uid  # renewed in place, never deleted
    assert after.metadata.labels == {"app.kubernetes.io/managed-by": "ecr-token-refresher"}
    assert admin.auths(f"{prefix}-a")[OWN_REGISTRY]["password"] != "from-the-cron-job"
    assert outcomes(invoke()) == {f"{prefix}-a": "unchanged", f"{prefix}-b": "unchanged"}


def test_the_recipe_given_the_registrys_url_is_adopted_under_the_policy(
    confined: tuple[RealKube, Cluster, Cluster, str], invoke: Invoke, tmp_path: Path
) -> None:
    """Cron scripts often pass --docker-server=https://<host> (with or without a trailing /): the same
    registry for the kubelet, so adopted, and rewritten under the bare host."""
    kube, admin, _, prefix = confined
    recipe_secret(kube, f"{prefix}-a", tmp_path, server=f"https://{OWN_REGISTRY}")
    recipe_secret(kube, f"{prefix}-b", tmp_path, server=f"https://{OWN_REGISTRY}/")
    assert outcomes(invoke()) == dict.fromkeys([f"{prefix}-a", f"{prefix}-b"], "adopted")
    assert set(admin.auths(f"{prefix}-b")) == {OWN_REGISTRY}


def test_the_policy_holds_the_secrets_shape_one_key_of_bounded_size(
    confined: tuple[RealKube, Cluster, Cluster, str],
) -> None:
    """The reproduced plant: a second data key (900 KB), or an oversize `.dockerconfigjson`, used to be
    admitted as the function's identity; both are refused on create and on update."""
    _, _, identity, prefix = confined
    namespace, managed = f"{prefix}-a", {"app.kubernetes.io/managed-by": "ecr-token-refresher"}
    planted = secret("regcred", DOCKERCONFIG, labels=managed)
    planted.string_data = {"extra": "x" * 900_000}
    message = denied_by_the_policy(lambda: identity.core.create_namespaced_secret(namespace, planted))
    assert "must hold exactly one data key, .dockerconfigjson, of at most 10240 bytes" in message
    huge = secret("regcred", DOCKERCONFIG, labels=managed)
    huge.string_data = {".dockerconfigjson": '{"auths":{"x":{"auth":"' + "A" * 20_000 + '"}}}'}
    denied_by_the_policy(lambda: identity.core.create_namespaced_secret(namespace, huge))
    identity.core.create_namespaced_secret(namespace, secret("regcred", DOCKERCONFIG, labels=managed))
    current = identity.core.read_namespaced_secret("regcred", namespace)
    current.data = {**(current.data or {}), "extra": "eA=="}
    denied_by_the_policy(lambda: identity.core.replace_namespaced_secret("regcred", namespace, current))


def test_a_secret_written_by_anyone_else_is_repaired_at_the_next_run(
    confined: tuple[RealKube, Cluster, Cluster, str], invoke: Invoke
) -> None:
    """kube-apiserver's managedFields are the witness: a hand edit (another field manager), and a forgery
    under the function's own identity and manager name with refreshed-at in 2099, are both rewritten by the
    next run instead of being reported unchanged; a label another controller adds is left alone."""
    _, admin, identity, prefix = confined
    names = [f"{prefix}-a", f"{prefix}-b"]
    assert outcomes(invoke()) == dict.fromkeys(names, "created")
    edited = admin.core.read_namespaced_secret("regcred", names[0])
    edited.data = {".dockerconfigjson": DOCKERCONFIG_WITHOUT_OURS}
    admin.core.replace_namespaced_secret("regcred", names[0], edited, field_manager="kubectl-edit")
    forged = identity.core.read_namespaced_secret("regcred", names[1])
    forged.metadata.annotations = (forged.metadata.annotations or {}) | {
        "ecr-token-refresher/refreshed-at": "2099-01-01T00:00:00+00:00",
        "ecr-token-refresher/expires-at": "2099-01-01T11:00:00+00:00",
    }
    identity.core.replace_namespaced_secret("regcred", names[1], forged, field_manager="ecr-token-refresher")
    result = invoke()
    assert outcomes(result) == dict.fromkeys(names, "repaired")
    reasons = {r["namespace"]: r["reason"] for r in result["namespaces"]}
    assert "kubectl-edit" in reasons[names[0]]
    assert "later than the API server's time of the write" in reasons[names[1]]
    assert set(admin.auths(names[0])) == {OWN_REGISTRY}
    labelled = admin.core.read_namespaced_secret("regcred", names[0])
    labelled.metadata.labels = (labelled.metadata.labels or {}) | {"app.kubernetes.io/part-of": "platform"}
    admin.core.replace_namespaced_secret("regcred", names[0], labelled, field_manager="argocd-controller")
    assert outcomes(invoke()) == dict.fromkeys(names, "unchanged")


def test_applied_in_order_no_grant_lands_before_the_policy(
    real: tuple[RealKube, Cluster], credentials: AwsCredentials, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The manifest applied one object at a time, as `kubectl apply -f` does, probing after each: a secret
    the function may never write is refused by RBAC until the first binding, because the policy and its
    binding come first. kube-apiserver compiles a new policy asynchronously (measured here: about 0.4 s
    after its creation), so a first apply leaves that moment in which the grant is in force and the policy
    not yet, which `make apply` closes with a pause between the two (tests/integration/test_apply.py)."""
    kube, admin = real
    prefix = f"ord{uuid.uuid4().hex[:6]}"
    names = [admin.namespace(f"{prefix}-a"), admin.namespace(f"{prefix}-b")]
    identity = role_client(kube, credentials)
    forbidden = secret("not-regcred", DOCKERCONFIG, labels={"app.kubernetes.io/managed-by": "ecr-token-refresher"})

    def answers() -> set[str]:
        refusals = [
            refusal(partial(identity.core.create_namespaced_secret, n, forbidden, dry_run="All")) for n in names
        ]
        return {"admitted" if r is None else "policy" if POLICY in r else r[:3] for r in refusals}

    steps = []
    for document in render(configure(monkeypatch, namespaces=names), own_registry=OWN_REGISTRY):
        steps.append(document["kind"])
        if document["kind"] == "RoleBinding" and steps.count("RoleBinding") == 1:
            assert set(steps[:2]) == {"ValidatingAdmissionPolicy", "ValidatingAdmissionPolicyBinding"}
            assert answers() == {"403"}, "nothing is bound yet: RBAC refuses"
        admin.apply([document])
    wait_for_policy(identity, names[1], "'ecr-token-refresher'", timeout=3.0, admitted=ours_in(identity, names[1]))
    assert answers() == {"policy"}


def test_the_run_holds_only_its_own_lease_and_steps_aside_for_another_run(
    confined: tuple[RealKube, Cluster, Cluster, str], invoke: Invoke
) -> None:
    """kube-system holds the control plane's leader-election Leases: the identity may get and update the
    Lease the manifest created, and create none; a run that finds it held by another run does nothing."""
    _, admin, identity, prefix = confined
    spec = k8s.V1LeaseSpec(holder_identity="attacker", lease_duration_seconds=3600)
    stolen = k8s.CoordinationV1Api(identity.api)
    with pytest.raises(ApiException) as refused:
        stolen.create_namespaced_lease(
            "kube-system", k8s.V1Lease(metadata=k8s.V1ObjectMeta(name="kube-scheduler-x"), spec=spec)
        )
    assert refused.value.status == 403
    names = [f"{prefix}-a", f"{prefix}-b"]
    assert outcomes(invoke()) == dict.fromkeys(names, "created")  # it took, and handed back, its own
    leases = k8s.CoordinationV1Api(admin.api)
    lease = leases.read_namespaced_lease("ecr-token-refresher", "kube-system")
    assert lease.spec.holder_identity is None
    lease.spec.holder_identity, lease.spec.renew_time = "another run", datetime.now(UTC)
    lease.spec.lease_duration_seconds = 60
    leases.replace_namespaced_lease("ecr-token-refresher", "kube-system", lease)
    try:
        result = invoke()
    finally:
        lease = leases.read_namespaced_lease("ecr-token-refresher", "kube-system")
        lease.spec.holder_identity = None
        leases.replace_namespaced_lease("ecr-token-refresher", "kube-system", lease)
    assert result["skipped_run"].startswith("another run holds the Lease and is doing the work: another run (")
    assert result["namespaces"] == []
    assert outcomes(invoke({"force": True})) == dict.fromkeys(names, "updated")  # a forced run never steps aside
