"""A LocalKube per test and the official kubernetes client pointed at it over HTTPS."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from kubernetes import client as k8s

from localkube import ADMIN, LocalKube, Rule, User
from sandbox.clients import api_client

READER = User("reader", token="reader-token", rules=(Rule.of("get", "secrets", namespaces="team-a"),))


@pytest.fixture
def kube() -> Iterator[LocalKube]:
    with LocalKube(users=(ADMIN, READER)) as server:
        for name in ("team-a", "team-b"):
            server.store.add_namespace(name)
        yield server


def core_api(kube: LocalKube, token: str = "admin-token", *, retries: object = False) -> k8s.CoreV1Api:
    return k8s.CoreV1Api(api_client(kube.url, kube.ca_pem, token, retries=retries))


@pytest.fixture
def api(kube: LocalKube) -> k8s.CoreV1Api:
    return core_api(kube)
