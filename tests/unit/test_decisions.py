"""The one per-namespace decision, whichever read fed it: adoption, immutability, registry and role
changes, edited annotations, and reads of metadata only."""

from __future__ import annotations

import base64
import json
from dataclasses import replace
from datetime import timedelta

import pytest

from lambda_fn.config import TOKEN_LIFETIME, Settings
from lambda_fn.decisions import (
    Action,
    Registries,
    decide,
    desired_secret,
    recorded_expiry,
    renewal_threshold,
)
from lambda_fn.models import Outcome, RegistryCredential, SecretState, ServiceAccountState, WriteRecord
from lambda_fn.refresher import renew_pull_secrets
from lambda_fn.secret_contract import (
    DOCKERCONFIGJSON_KEY,
    DOCKERCONFIGJSON_TYPE,
    EXPIRES_AT_ANNOTATION,
    MANAGED_BY_LABEL,
    REFRESHED_AT_ANNOTATION,
    REGISTRIES_ANNOTATION,
)
from tests.fakes import NOW, FakeCluster, written

HOST = "123456789012.dkr.ecr.eu-west-1.amazonaws.com"
OTHER = "210987654321.dkr.ecr.us-east-1.amazonaws.com"
ROLE = "arn:aws:iam::210987654321:role/puller"
OWN = Registries((RegistryCredential(HOST, "pw-1", NOW + timedelta(hours=12)),))
TWO = Registries((*OWN.credentials, RegistryCredential(OTHER, "pw-2", NOW + timedelta(hours=12), role_arn=ROLE)))
PLAN = Settings(region="eu-west-1", namespaces=("team-*",))


def dockerconfig(*hosts: str) -> dict[str, str]:
    auths = {host: {"username": "AWS", "password": "old", "auth": "QVdTOm9sZA=="} for host in hosts}
    compact = json.dumps({"auths": auths}, separators=(",", ":"))  # as kubectl writes it
    return {DOCKERCONFIGJSON_KEY: base64.b64encode(compact.encode()).decode()}


def managed(registries: Registries = OWN, *, left: timedelta = timedelta(hours=11), **changes: object) -> SecretState:
    """A secret as this tool wrote it an hour ago (`left` of its token remaining)."""
    secret = desired_secret(None, registries, namespace="team-a", secret_name="regcred", now=NOW - timedelta(hours=1))
    annotations = {**secret.annotations, EXPIRES_AT_ANNOTATION: (NOW + left).isoformat()}
    return replace(written(secret, at=NOW - timedelta(hours=1)), annotations=annotations, **changes)  # type: ignore[arg-type]


PRETTY = base64.b64encode(json.dumps({"auths": {HOST: {"auth": "QVdTOm9sZA=="}}}, indent="\t").encode()).decode()


def recipe_secret(*hosts: str) -> SecretState:
    """What `kubectl create secret docker-registry regcred --docker-server=...` makes: no label."""
    return SecretState("regcred", "team-a", DOCKERCONFIGJSON_TYPE, data=dockerconfig(*hosts))


def test_a_fresh_managed_secret_is_settled_from_its_metadata_alone() -> None:
    metadata_only = replace(managed(), type=None, data=None)
    assert decide(metadata_only, OWN, PLAN, now=NOW).outcome is Outcome.UNCHANGED


def test_a_stale_secret_known_by_metadata_alone_is_read_in_full_first() -> None:
    metadata_only = replace(managed(left=timedelta(hours=1)), type=None, data=None)
    assert decide(metadata_only, OWN, PLAN, now=NOW).action is Action.READ
    assert decide(managed(left=timedelta(hours=1)), OWN, PLAN, now=NOW).action is Action.UPDATE


def test_an_expiry_annotation_in_the_future_is_not_trusted_past_12_hours_of_the_servers_time_of_the_write() -> None:
    """Under this tool's own manager name (a stolen token), written 7 h ago by the server's clock."""
    forged = managed(left=timedelta(days=365))
    annotations = {**forged.annotations, REFRESHED_AT_ANNOTATION: (NOW - timedelta(hours=7)).isoformat()}
    seven_hours_ago = written(replace(forged, annotations=annotations), at=NOW - timedelta(hours=7))
    assert recorded_expiry(seven_hours_ago) == NOW + timedelta(hours=5)
    assert decide(seven_hours_ago, OWN, PLAN, now=NOW).action is Action.UPDATE


def test_a_refreshed_at_later_than_the_servers_time_of_the_write_is_repaired() -> None:
    """The reproduced forgery: refreshed-at 2099 written now; every later run used to say unchanged."""
    forged = managed(left=timedelta(days=365 * 70))
    annotations = {**forged.annotations, REFRESHED_AT_ANNOTATION: "2099-01-01T00:00:00+00:00"}
    planted = written(replace(forged, annotations=annotations), at=NOW - timedelta(minutes=1))
    assert recorded_expiry(planted) is None
    assert decide(replace(planted, type=None, data=None), OWN, PLAN, now=NOW).action is Action.READ
    verdict = decide(planted, OWN, PLAN, now=NOW)
    assert (verdict.action, verdict.outcome) == (Action.UPDATE, Outcome.REPAIRED)
    assert "later than the API server's time of the write" in verdict.reason


@pytest.mark.parametrize(
    ("manager", "fields"),
    [
        ("kubectl-edit", {("data", DOCKERCONFIGJSON_KEY)}),  # a wrong password typed in
        ("kubectl-client-side-apply", {("data", DOCKERCONFIGJSON_KEY), ("metadata", "annotations", "x")}),
        ("kubectl-edit", {("metadata", "annotations", EXPIRES_AT_ANNOTATION)}),
        ("kubectl-edit", {("data", "planted")}),  # an extra key
    ],
)
def test_a_managed_secret_changed_by_another_writer_is_read_and_repaired(
    manager: str, fields: set[tuple[str, ...]]
) -> None:
    ours = managed()
    assert ours.writes is not None
    edited = replace(ours, writes=(*ours.writes, WriteRecord(manager, NOW - timedelta(minutes=5), frozenset(fields))))
    assert decide(replace(edited, type=None, data=None), OWN, PLAN, now=NOW).action is Action.READ
    verdict = decide(edited, OWN, PLAN, now=NOW)
    assert (verdict.action, verdict.outcome) == (Action.UPDATE, Outcome.REPAIRED)
    assert manager in verdict.reason
    assert recorded_expiry(edited) is None  # the watchdog does not believe it either


def test_another_writer_of_labels_or_annotations_not_ours_leaves_the_secret_trusted() -> None:
    """A controller that adds its own label (Argo CD, Kyverno) is no reason to rewrite every run."""
    ours = managed()
    assert ours.writes is not None
    labeller = WriteRecord("argocd-controller", NOW, frozenset({("metadata", "labels", "app.kubernetes.io/part-of")}))
    assert decide(replace(ours, writes=(*ours.writes, labeller)), OWN, PLAN, now=NOW).outcome is Outcome.UNCHANGED


@pytest.mark.parametrize(
    "writes",
    [None, (), (WriteRecord("OpenAPI-Generator", NOW, frozenset({("data", DOCKERCONFIGJSON_KEY)})),)],
    ids=["no record", "empty record", "an earlier release's manager name"],
)
def test_a_secret_without_a_record_of_this_tools_write_is_rewritten_once(
    writes: tuple[WriteRecord, ...] | None,
) -> None:
    verdict = decide(replace(managed(), writes=writes), OWN, PLAN, now=NOW)
    assert verdict.outcome is Outcome.REPAIRED


def test_a_registry_edited_out_of_the_data_is_rewritten_when_the_data_is_read() -> None:
    edited = replace(managed(), data=dockerconfig("ghcr.io"))
    assert decide(edited, OWN, PLAN, now=NOW).action is Action.UPDATE


def test_a_new_role_behind_a_registry_rewrites_the_secret() -> None:
    written = managed(TWO)
    assert written.annotations[REGISTRIES_ANNOTATION] == f"{HOST},{OTHER}={ROLE}"
    assert decide(written, TWO, PLAN, now=NOW).outcome is Outcome.UNCHANGED
    new_role = Registries((OWN.credentials[0], replace(TWO.credentials[1], role_arn=ROLE + "-2")))
    assert decide(written, new_role, PLAN, now=NOW).action is Action.UPDATE


def test_retired_and_added_registries_are_named() -> None:
    verdict = decide(managed(TWO), OWN, PLAN, now=NOW)
    assert (verdict.action, verdict.reason) == (Action.UPDATE, f"registries changed: retires {OTHER}")
    verdict = decide(managed(OWN), TWO, PLAN, now=NOW)
    assert verdict.reason == f"registries changed: adds {OTHER}"


def test_an_immutable_stale_secret_fails_saying_how_to_fix_it() -> None:
    verdict = decide(managed(left=timedelta(hours=1), immutable=True), OWN, PLAN, now=NOW)
    assert verdict.outcome is Outcome.FAILED
    assert "immutable" in verdict.reason
    assert "delete it" in verdict.reason
    assert decide(managed(immutable=True), OWN, PLAN, now=NOW).outcome is Outcome.UNCHANGED


@pytest.mark.parametrize("server", [HOST, f"https://{HOST}", f"https://{HOST}/", f"{HOST}/"])
def test_the_kubectl_recipes_secret_is_adopted(server: str) -> None:
    verdict = decide(recipe_secret(server), OWN, PLAN, now=NOW)
    assert (verdict.action, verdict.outcome) == (Action.ADOPT, Outcome.ADOPTED)
    assert decide(replace(recipe_secret(HOST), type=None, data=None), OWN, PLAN, now=NOW).action is Action.READ


@pytest.mark.parametrize(
    "secret",
    [
        recipe_secret(HOST, "ghcr.io"),  # another registry's login inside: someone else's
        recipe_secret(HOST, HOST.replace("123456789012", "123456789013")),  # two entries: not kubectl's
        replace(recipe_secret(HOST), data={DOCKERCONFIGJSON_KEY: PRETTY}),  # docker login's file, pretty-printed
        recipe_secret(OTHER),  # an ECR host this configuration does not serve
        recipe_secret(f"http://{HOST}"),  # a scheme the recipe's key is not adopted under
        recipe_secret(),  # no auths at all
        replace(recipe_secret(HOST), type="Opaque"),
        replace(recipe_secret(HOST), immutable=True),
    ],
)
def test_any_other_unlabelled_secret_is_skipped_as_foreign(secret: SecretState) -> None:
    verdict = decide(secret, OWN, PLAN, now=NOW)
    assert (verdict.action, verdict.outcome, verdict.foreign) == (Action.DONE, Outcome.SKIPPED, True)


def test_with_adoption_off_the_recipes_secret_is_foreign_and_not_even_read() -> None:
    no_adoption = replace(PLAN, adopt_existing=False)
    verdict = decide(replace(recipe_secret(HOST), type=None, data=None), OWN, no_adoption, now=NOW)
    assert (verdict.outcome, verdict.foreign) == (Outcome.SKIPPED, True)
    assert "adoption is off" in verdict.reason


def test_adoption_keeps_everything_else_and_labels_the_secret() -> None:
    fake = FakeCluster()
    fake.add_namespace("team-a")
    fake.secrets["team-a", "regcred"] = replace(recipe_secret(HOST), labels={"team": "a"}, resource_version="7")
    summary = renew_pull_secrets(fake, OWN.credentials, PLAN, cluster_label="t", now=lambda: NOW)
    assert summary.results[0].outcome is Outcome.ADOPTED
    adopted = fake.secrets["team-a", "regcred"]
    assert adopted.labels == {"team": "a", MANAGED_BY_LABEL: "ecr-token-refresher"}
    auths = json.loads(base64.b64decode(adopted.data[DOCKERCONFIGJSON_KEY]))["auths"]  # type: ignore[index]
    assert auths[HOST]["password"] == "pw-1"


def test_a_dry_run_names_the_registries_an_update_would_retire() -> None:
    fake = FakeCluster()
    fake.add_namespace("team-a")
    fake.secrets["team-a", "regcred"] = managed(TWO)
    summary = renew_pull_secrets(fake, OWN.credentials, replace(PLAN, dry_run=True), cluster_label="t", now=lambda: NOW)
    result = summary.results[0]
    assert (result.outcome, result.reason) == (
        Outcome.UPDATED,
        f"dry run: would update (registries changed: retires {OTHER})",
    )
    assert fake.writes() == []


OTHER_DOWN = replace(OWN, unavailable={OTHER: f"could not assume {ROLE} (AccessDenied)"})


def test_a_secret_holding_a_registry_without_a_token_is_kept_not_stripped_of_it() -> None:
    verdict = decide(managed(TWO), OTHER_DOWN, PLAN, now=NOW)  # 11 h left: not due
    assert (verdict.action, verdict.outcome) == (Action.DONE, Outcome.FAILED)
    assert f"kept as it is: no token for {OTHER} this run" in verdict.reason


def test_the_recipes_secret_for_a_registry_without_a_token_is_kept() -> None:
    verdict = decide(recipe_secret(OTHER), OTHER_DOWN, PLAN, now=NOW)
    assert (verdict.action, verdict.outcome, verdict.foreign) == (Action.DONE, Outcome.FAILED, False)
    assert f"no token for {OTHER}" in verdict.reason


def test_one_registry_without_a_token_leaves_the_others_written_and_fails_the_run() -> None:
    fake = FakeCluster()
    for namespace in ("team-a", "team-b", "team-c"):
        fake.add_namespace(namespace)
    fake.secrets["team-b", "regcred"] = replace(managed(TWO), namespace="team-b")
    fake.secrets["team-c", "regcred"] = replace(managed(OWN), namespace="team-c")  # written without OTHER, fresh
    summary = renew_pull_secrets(
        fake, OWN.credentials, PLAN, cluster_label="t", now=lambda: NOW, unavailable=OTHER_DOWN.unavailable
    )
    by_namespace = {result.namespace: result for result in summary.results}
    assert by_namespace["team-a"].outcome is Outcome.CREATED
    assert f"written without {OTHER}: no token this run" in by_namespace["team-a"].reason
    assert by_namespace["team-b"].outcome is Outcome.FAILED  # its OTHER login still serves for 11 h
    assert fake.secrets["team-b", "regcred"] == replace(managed(TWO), namespace="team-b")
    assert by_namespace["team-c"].outcome is Outcome.UNCHANGED  # no rewrite every run while OTHER is down
    assert not summary.ok
    assert summary.unavailable_registries == (OTHER,)
    assert summary.to_dict()["unavailable_registries"] == [OTHER]
    kept = "secrets holding them kept as they are"
    assert summary.errors == (f"could not assume {ROLE} (AccessDenied): {OTHER} not written ({kept})",)
    created = json.loads(base64.b64decode(fake.secrets["team-a", "regcred"].data[DOCKERCONFIGJSON_KEY]))  # type: ignore[index]
    assert list(created["auths"]) == [HOST]


def test_a_kept_secret_is_rewritten_without_the_registry_once_it_falls_due() -> None:
    """Kept only while not due: past that, its other logins must not end with the one that has no token."""
    verdict = decide(managed(TWO, left=PLAN.refresh_threshold - timedelta(minutes=1)), OTHER_DOWN, PLAN, now=NOW)
    assert (verdict.action, verdict.outcome) == (Action.UPDATE, Outcome.UPDATED)
    assert f"retires {OTHER}" in verdict.reason
    assert f"written without {OTHER}: no token this run" in verdict.reason


def test_a_foreign_secret_shaped_like_the_recipe_stays_foreign_while_its_registry_has_no_token() -> None:
    opaque = replace(recipe_secret(OTHER), type="Opaque")
    verdict = decide(opaque, OTHER_DOWN, PLAN, now=NOW)
    assert (verdict.outcome, verdict.foreign) == (Outcome.SKIPPED, True)


def test_service_accounts_are_patched_where_the_secret_is_kept_and_the_watchdog_sees_the_missing_login() -> None:
    fake = FakeCluster()
    for namespace in ("team-a", "team-b"):
        fake.add_namespace(namespace)
        fake.accounts[namespace, "default"] = ServiceAccountState("default", namespace, (), "1")
    fake.secrets["team-a", "regcred"] = managed(TWO)  # holds OTHER's login, 11 h left: kept
    plan = replace(PLAN, service_accounts=("default",))
    summary = renew_pull_secrets(
        fake, OWN.credentials, plan, cluster_label="t", now=lambda: NOW, unavailable=OTHER_DOWN.unavailable
    )
    by_namespace = {result.namespace: result for result in summary.results}
    assert by_namespace["team-a"].outcome is Outcome.FAILED
    assert fake.accounts["team-a", "default"].image_pull_secrets == ("regcred",)
    assert fake.accounts["team-b", "default"].image_pull_secrets == ("regcred",)
    assert by_namespace["team-a"].expires_at == NOW + timedelta(hours=11)  # every configured login is there
    assert by_namespace["team-b"].expires_at is None  # created without OTHER: its pulls from there fail now
    assert summary.earliest_expiry() is None


def test_renewals_spread_over_an_hour_by_namespace_and_a_new_token_is_never_due() -> None:
    names = [f"team-{number}" for number in range(1000)]
    thresholds = [renewal_threshold(name, PLAN) for name in names]
    assert min(thresholds) >= PLAN.refresh_threshold
    assert max(thresholds) < PLAN.refresh_threshold + timedelta(hours=1)
    minutes = {int((threshold - PLAN.refresh_threshold).total_seconds() // 60) for threshold in thresholds}
    assert len(minutes) == 60  # a fleet written in one run falls due over 60 runs of the 1-minute schedule
    assert renewal_threshold("team-7", PLAN) == renewal_threshold("team-7", PLAN)
    late = replace(PLAN, refresh_threshold=timedelta(minutes=690))
    assert max(renewal_threshold(name, late) for name in names) < TOKEN_LIFETIME
    for name in names[:50]:  # just written: 12 h left
        fresh = written(desired_secret(None, OWN, namespace=name, secret_name="regcred", now=NOW), at=NOW)
        assert decide(fresh, OWN, late, now=NOW).outcome is Outcome.UNCHANGED
