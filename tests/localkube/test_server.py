"""LocalKube answers the official kubernetes client as kube-apiserver does, on the subset used."""

from __future__ import annotations

import base64
import json
import ssl
import urllib.request

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
    body = json.loads(error.value.body)
    return error.value.status, body["reason"], body["message"]


def test_create_sets_identity_and_version(api: k8s.CoreV1Api) -> None:
    created = api.create_namespaced_secret("team-a", secret())
    assert created.metadata.uid
    assert created.metadata.creation_timestamp
    assert created.metadata.resource_version
    assert created.metadata.namespace == "team-a"
    assert api.read_namespaced_secret("regcred", "team-a").data == {".dockerconfigjson": DOCKERCONFIG}


def test_create_errors_match_kube_apiserver(api: k8s.CoreV1Api) -> None:
    with pytest.raises(ApiException) as missing_namespace:
        api.create_namespaced_secret("ghost", secret())
    assert status_of(missing_namespace) == (404, "NotFound", 'namespaces "ghost" not found')
    api.create_namespaced_secret("team-a", secret())
    with pytest.raises(ApiException) as twice:
        api.create_namespaced_secret("team-a", secret())
    assert status_of(twice) == (409, "AlreadyExists", 'secrets "regcred" already exists')
    with pytest.raises(ApiException) as bad_name:
        api.create_namespaced_secret("team-a", secret("Bad_Name"))
    assert status_of(bad_name)[:2] == (422, "Invalid")
    no_key = k8s.V1Secret(metadata=k8s.V1ObjectMeta(name="x"), type="kubernetes.io/dockerconfigjson", data={})
    with pytest.raises(ApiException) as missing_key:
        api.create_namespaced_secret("team-a", no_key)
    assert status_of(missing_key) == (422, "Invalid", 'Secret "x" is invalid: data[.dockerconfigjson]: Required value')


def test_terminating_namespaces_refuse_new_content(kube: LocalKube, api: k8s.CoreV1Api) -> None:
    kube.store.add_namespace("leaving", terminating=True)
    with pytest.raises(ApiException) as refused:
        api.create_namespaced_secret("leaving", secret())
    code, reason, message = status_of(refused)
    assert (code, reason) == (403, "Forbidden")
    assert "because it is being terminated" in message


def test_replace_with_a_stale_resource_version_conflicts(api: k8s.CoreV1Api) -> None:
    created = api.create_namespaced_secret("team-a", secret())
    updated = api.replace_namespaced_secret("regcred", "team-a", created)
    assert int(updated.metadata.resource_version) > int(created.metadata.resource_version)
    assert updated.metadata.uid == created.metadata.uid
    with pytest.raises(ApiException) as stale:
        api.replace_namespaced_secret("regcred", "team-a", created)
    assert status_of(stale)[:2] == (409, "Conflict")
    with pytest.raises(ApiException) as gone:
        api.replace_namespaced_secret("other", "team-a", secret("other"))
    assert status_of(gone)[0] == 404


def test_the_type_of_a_secret_is_immutable(api: k8s.CoreV1Api) -> None:
    created = api.create_namespaced_secret("team-a", secret())
    created.type = "Opaque"
    with pytest.raises(ApiException) as immutable:
        api.replace_namespaced_secret("regcred", "team-a", created)
    assert "field is immutable" in status_of(immutable)[2]


@pytest.mark.parametrize(
    ("content_type", "patch"),
    [
        ("application/strategic-merge-patch+json", {"metadata": {"labels": {"b": "2"}}}),
        ("application/merge-patch+json", {"metadata": {"labels": {"b": "2"}}}),
        ("application/json-patch+json", [{"op": "add", "path": "/metadata/labels/b", "value": "2"}]),
    ],
)
def test_patches_merge_labels(api: k8s.CoreV1Api, content_type: str, patch: object) -> None:
    api.create_namespaced_secret("team-a", secret(labels={"a": "1"}))
    patched = api.patch_namespaced_secret("regcred", "team-a", patch, _content_type=content_type)
    assert patched.metadata.labels == {"a": "1", "b": "2"}


def test_a_resource_version_in_a_patch_is_a_precondition(api: k8s.CoreV1Api) -> None:
    api.create_namespaced_secret("team-a", secret())
    with pytest.raises(ApiException) as stale:
        api.patch_namespaced_secret(
            "regcred", "team-a", {"metadata": {"resourceVersion": "1"}}, _content_type="application/merge-patch+json"
        )
    assert status_of(stale)[:2] == (409, "Conflict")


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


def test_server_side_apply_needs_a_field_manager_and_creates(api: k8s.CoreV1Api) -> None:
    body = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "applied"}, "type": "Opaque", "data": {}}
    with pytest.raises(ApiException) as no_manager:
        api.patch_namespaced_secret("applied", "team-a", body, _content_type="application/apply-patch+yaml")
    assert "fieldManager: Required value" in status_of(no_manager)[2]
    applied = api.patch_namespaced_secret(
        "applied", "team-a", body, field_manager="test", _content_type="application/apply-patch+yaml"
    )
    assert applied.metadata.name == "applied"


def test_strategic_merge_replaces_image_pull_secrets_whole(api: k8s.CoreV1Api) -> None:
    patch = {"imagePullSecrets": [{"name": "a"}, {"name": "b"}]}
    api.patch_namespaced_service_account("default", "team-a", patch)
    patched = api.patch_namespaced_service_account("default", "team-a", {"imagePullSecrets": [{"name": "c"}]})
    assert [ref.name for ref in patched.image_pull_secrets] == ["c"]


def test_delete_then_get_is_404(api: k8s.CoreV1Api) -> None:
    api.create_namespaced_secret("team-a", secret())
    api.delete_namespaced_secret("regcred", "team-a")
    with pytest.raises(ApiException) as gone:
        api.read_namespaced_secret("regcred", "team-a")
    assert status_of(gone) == (404, "NotFound", 'secrets "regcred" not found')


@pytest.mark.parametrize(
    ("selector", "expected"),
    [
        ("tier=web", ["a", "b"]),
        ("tier==web,env=prod", ["a"]),
        ("tier!=web", ["c", "team-a", "team-b"]),
        ("env in (prod, dev)", ["a", "b"]),
        ("env notin (prod)", ["b", "c", "team-a", "team-b"]),
        ("env", ["a", "b"]),
        ("!env", ["c", "team-a", "team-b"]),
    ],
)
def test_namespace_label_selectors(kube: LocalKube, api: k8s.CoreV1Api, selector: str, expected: list[str]) -> None:
    kube.store.add_namespace("a", labels={"tier": "web", "env": "prod"})
    kube.store.add_namespace("b", labels={"tier": "web", "env": "dev"})
    kube.store.add_namespace("c", labels={"tier": "db"})
    listed = api.list_namespace(label_selector=selector)
    assert [ns.metadata.name for ns in listed.items] == expected


def test_a_malformed_selector_is_400(api: k8s.CoreV1Api) -> None:
    with pytest.raises(ApiException) as bad:
        api.list_namespace(label_selector="env in (prod")
    assert status_of(bad)[:2] == (400, "BadRequest")


def test_namespaces_come_in_pages(kube: LocalKube, api: k8s.CoreV1Api) -> None:
    for index in range(5):
        kube.store.add_namespace(f"ns-{index}")
    names, token, pages = [], None, 0
    while True:
        page = api.list_namespace(limit=3, _continue=token)
        names += [ns.metadata.name for ns in page.items]
        pages += 1
        token = page.metadata._continue
        if not token:
            break
    assert pages == 3
    assert names == sorted(["team-a", "team-b", *(f"ns-{i}" for i in range(5))])


def test_unknown_tokens_get_401_and_missing_rules_403(kube: LocalKube) -> None:
    with pytest.raises(ApiException) as unknown:
        core_api(kube, "nobody").read_namespaced_secret("regcred", "team-a")
    assert status_of(unknown) == (401, "Unauthorized", "Unauthorized")
    reader = core_api(kube, "reader-token")
    with pytest.raises(ApiException) as forbidden:
        reader.read_namespaced_secret("regcred", "team-b")
    assert status_of(forbidden) == (
        403,
        "Forbidden",
        'secrets "regcred" is forbidden: User "reader" cannot get resource "secrets" in API group "" '
        'in the namespace "team-b"',
    )
    with pytest.raises(ApiException) as cannot_list:
        reader.list_namespace()
    assert status_of(cannot_list)[2] == (
        'namespaces is forbidden: User "reader" cannot list resource "namespaces" in API group "" at the cluster scope'
    )


def test_a_post_without_content_type_is_read_as_json(kube: LocalKube) -> None:
    body = json.dumps({"metadata": {"name": "raw"}, "type": "Opaque", "data": {}}).encode()
    request = urllib.request.Request(  # noqa: S310 - loopback test server
        f"{kube.url}/api/v1/namespaces/team-a/secrets",
        data=body,
        method="POST",
        headers={"Authorization": "Bearer admin-token"},
    )
    request.remove_header("Content-type")
    context = ssl.create_default_context(cadata=kube.ca_pem.decode())
    with urllib.request.urlopen(request, context=context) as response:  # noqa: S310
        assert response.status == 201
    assert kube.store.get("secrets", "team-a", "raw")["metadata"]["name"] == "raw"


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
