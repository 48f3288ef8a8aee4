"""One contract, two servers: the local API server and a real kube-apiserver (when it can be built).

`make test` runs the real tier when Go is available and says loudly when it skips it; `make
test-apiserver` runs only this tier.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from typing import Any

import pytest
from kubernetes import client as k8s

from localkube import ADMIN, LocalKube, Rule, User
from sandbox.clients import api_client
from sandbox.real_apiserver import ADMIN_TOKEN, NOBODY_TOKEN, RealKube


@dataclass
class Server:
    """What a contract test needs from either server: where it is and an admin client."""

    name: str
    url: str
    ca_pem: bytes
    admin_token: str
    local: LocalKube | None = None

    def core(self, token: str | None = None) -> k8s.CoreV1Api:
        return k8s.CoreV1Api(api_client(self.url, self.ca_pem, token or self.admin_token))

    def namespace(self, *, labels: dict[str, str] | None = None) -> str:
        """A fresh namespace (real servers keep state across tests), with its default service account."""
        name = f"ct-{uuid.uuid4().hex[:10]}"
        core = self.core()
        core.create_namespace(k8s.V1Namespace(metadata=k8s.V1ObjectMeta(name=name, labels=labels)))
        if self.name == "kube-apiserver":  # no controller-manager runs: create what it would
            core.create_namespaced_service_account(
                name, k8s.V1ServiceAccount(metadata=k8s.V1ObjectMeta(name="default"))
            )
        return name

    @contextmanager
    def nobody_may_list_secrets_named(self, secret: str) -> Iterator[None]:
        """While inside: the `nobody` user holds a cluster-wide `list secrets` rule with resourceNames
        [secret], as the refresher's ClusterRole does."""
        if self.local is not None:
            before = self.local.users[NOBODY_TOKEN]
            self.local.users[NOBODY_TOKEN] = replace(before, rules=(Rule.of("list", "secrets", resource_names=secret),))
            try:
                yield
            finally:
                self.local.users[NOBODY_TOKEN] = before
            return
        rbac = k8s.RbacAuthorizationV1Api(self.core().api_client)
        name = f"ct-list-{secret}"
        rule = k8s.V1PolicyRule(api_groups=[""], resources=["secrets"], verbs=["list"], resource_names=[secret])
        rbac.create_cluster_role(k8s.V1ClusterRole(metadata=k8s.V1ObjectMeta(name=name), rules=[rule]))
        rbac.create_cluster_role_binding(
            k8s.V1ClusterRoleBinding(
                metadata=k8s.V1ObjectMeta(name=name),
                role_ref=k8s.V1RoleRef(api_group="rbac.authorization.k8s.io", kind="ClusterRole", name=name),
                subjects=[k8s.RbacV1Subject(kind="User", name="nobody", api_group="rbac.authorization.k8s.io")],
            )
        )
        try:
            yield
        finally:
            rbac.delete_cluster_role_binding(name)
            rbac.delete_cluster_role(name)


@pytest.fixture(scope="session")
def local_kube() -> Iterator[LocalKube]:
    with LocalKube(users=(ADMIN, User("nobody", token=NOBODY_TOKEN))) as kube:
        yield kube


@pytest.fixture(params=["localkube", "kube-apiserver"])
def server(request: pytest.FixtureRequest) -> Server:
    if request.param == "localkube":
        local: LocalKube = request.getfixturevalue("local_kube")
        return Server("localkube", local.url, local.ca_pem, "admin-token", local)
    real: RealKube = request.getfixturevalue("real_kube")
    return Server("kube-apiserver", real.url, real.ca_pem, ADMIN_TOKEN)


def status(error: Any) -> tuple[int, str, str]:
    """(HTTP status, Status.reason, Status.message) of a raised ApiException."""
    body = json.loads(error.value.body)
    return error.value.status, body["reason"], body["message"]
