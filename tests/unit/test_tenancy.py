"""Registries per tenant: a namespace receives the shared registries and its tenants' only — on the fakes,
through the whole run (decide, write, the expiry the watchdog hears)."""

from __future__ import annotations

import base64
import json
from datetime import timedelta

import pytest

from lambda_fn.config import RegistrySpec, Settings, Tenant
from lambda_fn.errors import ApiUnavailable, ConfigError
from lambda_fn.models import NamespaceResult, Outcome, RegistryCredential
from lambda_fn.refresher import renew_pull_secrets
from lambda_fn.secret_contract import DOCKERCONFIGJSON_KEY
from tests.fakes import NOW, FakeCluster

SHARED = "111111111111.dkr.ecr.eu-west-1.amazonaws.com"
TEAM_A = "222222222222.dkr.ecr.eu-west-1.amazonaws.com"
TEAM_B = "333333333333.dkr.ecr.eu-west-1.amazonaws.com"
ROLE_A = "arn:aws:iam::222222222222:role/team-a-puller"
ROLE_B = "arn:aws:iam::333333333333:role/team-b-puller"
TENANTS = (
    Tenant("team-a", ("team-a", "team-a-*"), registries=(RegistrySpec.parse(f"{TEAM_A}={ROLE_A}"),)),
    Tenant("team-b", namespace_selector="tenant=b", registries=(RegistrySpec.parse(f"{TEAM_B}={ROLE_B}"),)),
)


def credential(host: str) -> RegistryCredential:
    return RegistryCredential(host=host, password=f"pw-{host[:3]}", expires_at=NOW + timedelta(hours=12))


def settings(**changes: object) -> Settings:
    base = Settings(
        region="eu-west-1",
        namespaces=("team-*",),
        registries=(RegistrySpec.parse(SHARED),),
        include_own_registry=False,
        tenants=TENANTS,
    )
    return base.replace({}, source="test", **changes)


def run(
    cluster: FakeCluster, configured: Settings, unavailable: dict[str, str] | None = None
) -> dict[str, NamespaceResult]:
    """A run with a token for each registry `configured` serves, but those `unavailable`."""
    unavailable = unavailable or {}
    summary = renew_pull_secrets(
        cluster,
        [credential(spec.host) for spec in configured.served_registries if spec.host not in unavailable],
        configured,
        cluster_label="test",
        now=lambda: NOW,
        unavailable=unavailable,
    )
    return {result.namespace: result for result in summary.results}


def hosts(cluster: FakeCluster, namespace: str) -> set[str]:
    data = cluster.secrets[namespace, "regcred"].data or {}
    return set(json.loads(base64.b64decode(data[DOCKERCONFIGJSON_KEY]))["auths"])


@pytest.fixture
def cluster() -> FakeCluster:
    fake = FakeCluster()
    fake.add_namespace("team-a")
    fake.add_namespace("team-a-ci")
    fake.add_namespace("team-b", labels={"tenant": "b"})
    fake.add_namespace("team-c")
    return fake


def test_each_namespace_holds_the_shared_registries_and_its_tenants_only(cluster: FakeCluster) -> None:
    results = run(cluster, settings())
    assert {name: result.outcome for name, result in results.items()} == dict.fromkeys(
        ("team-a", "team-a-ci", "team-b", "team-c"), Outcome.CREATED
    )
    assert hosts(cluster, "team-a") == hosts(cluster, "team-a-ci") == {SHARED, TEAM_A}
    assert hosts(cluster, "team-b") == {SHARED, TEAM_B}
    assert hosts(cluster, "team-c") == {SHARED}
    again = run(cluster, settings())
    assert {result.outcome for result in again.values()} == {Outcome.UNCHANGED}


def test_a_namespace_leaving_a_tenant_loses_its_registry_at_the_next_run(cluster: FakeCluster) -> None:
    run(cluster, settings())
    cluster.labels["team-b"] = {}
    results = run(cluster, settings())
    assert results["team-b"].outcome is Outcome.UPDATED
    assert hosts(cluster, "team-b") == {SHARED}


def test_a_tenant_selector_that_cannot_be_listed_keeps_its_registry_where_held_and_fails_the_run(
    cluster: FakeCluster,
) -> None:
    run(cluster, settings())
    calls = []

    def second_list_fails() -> None:  # the targets' glob lists first, the tenant's selector second
        calls.append(1)
        if len(calls) == 2:
            raise ApiUnavailable("connection refused")

    cluster.hooks["list_namespaces", ""] = second_list_fails
    summary = renew_pull_secrets(
        cluster,
        [credential(spec.host) for spec in settings().served_registries],
        settings(force=True),
        cluster_label="test",
        now=lambda: NOW,
    )
    results = {result.namespace: result for result in summary.results}
    assert any("tenant team-b's namespaces" in error for error in summary.errors)
    assert hosts(cluster, "team-b") == {SHARED, TEAM_B}  # held: kept as it is, not written without it
    assert results["team-b"].expires_at is not None
    assert results["team-c"].expires_at is None  # team-b's registry may be due there: unknown, not "12 h left"
    assert f"written without {TEAM_B}: tenant team-b's selector could not be listed" in results["team-c"].reason
    assert hosts(cluster, "team-c") == {SHARED}


def test_a_namespace_no_tenant_matches_and_nothing_is_shared_fails_loudly(cluster: FakeCluster) -> None:
    results = run(cluster, settings(registries=()))
    assert results["team-c"].outcome is Outcome.FAILED
    assert "no registry is configured for this namespace" in results["team-c"].reason
    assert ("team-c", "regcred") not in cluster.secrets
    assert hosts(cluster, "team-a") == {TEAM_A}


def test_a_namespace_whose_only_registry_has_no_token_fails_and_keeps_its_secret(cluster: FakeCluster) -> None:
    run(cluster, settings(registries=()))
    before = cluster.secrets["team-b", "regcred"]
    results = run(cluster, settings(registries=(), force=True), unavailable={TEAM_B: "AccessDenied"})
    assert results["team-b"].outcome is Outcome.FAILED
    assert TEAM_B in results["team-b"].reason
    assert cluster.secrets["team-b", "regcred"] == before


@pytest.mark.parametrize(
    ("document", "message"),
    [
        ('{"name": "a"}', "must be a JSON list of"),
        ('[{"name": "a", "namespaces": ["team-a"]}]', "tenant 'a': registries is a non-empty list"),
        ('[{"name": "a", "registries": ["' + TEAM_A + '"]}]', "tenant 'a': give namespaces or a namespaceSelector"),
        ('[{"name": "a", "namespace": ["x"], "registries": ["' + TEAM_A + '"]}]', "unknown key namespace"),
        ('[{"name": "A", "namespaces": ["x"], "registries": ["' + TEAM_A + '"]}]', "tenant 'A': give it a name"),
        ('[{"name": "a", "namespaces": ["x"], "registries": ["docker.io"]}]', "'docker.io' is not an ECR registry"),
        ('[{"name": "a", "namespaces": ["x"]', "not JSON"),
    ],
)
def test_a_malformed_tenants_document_is_refused_naming_the_fix(document: str, message: str) -> None:
    with pytest.raises(ConfigError) as refused:
        Settings.from_env({"AWS_REGION": "eu-west-1", "TENANTS": document}, require_cluster=False)
    assert "TENANTS" in str(refused.value)
    assert message in str(refused.value)


def problems(configured: Settings) -> str:
    return "\n".join(str(problem) for problem in configured.problems({}))


def test_tenants_whose_passwords_would_reach_other_namespaces_are_refused() -> None:
    """An ECR token is the principal's: a tenant's registry pulled without a role of its own, or with a role
    another tenant or a shared registry uses, would hand the same password to other namespaces."""
    shared_role = "arn:aws:iam::111111111111:role/shared"
    clashing = (
        Tenant("team-a", ("team-a",), registries=(RegistrySpec.parse(TEAM_A),)),
        Tenant("team-b", ("team-b",), registries=(RegistrySpec.parse(f"{TEAM_B}={ROLE_B}"),)),
        Tenant("team-b", ("team-c",), registries=(RegistrySpec.parse(f"{TEAM_B}={ROLE_A}"),)),
        Tenant("team-d", ("team-d",), registries=(RegistrySpec.parse(f"{SHARED}={shared_role}"),)),
        Tenant(
            "team-e",
            ("team-e",),
            registries=(RegistrySpec.parse(f"444444444444.dkr.ecr.eu-west-1.amazonaws.com={ROLE_B}"),),
        ),
    )
    assert problems(settings()) == ""
    found = problems(
        Settings(region="eu-west-1", tenants=clashing, registries=(RegistrySpec.parse(f"{SHARED}={shared_role}"),))
    )
    assert "tenant 'team-b' is listed twice" in found
    assert f"tenant 'team-a': {TEAM_A} needs a role of its own" in found
    assert f"tenant 'team-d': {SHARED} is in registries too, which every namespace receives" in found
    assert f"tenant 'team-d': {shared_role} pulls a shared registry too" in found
    assert f"{ROLE_B} is listed by tenants team-b, team-e" in found
    assert f"{TEAM_B} is listed by tenants team-b" not in found  # one tenant, listed twice above
