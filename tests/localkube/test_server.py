"""What only the local API server has: fault rules, the request log, per-namespace user rules.

Everything it shares with kube-apiserver is held to the real one in tests/contract."""

from __future__ import annotations

import base64
import json

import pytest
import urllib3
from kubernetes import client as k8s
from kubernetes.client.exceptions import ApiException

from localkube import FaultRule, LocalKube
from tests.localkube.conftest import core_api

DOCKERCONFIG = base64.b64encode(b'{"auths":{}}').decode()


def secret(name: str = "regcred", **metadata: object) -> k8s.V1Secret:
    return k8s.V1Secret(
        metadata=k8s.V1ObjectMeta(name=name, **metadata),  # type: ignore[arg-type]
        type="kubernetes.io/dockerconfigjson",
        data={".dockerconfigjson": DOCKERCONFIG},
    )


def status_of(error: pytest.ExceptionInfo[ApiException]) -> tuple[int, str, str]:
    body = json.loads(error.value.body or "{}")
    return error.value.status, body["reason"], body["message"]


def test_terminating_namespaces_refuse_new_content(kube: LocalKube, api: k8s.CoreV1Api) -> None:
    kube.store.add_namespace("leaving", terminating=True)
    with pytest.raises(ApiException) as refused:
        api.create_namespaced_secret("leaving", secret())
    code, reason, message = status_of(refused)
    assert (code, reason) == (403, "Forbidden")
    assert "because it is being terminated" in message


def test_a_failed_json_patch_test_is_rejected(api: k8s.CoreV1Api) -> None:
    api.create_namespaced_secret("team-a", secret())
    with pytest.raises(ApiException) as failed:
        api.patch_namespaced_secret(
            "regcred",
            "team-a",
            [{"op": "test", "path": "/type", "value": "Opaque"}],
            _content_type="application/json-patch+json",
        )
    assert status_of(failed)[0] == 422


def test_fault_rules_and_the_request_log(kube: LocalKube) -> None:
    kube.faults.append(FaultRule(method="GET", path="/secrets/", status=503, retry_after=0, times=1))
    retrying = core_api(kube, retries=urllib3.Retry(total=2, status_forcelist=(503,), backoff_factor=0))
    with pytest.raises(ApiException) as not_found:
        retrying.read_namespaced_secret("regcred", "team-a")
    assert not_found.value.status == 404
    statuses = [(r.method, r.status) for r in kube.requests if r.path.endswith("/secrets/regcred")]
    assert statuses == [("GET", 503), ("GET", 404)]


def test_a_dropped_connection_is_seen_by_the_client(kube: LocalKube, api: k8s.CoreV1Api) -> None:
    kube.faults.append(FaultRule(method="POST", drop=True, times=1))
    with pytest.raises(urllib3.exceptions.HTTPError):
        api.create_namespaced_secret("team-a", secret())
    assert kube.store.find("secrets", "team-a", "regcred") is None
    assert api.create_namespaced_secret("team-a", secret()).metadata.name == "regcred"


def test_rules_scope_users_to_namespaces(kube: LocalKube) -> None:
    reader = core_api(kube, "reader-token")
    with pytest.raises(ApiException) as not_there:
        reader.read_namespaced_secret("regcred", "team-a")
    assert status_of(not_there)[0] == 404  # allowed in team-a: the secret just does not exist
    with pytest.raises(ApiException) as forbidden:
        reader.read_namespaced_secret("regcred", "team-b")
    assert status_of(forbidden) == (
        403,
        "Forbidden",
        'secrets "regcred" is forbidden: User "reader" cannot get resource "secrets" in API group "" '
        'in the namespace "team-b"',
    )
