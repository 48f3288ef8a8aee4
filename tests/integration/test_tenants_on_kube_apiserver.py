"""Registries per tenant on a real kube-apiserver, under the rendered manifest as the only grant: each team's
secret holds the shared login and its own team's only, and the admission policy refuses the function's
identity a write of one team's host into another team's namespace."""

from __future__ import annotations

import base64
import json
import uuid

import pytest

from infra.rbac import render
from lambda_fn.secret_contract import TENANT_RULE
from sandbox.moto_aws import OWN_REGISTRY, AwsCredentials
from sandbox.real_apiserver import RealKube
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
from tests.integration.test_admission_policy import denied_by_the_policy, ours_in

pytestmark = pytest.mark.apiserver
# Each team's registry pulled with the team's own role (moto's STS lets the function assume them).
TEAM_A = "222222222222.dkr.ecr.us-east-1.amazonaws.com"
TEAM_B = "333333333333.dkr.ecr.us-east-1.amazonaws.com"
ROLE_A, ROLE_B = "arn:aws:iam::222222222222:role/team-a-pull", "arn:aws:iam::333333333333:role/team-b-pull"


def payload(*hosts: str) -> dict[str, bytes | str]:
    """`.dockerconfigjson` as the function writes it (sorted, compact), with an ECR-sized login per host."""
    login = {"auth": base64.b64encode(b"AWS:" + b"p" * 2400).decode(), "password": "p" * 2400, "username": "AWS"}
    document = json.dumps({"auths": dict.fromkeys(hosts, login)}, separators=(",", ":"), sort_keys=True)
    return {".dockerconfigjson": base64.b64encode(document.encode()).decode()}


def test_each_team_holds_its_own_registry_and_the_policy_refuses_another_teams(
    real: tuple[RealKube, Cluster], credentials: AwsCredentials, monkeypatch: pytest.MonkeyPatch, invoke: Invoke
) -> None:
    kube, admin = real
    prefix = f"tn{uuid.uuid4().hex[:6]}"
    tenants = [
        {"name": "team-a", "namespaces": [f"{prefix}-a"], "registries": [f"{TEAM_A}={ROLE_A}"]},
        {"name": "team-b", "namespaceSelector": f"tenant={prefix}-b", "registries": [f"{TEAM_B}={ROLE_B}"]},
    ]
    config = configure(monkeypatch, namespaces=[f"{prefix}-*"], tenants=tenants)
    admin.apply(render(config, own_registry=OWN_REGISTRY))
    team_a, team_b, team_c = (
        admin.namespace(f"{prefix}-a"),
        admin.namespace(f"{prefix}-b", labels={"tenant": f"{prefix}-b"}),
        admin.namespace(f"{prefix}-c"),
    )
    identity = role_client(kube, credentials)
    wait_for_policy(identity, team_a, "'ecr-token-refresher'", admitted=ours_in(identity, team_a))

    assert outcomes(invoke()) == dict.fromkeys((team_a, team_b, team_c), "created")
    assert set(admin.auths(team_a)) == {OWN_REGISTRY, TEAM_A}
    assert set(admin.auths(team_b)) == {OWN_REGISTRY, TEAM_B}
    assert set(admin.auths(team_c)) == {OWN_REGISTRY}
    assert outcomes(invoke()) == dict.fromkeys((team_a, team_b, team_c), "unchanged")

    # The function's identity may not put team-b's host into team-a's secret, nor into team-c's ...
    managed = {"app.kubernetes.io/managed-by": "ecr-token-refresher"}
    forged = identity.core.read_namespaced_secret("regcred", team_a)
    forged.data = payload(OWN_REGISTRY, TEAM_A, TEAM_B)
    message = denied_by_the_policy(lambda: identity.core.replace_namespaced_secret("regcred", team_a, forged))
    assert TENANT_RULE.format(TEAM_B) in message
    fresh = secret("regcred", DOCKERCONFIG, labels=managed)
    fresh.data = payload(TEAM_B)
    denied_by_the_policy(lambda: identity.core.create_namespaced_secret(team_c, fresh, dry_run="All"))
    # ... while what it writes for team-b (three ECR-sized logins) stays within CEL's cost budget.
    written = identity.core.read_namespaced_secret("regcred", team_b)
    written.data = payload(OWN_REGISTRY, TEAM_A, TEAM_B)
    denied_by_the_policy(lambda: identity.core.replace_namespaced_secret("regcred", team_b, written))
    written.data = payload(OWN_REGISTRY, TEAM_B)
    identity.core.replace_namespaced_secret("regcred", team_b, written, dry_run="All")

    # A namespace that leaves team-b loses its registry at the next run; the policy agrees on the labels.
    admin.core.patch_namespace(team_b, {"metadata": {"labels": {"tenant": None}}})
    assert outcomes(invoke()) == {team_a: "unchanged", team_b: "updated", team_c: "unchanged"}
    assert set(admin.auths(team_b)) == {OWN_REGISTRY}
