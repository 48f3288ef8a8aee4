"""`check`'s cluster side on the unit fakes (the PreflightApi port): it reads what a run reads, judges
each namespace as a run would, names what fails with its fix, and writes nothing."""

from __future__ import annotations

import inspect
from dataclasses import replace
from datetime import timedelta

from lambda_fn.check import Standing, Status, check_cluster
from lambda_fn.check.report import RBAC_FIX
from lambda_fn.config import RegistrySpec, Settings, Tenant
from lambda_fn.credentials import FetchedCredentials
from lambda_fn.dockerconfig import read_auths
from lambda_fn.errors import Forbidden
from lambda_fn.models import RegistryCredential, SecretState, TargetSpec
from lambda_fn.ports import PreflightApi, RegistryTokenSource
from lambda_fn.refresher import renew_pull_secrets
from lambda_fn.runner import utc_now
from lambda_fn.secret_contract import DOCKERCONFIGJSON_KEY
from lambda_fn.tenancy import NO_REGISTRY
from tests.fakes import FakeCluster, FakeTokenSource

HOST = "123456789012.dkr.ecr.eu-west-1.amazonaws.com"


def auths_of(secret: SecretState) -> dict[str, object]:
    return read_auths((secret.data or {}).get(DOCKERCONFIGJSON_KEY)) or {}


SETTINGS = Settings(region="eu-west-1", namespaces=("team-*", "team-zzz"))


def cluster_with_each_standing() -> tuple[FakeCluster, FetchedCredentials]:
    """team-a: a secret this tool wrote; team-b: none; team-c: someone else's; team-zzz: named, absent."""
    credential = RegistryCredential(HOST, "pw", utc_now() + timedelta(hours=12))
    fake = FakeCluster(clock=utc_now)
    for name in ("team-a", "team-b", "team-c"):
        fake.add_namespace(name)
    plan = Settings(region="eu-west-1", namespaces=("team-a",))
    renew_pull_secrets(fake, [credential], plan, cluster_label="fake", now=utc_now)
    fake.secrets["team-c", "regcred"] = SecretState("regcred", "team-c", "Opaque", data={"k": "dg=="})
    fake.calls.clear()
    return fake, FetchedCredentials([credential])


def test_each_namespace_is_judged_as_a_run_would_and_nothing_is_written() -> None:
    fake, fetched = cluster_with_each_standing()
    findings, namespaces = check_cluster(fake, SETTINGS, fetched)
    assert {n.namespace: n.state for n in namespaces} == {
        "team-a": Standing.MANAGED,
        "team-b": Standing.MISSING,
        "team-c": Standing.FOREIGN,
        "team-zzz": Standing.ABSENT,
    }
    failed = {f.name: f.detail for f in findings if f.status is Status.FAILED}
    assert failed == {
        "named namespaces exist": "1 namespace(s) named in the configuration do not exist (team-zzz): every run "
        "fails there",
        "foreign secrets": "1 namespace(s) hold a 'regcred' secret this tool does not manage (team-c): refresh "
        "skips them, and pods there get no fresh token from it",
    }
    found = {f.name: f.detail for f in findings}
    assert found["target namespaces"] == "4: team-a, team-b, team-c, team-zzz"
    assert found["Kubernetes authentication"] == "as fake-refresher (groups ecr-token-refresher)"
    assert fake.writes() == []
    # The run's own reads: one list of the namespaces and one of the secrets, as refresh makes them.
    assert sorted(call for call in fake.calls if call[0].startswith("list_")) == [
        ("list_namespaces", ""),
        ("list_secret_metadata", ""),
    ]


def test_a_missing_grant_fails_with_the_manifest_as_the_fix_and_a_refusal_by_admission_is_named() -> None:
    fake, fetched = cluster_with_each_standing()
    fake.refused = {("update", "secrets")}
    fake.admission_refusals = {"team-b": "denied request: not this namespace"}
    findings, _ = check_cluster(fake, SETTINGS, fetched)
    failed = {f.name: (f.detail, f.fix) for f in findings if f.status is Status.FAILED}
    assert failed["may update secrets 'regcred'"] == ("not granted in team-a, team-b, team-c, team-zzz", RBAC_FIX)
    assert failed["admission of 'regcred'"][0].startswith("refused in team-b; first: 422 Invalid: denied request")


def test_without_a_token_the_standings_are_what_the_annotations_say() -> None:
    fake, _ = cluster_with_each_standing()
    _, namespaces = check_cluster(fake, SETTINGS, FetchedCredentials([]))
    assert {n.namespace: n.state for n in namespaces}["team-a"] is Standing.MANAGED


def refuse_lists(fake: FakeCluster) -> None:
    def forbidden() -> None:
        raise Forbidden('403 Forbidden: cannot list resource "namespaces"')

    fake.hooks["list_namespaces", ""] = forbidden


def test_a_narrowing_whose_namespaces_cannot_be_listed_is_a_failed_line_not_an_error() -> None:
    """A manual {"check": true, "selector": ...} on a names-only grant, and {"namespaces": [...]} when the
    glob's namespaces cannot be listed: the report comes back, naming why, and serves none it cannot tell."""
    fake, fetched = cluster_with_each_standing()
    refuse_lists(fake)
    names_only = replace(
        Settings(region="eu-west-1", namespaces=("team-a", "team-b")), narrowing=TargetSpec((), "team=a", ())
    )
    by_glob = replace(SETTINGS, narrowing=TargetSpec(("team-a",), None, ()))
    for settings in (names_only, by_glob):
        findings, namespaces = check_cluster(fake, settings, fetched)
        failed = {f.name: f.detail for f in findings if f.status is Status.FAILED}
        assert "could not list" in failed["target namespaces"]
        assert [n.namespace for n in namespaces] == []
    assert fake.writes() == []


def test_the_fakes_implement_every_method_of_their_ports() -> None:
    """A fake that lacks a port's method, or takes other arguments, fails here rather than in a test
    that happens to call it."""
    for port, fake in ((PreflightApi, FakeCluster), (RegistryTokenSource, FakeTokenSource)):
        methods = [name for name, _ in inspect.getmembers(port, inspect.isfunction) if not name.startswith("_")]
        assert methods
        for name in methods:
            expected = list(inspect.signature(getattr(port, name)).parameters)
            assert list(inspect.signature(getattr(fake, name)).parameters) == expected, name


def test_each_tenants_reach_is_listed_and_a_tenant_whose_selector_fails_is_failed() -> None:
    fake, fetched = cluster_with_each_standing()
    fake.labels["team-b"] = {"tenant": "b"}
    hosts = {
        name: f"{account * 12}.dkr.ecr.eu-west-1.amazonaws.com" for name, account in zip("abn", "234", strict=True)
    }

    def registry(name: str) -> RegistrySpec:
        return RegistrySpec.parse(f"{hosts[name]}=arn:aws:iam::{hosts[name][:12]}:role/pull")

    tenants = (
        Tenant("team-a", ("team-a",), registries=(registry("a"),)),
        Tenant("team-b", namespace_selector="tenant=b", registries=(registry("b"),)),
        Tenant("nobody", ("other-*",), registries=(registry("n"),)),
    )
    settings = replace(SETTINGS, tenants=tenants)
    found = {f.name: (f.status, f.detail) for f in check_cluster(fake, settings, fetched)[0]}
    assert found["tenant team-a"] == (Status.OK, f"{hosts['a']} to 1: team-a")
    assert found["tenant team-b"] == (Status.OK, f"{hosts['b']} to 1: team-b")
    assert found["tenant nobody"][0] is Status.UNKNOWN
    assert "reach no target namespace" in found["tenant nobody"][1]
    calls = []

    def selector_list_fails() -> None:  # the glob's list first, then the tenant's selector
        calls.append(1)
        if len(calls) == 2:
            raise Forbidden('namespaces is forbidden: cannot list resource "namespaces"')

    fake.hooks["list_namespaces", ""] = selector_list_fails
    found = {f.name: (f.status, f.detail) for f in check_cluster(fake, settings, fetched)[0]}
    assert found["tenant team-b"][0] is Status.FAILED
    assert "could not list tenant team-b's namespaces" in found["tenant team-b"][1]


def test_a_namespace_receiving_no_registry_fails_check_as_it_fails_the_run_and_the_probe_holds_its_hosts() -> None:
    fake, _ = cluster_with_each_standing()
    team_host = "222222222222.dkr.ecr.eu-west-1.amazonaws.com"
    registry = RegistrySpec.parse(f"{team_host}=arn:aws:iam::222222222222:role/a")
    tenant = Tenant("team-a", ("team-a",), registries=(registry,))
    settings = replace(SETTINGS, include_own_registry=False, registries=(), tenants=(tenant,))
    fetched = FetchedCredentials([RegistryCredential(team_host, "pw", utc_now() + timedelta(hours=12))])
    probed: dict[tuple[str, str], SecretState] = {}
    fake.dry_run_create = lambda secret: probed.setdefault((secret.namespace, secret.name), secret)  # type: ignore[method-assign,assignment]
    findings, namespaces = check_cluster(fake, settings, fetched)
    states = {n.namespace: (n.state, n.detail) for n in namespaces}
    assert states["team-b"] == (Standing.BROKEN, NO_REGISTRY)
    assert {f.name for f in findings if f.status is Status.FAILED} >= {"namespaces the next run fails in"}
    assert set(auths_of(probed["team-a", "regcred"])) == {team_host}  # what the tenant rule judges there
    assert auths_of(probed["team-b", "regcred"]) == {}
