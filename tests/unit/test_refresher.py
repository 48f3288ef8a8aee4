"""The core against an in-memory cluster: every outcome, and that a good secret is never lost."""

from __future__ import annotations

import base64
import json
from dataclasses import replace
from datetime import timedelta

import pytest

from lambda_fn.config import Settings
from lambda_fn.errors import ApiUnavailable, ConfigError, Conflict, Forbidden, Invalid, Unauthorized
from lambda_fn.models import NamespaceResult, Outcome, RegistryCredential, SecretState, ServiceAccountState, TargetSpec
from lambda_fn.refresher import MAX_WRITE_ATTEMPTS, renew_pull_secrets
from lambda_fn.secret_contract import (
    DOCKERCONFIGJSON_KEY,
    DOCKERCONFIGJSON_TYPE,
    EXPIRES_AT_ANNOTATION,
    MANAGED_BY_LABEL,
    REGISTRIES_ANNOTATION,
    SCOPE_RULE,
)
from tests.fakes import NOW, FakeCluster

HOST = "123456789012.dkr.ecr.eu-west-1.amazonaws.com"
CREDENTIAL = RegistryCredential(host=HOST, password="pw-1", expires_at=NOW + timedelta(hours=12))


def plan(*patterns: str, **changes: object) -> Settings:
    """The plan for the default settings serving `patterns` (team-a if none), with `changes`."""
    base = Settings(region="eu-west-1", namespaces=patterns or ("team-a",))
    return replace(base, **changes)  # type: ignore[arg-type]


def run(cluster: FakeCluster, refresh_plan: Settings, **kwargs: object) -> dict[str, NamespaceResult]:
    summary = renew_pull_secrets(
        cluster,
        [CREDENTIAL],
        refresh_plan,
        cluster_label="test",
        now=lambda: NOW,
        **kwargs,  # type: ignore[arg-type]
    )
    return {result.namespace: result for result in summary.results}


def auths(secret: SecretState) -> dict[str, dict[str, str]]:
    assert secret.data is not None
    document: dict[str, dict[str, dict[str, str]]] = json.loads(base64.b64decode(secret.data[DOCKERCONFIGJSON_KEY]))
    return document["auths"]


@pytest.fixture
def cluster() -> FakeCluster:
    fake = FakeCluster()
    for name in ("team-a", "team-b"):
        fake.add_namespace(name)
    return fake


def test_creates_a_managed_dockerconfigjson_secret(cluster: FakeCluster) -> None:
    results = run(cluster, plan())
    assert results["team-a"].outcome is Outcome.CREATED
    secret = cluster.secrets["team-a", "regcred"]
    assert secret.type == DOCKERCONFIGJSON_TYPE
    assert secret.labels[MANAGED_BY_LABEL] == "ecr-token-refresher"
    assert secret.annotations[REGISTRIES_ANNOTATION] == HOST
    assert secret.annotations[EXPIRES_AT_ANNOTATION] == (NOW + timedelta(hours=12)).isoformat()
    assert auths(secret)[HOST]["password"] == "pw-1"


def test_a_fresh_secret_is_not_rewritten(cluster: FakeCluster) -> None:
    run(cluster, plan())
    cluster.calls.clear()
    results = run(cluster, plan())
    assert results["team-a"].outcome is Outcome.UNCHANGED
    assert cluster.writes() == []


def test_a_secret_nearing_expiry_is_updated_in_place_keeping_labels_and_annotations(cluster: FakeCluster) -> None:
    """Labels and annotations of others stay; the data holds the served registries only, so a login planted
    under this tool's own manager name is gone at the next write."""
    run(cluster, plan())
    old = cluster.secrets["team-a", "regcred"]
    foreign_auths = {**auths(old), "ghcr.io": {"auth": "Zm9vOmJhcg=="}}
    cluster.secrets["team-a", "regcred"] = replace(
        old,
        labels={**old.labels, "team": "a"},
        annotations={**old.annotations, EXPIRES_AT_ANNOTATION: (NOW + timedelta(hours=1)).isoformat(), "note": "x"},
        data={DOCKERCONFIGJSON_KEY: base64.b64encode(json.dumps({"auths": foreign_auths}).encode()).decode()},
    )
    cluster.calls.clear()
    results = run(cluster, plan())
    assert results["team-a"].outcome is Outcome.UPDATED
    new = cluster.secrets["team-a", "regcred"]
    assert new.labels["team"] == "a"
    assert new.annotations["note"] == "x"
    assert "ghcr.io" not in auths(new)
    assert new.annotations[EXPIRES_AT_ANNOTATION] == (NOW + timedelta(hours=12)).isoformat()
    assert cluster.writes() == [("replace_secret", "team-a")]


def test_a_changed_registry_set_is_rewritten_even_when_fresh(cluster: FakeCluster) -> None:
    run(cluster, plan())
    old = cluster.secrets["team-a", "regcred"]
    cluster.secrets["team-a", "regcred"] = replace(old, annotations={**old.annotations, REGISTRIES_ANNOTATION: "x"})
    assert run(cluster, plan())["team-a"].outcome is Outcome.UPDATED


def test_force_rewrites_fresh_secrets(cluster: FakeCluster) -> None:
    run(cluster, plan())
    assert run(cluster, plan(force=True))["team-a"].outcome is Outcome.UPDATED


def test_a_secret_this_tool_does_not_manage_is_left_alone(cluster: FakeCluster) -> None:
    foreign = SecretState("regcred", "team-a", DOCKERCONFIGJSON_TYPE, data={DOCKERCONFIGJSON_KEY: "e30="})
    cluster.secrets["team-a", "regcred"] = foreign
    result = run(cluster, plan())["team-a"]
    assert result.outcome is Outcome.SKIPPED
    assert MANAGED_BY_LABEL in result.reason
    assert cluster.secrets["team-a", "regcred"] == foreign


def test_a_managed_secret_of_another_type_fails_without_being_touched(cluster: FakeCluster) -> None:
    opaque = SecretState("regcred", "team-a", "Opaque", labels={MANAGED_BY_LABEL: "ecr-token-refresher"})
    cluster.secrets["team-a", "regcred"] = opaque
    result = run(cluster, plan())["team-a"]
    assert result.outcome is Outcome.FAILED
    assert "cannot be changed in place" in result.reason
    assert cluster.secrets["team-a", "regcred"] == opaque


def test_a_conflict_is_re_read_and_retried(cluster: FakeCluster) -> None:
    run(cluster, plan(force=True))
    conflicts = iter([Conflict("409 Conflict")])

    def conflict_once() -> None:
        error = next(conflicts, None)
        if error is not None:
            raise error

    cluster.hooks["replace_secret", "team-a"] = conflict_once
    cluster.calls.clear()
    assert run(cluster, plan(force=True))["team-a"].outcome is Outcome.UPDATED
    assert cluster.calls.count(("read_secret", "team-a")) == 2


def test_endless_conflicts_give_up_after_a_bound(cluster: FakeCluster) -> None:
    run(cluster, plan())

    def always() -> None:
        raise Conflict("409 Conflict")

    cluster.hooks["replace_secret", "team-a"] = always
    cluster.calls.clear()
    result = run(cluster, plan(force=True))["team-a"]
    assert result.outcome is Outcome.FAILED
    assert "gave up" in result.reason
    assert cluster.calls.count(("replace_secret", "team-a")) == MAX_WRITE_ATTEMPTS


def test_one_failing_namespace_does_not_stop_the_others(cluster: FakeCluster) -> None:
    def broken() -> None:
        raise ApiUnavailable("500 InternalError: etcd is sad", status=500)

    cluster.hooks["read_secret", "team-a"] = broken
    summary = renew_pull_secrets(cluster, [CREDENTIAL], plan("team-a", "team-b"), cluster_label="t", now=lambda: NOW)
    outcomes = {r.namespace: r.outcome for r in summary.results}
    assert outcomes == {"team-a": Outcome.FAILED, "team-b": Outcome.CREATED}
    assert summary.failed_namespaces == ("team-a",)
    assert not summary.ok


def test_a_missing_namespace_named_explicitly_is_reported_failed(cluster: FakeCluster) -> None:
    result = run(cluster, plan("ghost"))["ghost"]
    assert result.outcome is Outcome.FAILED
    assert "does not exist" in result.reason


def test_terminating_namespaces_are_skipped(cluster: FakeCluster) -> None:
    cluster.add_namespace("team-old", terminating=True)
    result = run(cluster, plan("team-*"))["team-old"]
    assert result == NamespaceResult("team-old", Outcome.SKIPPED, "namespace is being deleted")
    assert ("read_secret", "team-old") not in cluster.calls


def test_forbidden_names_the_rbac_fix(cluster: FakeCluster) -> None:
    def forbidden() -> None:
        raise Forbidden('403 Forbidden: secrets "regcred" is forbidden')

    cluster.hooks["read_secret", "team-a"] = forbidden
    assert "make apply" in run(cluster, plan())["team-a"].reason


def test_unauthorized_stops_further_attempts_and_names_the_access_entry(cluster: FakeCluster) -> None:
    def rejected() -> None:
        raise Unauthorized("401 Unauthorized: Unauthorized")

    for namespace in ("team-a", "team-b"):
        cluster.hooks["read_secret", namespace] = rejected
    results = run(cluster, plan("team-a", "team-b", max_concurrency=1))
    assert "EKS access entry" in results["team-a"].reason
    assert results["team-b"].reason == "not attempted: the API server rejected the credentials"
    assert cluster.calls.count(("read_secret", "team-b")) == 0


def test_dry_run_reads_but_never_writes(cluster: FakeCluster) -> None:
    cluster.accounts["team-a", "default"] = ServiceAccountState("default", "team-a", (), "1")
    results = run(cluster, plan("team-a", "team-b", dry_run=True, service_accounts=("default",)))
    assert results["team-a"].outcome is Outcome.CREATED
    assert results["team-a"].reason == "dry run: would create; would patch service accounts default"
    assert results["team-a"].to_dict()["service_accounts_to_patch"] == ["default"]
    assert cluster.writes() == []
    assert cluster.secrets == {}


def test_service_accounts_get_the_secret_and_keep_their_entries(cluster: FakeCluster) -> None:
    cluster.accounts["team-a", "default"] = ServiceAccountState("default", "team-a", ("other",), "1")
    cluster.accounts["team-b", "default"] = ServiceAccountState("default", "team-b", ("regcred",), "1")
    results = run(cluster, plan("team-a", "team-b", service_accounts=("default", "builder")))
    assert results["team-a"].service_accounts == ("default",)
    assert cluster.accounts["team-a", "default"].image_pull_secrets == ("other", "regcred")
    assert results["team-b"].service_accounts == ()
    assert ("set_image_pull_secrets", "team-b") not in cluster.calls


def test_a_service_account_conflict_is_re_read(cluster: FakeCluster) -> None:
    cluster.accounts["team-a", "default"] = ServiceAccountState("default", "team-a", ("other",), "1")
    original = cluster.read_service_account
    reads: list[int] = []

    def concurrent_writer(namespace: str, name: str) -> ServiceAccountState | None:
        account = original(namespace, name)
        assert account is not None
        if not reads:  # another writer adds an entry right after our first read
            cluster.accounts[namespace, name] = replace(
                account, image_pull_secrets=("other", "new"), resource_version="2"
            )
        reads.append(1)
        return account

    cluster.read_service_account = concurrent_writer  # type: ignore[method-assign]
    run(cluster, plan(service_accounts=("default",)))
    assert cluster.accounts["team-a", "default"].image_pull_secrets == ("other", "new", "regcred")


def test_near_the_deadline_no_new_namespace_is_started(cluster: FakeCluster) -> None:
    remaining = iter([60.0, 5.0])
    results = run(
        cluster,
        plan("team-a", "team-b", max_concurrency=1),
        remaining_seconds=lambda: next(remaining),
    )
    assert results["team-a"].outcome is Outcome.CREATED
    assert results["team-b"].outcome is Outcome.FAILED
    assert results["team-b"].reason.startswith("not attempted: 5.0s left")
    assert ("read_secret", "team-b") not in cluster.calls


def test_a_failed_listing_still_serves_the_named_namespaces(cluster: FakeCluster) -> None:
    def forbidden() -> None:
        raise Forbidden('403 Forbidden: namespaces is forbidden: User "x" cannot list resource "namespaces"')

    cluster.hooks["list_namespaces", ""] = forbidden
    summary = renew_pull_secrets(cluster, [CREDENTIAL], plan("team-a", "team-*"), cluster_label="t", now=lambda: NOW)
    assert [r.namespace for r in summary.results] == ["team-a"]
    assert summary.results[0].outcome is Outcome.CREATED
    assert summary.errors
    assert "could not list namespaces" in summary.errors[0]
    assert not summary.ok


def test_with_globs_a_fresh_run_reads_every_state_from_one_list(cluster: FakeCluster) -> None:
    run(cluster, plan("team-*"))
    assert ("read_secret", "team-a") not in cluster.calls  # absent from the list: created straight away
    cluster.calls.clear()
    results = run(cluster, plan("team-*"))
    assert {r.outcome for r in results.values()} == {Outcome.UNCHANGED}
    assert sorted(cluster.calls) == [("list_namespaces", ""), ("list_secret_metadata", "")]  # side by side


def test_with_globs_only_a_stale_secret_is_read_in_full(cluster: FakeCluster) -> None:
    run(cluster, plan("team-*"))
    old = cluster.secrets["team-a", "regcred"]
    stale = {**old.annotations, EXPIRES_AT_ANNOTATION: (NOW + timedelta(hours=1)).isoformat()}
    cluster.secrets["team-a", "regcred"] = replace(old, annotations=stale)
    cluster.calls.clear()
    results = run(cluster, plan("team-*"))
    assert (results["team-a"].outcome, results["team-b"].outcome) == (Outcome.UPDATED, Outcome.UNCHANGED)
    assert [call for call in cluster.calls if call[1] == "team-a"] == [
        ("read_secret", "team-a"),
        ("replace_secret", "team-a"),
    ]


def test_a_secret_created_by_someone_else_after_the_list_is_re_read_and_decided_again(cluster: FakeCluster) -> None:
    def someone_else_creates_it() -> None:
        cluster.secrets.setdefault(("team-a", "regcred"), SecretState("regcred", "team-a", "Opaque"))

    cluster.hooks["create_secret", "team-a"] = someone_else_creates_it
    result = run(cluster, plan("team-*"))["team-a"]
    assert (result.outcome, result.foreign) == (Outcome.SKIPPED, True)
    assert cluster.secrets["team-a", "regcred"].type == "Opaque"


def test_a_failed_list_of_secrets_falls_back_to_one_read_each_and_fails_the_run(cluster: FakeCluster) -> None:
    def forbidden() -> None:
        raise Forbidden('403 Forbidden: secrets is forbidden: User "x" cannot list resource "secrets"')

    cluster.hooks["list_secret_metadata", ""] = forbidden
    summary = renew_pull_secrets(cluster, [CREDENTIAL], plan("team-*"), cluster_label="t", now=lambda: NOW)
    assert {r.outcome for r in summary.results} == {Outcome.CREATED}
    assert "could not list the 'regcred' secrets" in summary.errors[0]
    assert not summary.ok


def test_an_event_naming_an_unconfigured_namespace_writes_nothing(cluster: FakeCluster) -> None:
    cluster.add_namespace("kube-system")
    with pytest.raises(ConfigError, match="kube-system outside the configured namespaces"):
        run(cluster, plan("team-*", narrowing=TargetSpec(("team-a", "kube-system"), None)))
    assert cluster.writes() == []


def test_an_update_writes_back_the_object_as_read(cluster: FakeCluster) -> None:
    run(cluster, plan())
    old = cluster.secrets["team-a", "regcred"]
    raw = {"metadata": {"ownerReferences": [{"uid": "u-1"}], "finalizers": ["example.com/keep"]}}
    cluster.secrets["team-a", "regcred"] = replace(old, raw=raw)
    run(cluster, plan(force=True))
    assert cluster.secrets["team-a", "regcred"].raw == raw


def test_a_refusal_by_the_policys_namespace_rule_is_tried_once_more(
    cluster: FakeCluster, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The policy reads namespace labels from the API server's cache: right after a namespace is created or
    labelled its answer can be a transient 422. Tried again a moment later; any other refusal is not."""
    monkeypatch.setattr("lambda_fn.refresher.SCOPE_RETRY_SECONDS", 0.0)
    refusals = iter([Invalid(f"422 Invalid: denied request: {SCOPE_RULE} (the configured names ...)")])

    def refuse_once() -> None:
        error = next(refusals, None)
        if error is not None:
            raise error

    cluster.hooks["create_secret", "team-a"] = refuse_once
    assert run(cluster, plan())["team-a"].outcome is Outcome.CREATED
    assert cluster.calls.count(("create_secret", "team-a")) == 2

    cluster.hooks["create_secret", "team-b"] = lambda: (_ for _ in ()).throw(Invalid("422 Invalid: other rule"))
    assert run(cluster, plan("team-b"))["team-b"].outcome is Outcome.FAILED
    assert cluster.calls.count(("create_secret", "team-b")) == 1


def test_with_globs_a_steady_state_with_service_accounts_is_three_lists_and_nothing_per_namespace(
    cluster: FakeCluster,
) -> None:
    for namespace in ("team-a", "team-b"):
        cluster.accounts[namespace, "default"] = ServiceAccountState("default", namespace, (), "1")
    service_accounts = plan("team-*", service_accounts=("default", "builder"))
    run(cluster, service_accounts)  # first run: creates and patches
    assert cluster.accounts["team-a", "default"].image_pull_secrets == ("regcred",)
    cluster.calls.clear()
    results = run(cluster, service_accounts)
    assert {result.outcome for result in results.values()} == {Outcome.UNCHANGED}
    assert sorted(cluster.calls) == [
        ("list_namespaces", ""),
        ("list_secret_metadata", ""),
        ("list_service_accounts", ""),  # default
        ("list_service_accounts", ""),  # builder: none exists
    ]
    # A new account lacking the secret is patched from the list, without reading it first.
    cluster.accounts["team-b", "builder"] = ServiceAccountState("builder", "team-b", ("other",), "1")
    cluster.calls.clear()
    results = run(cluster, service_accounts)
    assert results["team-b"].service_accounts == ("builder",)
    assert cluster.accounts["team-b", "builder"].image_pull_secrets == ("other", "regcred")
    assert [call for call in cluster.calls if call[1]] == [("set_image_pull_secrets", "team-b")]
