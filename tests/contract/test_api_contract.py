"""The calls the refresher relies on answer the same on the local API server and on kube-apiserver.

Every test runs twice (server = localkube, kube-apiserver); differences are fixed in localkube or
listed in localkube's docs (docs/development.md: "The local Kubernetes API").
"""

from __future__ import annotations

import base64
import http.client
import json
import ssl
import uuid
from typing import Any

import pytest
from kubernetes import client as k8s
from kubernetes.client.exceptions import ApiException

from sandbox.real_apiserver import NOBODY_TOKEN
from tests.contract.conftest import Server, status
from tests.selectors import NUMERIC_LABELS

DOCKERCONFIG = base64.b64encode(b'{"auths":{}}').decode()
pytestmark = pytest.mark.apiserver


def secret(name: str = "regcred", **metadata: object) -> k8s.V1Secret:
    return k8s.V1Secret(
        metadata=k8s.V1ObjectMeta(name=name, **metadata),  # type: ignore[arg-type]
        type="kubernetes.io/dockerconfigjson",
        data={".dockerconfigjson": DOCKERCONFIG},
    )


def test_create_sets_identity_and_version(server: Server) -> None:
    core, namespace = server.core(), server.namespace()
    created = core.create_namespaced_secret(namespace, secret())
    assert created.metadata.uid
    assert created.metadata.creation_timestamp
    assert created.metadata.resource_version
    assert created.metadata.namespace == namespace
    assert core.read_namespaced_secret("regcred", namespace).data == {".dockerconfigjson": DOCKERCONFIG}


def test_create_errors(server: Server) -> None:
    core, namespace = server.core(), server.namespace()
    with pytest.raises(ApiException) as missing_namespace:
        core.create_namespaced_secret("ct-ghost", secret())
    assert status(missing_namespace) == (404, "NotFound", 'namespaces "ct-ghost" not found')
    core.create_namespaced_secret(namespace, secret())
    with pytest.raises(ApiException) as twice:
        core.create_namespaced_secret(namespace, secret())
    assert status(twice) == (409, "AlreadyExists", 'secrets "regcred" already exists')
    with pytest.raises(ApiException) as bad_name:
        core.create_namespaced_secret(namespace, secret("Bad_Name"))
    code, reason, message = status(bad_name)
    assert (code, reason) == (422, "Invalid")
    assert message.startswith('Secret "Bad_Name" is invalid: metadata.name: Invalid value: "Bad_Name"')
    no_key = k8s.V1Secret(metadata=k8s.V1ObjectMeta(name="x"), type="kubernetes.io/dockerconfigjson", data={})
    with pytest.raises(ApiException) as missing_key:
        core.create_namespaced_secret(namespace, no_key)
    assert status(missing_key) == (422, "Invalid", 'Secret "x" is invalid: data[.dockerconfigjson]: Required value')


def test_replace_conflicts_and_missing(server: Server) -> None:
    core, namespace = server.core(), server.namespace()
    created = core.create_namespaced_secret(namespace, secret())
    unchanged = core.replace_namespaced_secret("regcred", namespace, created)
    assert unchanged.metadata.resource_version == created.metadata.resource_version  # a no-op is not written
    changed = core.read_namespaced_secret("regcred", namespace)
    changed.metadata.labels = {"changed": "yes"}
    updated = core.replace_namespaced_secret("regcred", namespace, changed)
    assert updated.metadata.uid == created.metadata.uid
    assert updated.metadata.resource_version != created.metadata.resource_version
    with pytest.raises(ApiException) as stale:
        core.replace_namespaced_secret("regcred", namespace, created)
    assert status(stale) == (
        409,
        "Conflict",
        'Operation cannot be fulfilled on secrets "regcred": the object has been modified; '
        "please apply your changes to the latest version and try again",
    )
    with pytest.raises(ApiException) as gone:
        core.replace_namespaced_secret("other", namespace, secret("other"))
    assert status(gone) == (404, "NotFound", 'secrets "other" not found')


def test_the_type_of_a_secret_is_immutable(server: Server) -> None:
    core, namespace = server.core(), server.namespace()
    created = core.create_namespaced_secret(namespace, secret())
    created.type = "Opaque"
    with pytest.raises(ApiException) as immutable:
        core.replace_namespaced_secret("regcred", namespace, created)
    code, _, message = status(immutable)
    assert code == 422
    assert "field is immutable" in message


@pytest.mark.parametrize(
    ("content_type", "patch"),
    [
        ("application/strategic-merge-patch+json", {"metadata": {"labels": {"b": "2"}}}),
        ("application/merge-patch+json", {"metadata": {"labels": {"b": "2"}}}),
        ("application/json-patch+json", [{"op": "add", "path": "/metadata/labels/b", "value": "2"}]),
    ],
)
def test_patches_merge_labels(server: Server, content_type: str, patch: Any) -> None:
    core, namespace = server.core(), server.namespace()
    core.create_namespaced_secret(namespace, secret(labels={"a": "1"}))
    patched = core.patch_namespaced_secret("regcred", namespace, patch, _content_type=content_type)
    assert patched.metadata.labels == {"a": "1", "b": "2"}


def test_a_resource_version_in_a_merge_patch_is_a_precondition(server: Server) -> None:
    core, namespace = server.core(), server.namespace()
    core.create_namespaced_secret(namespace, secret())
    with pytest.raises(ApiException) as stale:
        core.patch_namespaced_secret(
            "regcred", namespace, {"metadata": {"resourceVersion": "1"}}, _content_type="application/merge-patch+json"
        )
    assert status(stale)[:2] == (409, "Conflict")


def test_server_side_apply(server: Server) -> None:
    core, namespace = server.core(), server.namespace()
    body = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "applied"}, "type": "Opaque", "data": {}}
    with pytest.raises(ApiException) as no_manager:
        core.patch_namespaced_secret("applied", namespace, body, _content_type="application/apply-patch+yaml")
    assert "fieldManager: Required value" in status(no_manager)[2]
    applied = core.patch_namespaced_secret(
        "applied", namespace, body, field_manager="contract", _content_type="application/apply-patch+yaml"
    )
    assert applied.metadata.name == "applied"


def test_image_pull_secrets_are_replaced_whole_and_guarded(server: Server) -> None:
    core, namespace = server.core(), server.namespace()
    core.patch_namespaced_service_account("default", namespace, {"imagePullSecrets": [{"name": "a"}, {"name": "b"}]})
    patched = core.patch_namespaced_service_account("default", namespace, {"imagePullSecrets": [{"name": "c"}]})
    assert [ref.name for ref in patched.image_pull_secrets] == ["c"]
    with pytest.raises(ApiException) as stale:
        core.patch_namespaced_service_account(
            "default",
            namespace,
            {"metadata": {"resourceVersion": "1"}, "imagePullSecrets": []},
            _content_type="application/merge-patch+json",
        )
    assert status(stale)[:2] == (409, "Conflict")


def test_delete_then_get_is_404(server: Server) -> None:
    core, namespace = server.core(), server.namespace()
    core.create_namespaced_secret(namespace, secret())
    core.delete_namespaced_secret("regcred", namespace)
    with pytest.raises(ApiException) as gone:
        core.read_namespaced_secret("regcred", namespace)
    assert status(gone) == (404, "NotFound", 'secrets "regcred" not found')


@pytest.mark.parametrize(
    ("selector", "expected"),
    [
        ("tier=web", ["a", "b"]),
        ("tier==web,env=prod", ["a"]),
        ("tier!=web", ["c"]),
        ("env in (prod, dev)", ["a", "b"]),
        ("env notin (prod)", ["b", "c"]),
        ("env", ["a", "b"]),
        ("!env", ["c"]),
        ("env in(dev)", ["b"]),
        ("size>5", ["b"]),
        ("size < 5", ["a"]),
        ("env in ()", []),
    ],
)
def test_namespace_label_selectors(server: Server, selector: str, expected: list[str]) -> None:
    run = uuid.uuid4().hex[:8]
    names = {
        "a": server.namespace(labels={"ct-run": run, "tier": "web", "env": "prod", "size": "3"}),
        "b": server.namespace(labels={"ct-run": run, "tier": "web", "env": "dev", "size": "10"}),
        "c": server.namespace(labels={"ct-run": run, "tier": "db"}),
    }
    listed = server.core().list_namespace(label_selector=f"ct-run={run},{selector}")
    assert sorted(str(ns.metadata.name) for ns in listed.items) == sorted(names[key] for key in expected)


def test_numeric_selectors_read_label_values_as_int64(server: Server) -> None:
    run = uuid.uuid4().hex[:8]
    names = {key: server.namespace(labels={"ct-run": run, "size": value}) for key, value in NUMERIC_LABELS.items()}
    listed = server.core().list_namespace(label_selector=f"ct-run={run},size>5")
    assert sorted(str(ns.metadata.name) for ns in listed.items) == sorted(
        names[k] for k in ("seven", "largest", "padded")
    )
    listed = server.core().list_namespace(label_selector=f"ct-run={run},size<00005")
    assert [ns.metadata.name for ns in listed.items] == [names["four"]]


@pytest.mark.parametrize(
    "selector", ["env in (prod", "size>a", "size>", "size>9223372036854775808", "size<1_0", f"size>{'0' * 63}5"]
)
def test_a_malformed_selector_is_400(server: Server, selector: str) -> None:
    with pytest.raises(ApiException) as bad:
        server.core().list_namespace(label_selector=selector)
    assert status(bad)[:2] == (400, "BadRequest")


def test_namespaces_come_in_pages(server: Server) -> None:
    run = uuid.uuid4().hex[:8]
    created = sorted(server.namespace(labels={"ct-run": run}) for _ in range(5))
    names, token, pages = [], None, 0
    while True:
        page = server.core().list_namespace(label_selector=f"ct-run={run}", limit=2, _continue=token)
        names += [ns.metadata.name for ns in page.items]
        pages += 1
        token = page.metadata._continue
        if not token:
            break
    assert (pages, names) == (3, created)


def test_unknown_tokens_get_401_and_no_rules_403(server: Server) -> None:
    namespace = server.namespace()
    with pytest.raises(ApiException) as unknown:
        server.core("nobody-knows-me").read_namespaced_secret("regcred", namespace)
    assert status(unknown) == (401, "Unauthorized", "Unauthorized")
    with pytest.raises(ApiException) as forbidden:
        server.core(NOBODY_TOKEN).read_namespaced_secret("regcred", namespace)
    assert status(forbidden) == (
        403,
        "Forbidden",
        f'secrets "regcred" is forbidden: User "nobody" cannot get resource "secrets" in API group "" '
        f'in the namespace "{namespace}"',
    )
    with pytest.raises(ApiException) as cannot_list:
        server.core(NOBODY_TOKEN).list_namespace()
    assert status(cannot_list)[2] == (
        'namespaces is forbidden: User "nobody" cannot list resource "namespaces" in API group "" at the cluster scope'
    )


def test_a_terminating_namespace_refuses_new_secrets(server: Server) -> None:
    core, namespace = server.core(), server.namespace()
    core.delete_namespace(namespace)
    assert core.read_namespace(namespace).status.phase == "Terminating"
    with pytest.raises(ApiException) as refused:
        core.create_namespaced_secret(namespace, secret())
    code, reason, message = status(refused)
    assert (code, reason) == (403, "Forbidden")
    assert f"unable to create new content in namespace {namespace} because it is being terminated" in message


@pytest.mark.parametrize(("content_type", "expected"), [(None, 201), ("text/plain", 415)])
def test_an_undeclared_body_is_json_and_other_types_are_415(
    server: Server, content_type: str | None, expected: int
) -> None:
    """The kubernetes client sends creates without a Content-Type; both servers read JSON then."""
    namespace = server.namespace()
    body = json.dumps({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "raw"}, "type": "Opaque"})
    host, port = server.url.removeprefix("https://").split(":")
    connection = http.client.HTTPSConnection(
        host, int(port), context=ssl.create_default_context(cadata=server.ca_pem.decode())
    )
    headers = {"Authorization": f"Bearer {server.admin_token}"} | (
        {"Content-Type": content_type} if content_type else {}
    )
    connection.request("POST", f"/api/v1/namespaces/{namespace}/secrets", body=body, headers=headers)
    response = connection.getresponse()
    answer = json.loads(response.read())
    connection.close()
    assert response.status == expected
    if expected == 415:
        assert answer["reason"] == "UnsupportedMediaType"
        assert answer["message"].startswith("the body of the request was in an unknown format")


def test_discovery_lists_the_resources_used(server: Server) -> None:
    resources = {r.name: r for r in server.core().get_api_resources().resources}
    assert {"create", "get", "update", "patch"} <= set(resources["secrets"].verbs)
    assert resources["secrets"].namespaced
    assert {"get", "patch"} <= set(resources["serviceaccounts"].verbs)
    assert "list" in resources["namespaces"].verbs


def list_secrets(
    server: Server, token: str, query: str, accept: str = "application/json", resource: str = "secrets"
) -> tuple[int, dict[str, Any]]:
    """GET /api/v1/<resource>?<query> as `token`: (status, JSON answer)."""
    api = server.core(token).api_client
    response = api.call_api(
        "GET", f"{server.url}/api/v1/{resource}?{query}", {"Authorization": f"Bearer {token}", "Accept": accept}
    )
    response.read()
    return response.status, json.loads(response.data)


def test_namespaces_as_a_table_without_objects_page_and_show_who_is_terminating(server: Server) -> None:
    """What a run reads of the namespaces (lambda_fn/k8s/api.py, NAMESPACE_TABLE): names and status only."""
    label = f"ct-{uuid.uuid4().hex[:8]}"
    names = sorted(server.namespace(labels={"ct-table": label}) for _ in range(3))
    server.core().delete_namespace(names[1])  # stays Terminating: no namespace controller runs here
    table = "application/json;as=Table;g=meta.k8s.io;v=v1,application/json"
    query = f"labelSelector=ct-table%3D{label}&includeObject=None&limit=2"
    code, page = list_secrets(server, server.admin_token, query, accept=table, resource="namespaces")
    assert (code, page["kind"]) == (200, "Table")
    assert [column["name"] for column in page["columnDefinitions"]][:2] == ["Name", "Status"]
    assert all(row["object"] is None for row in page["rows"])
    _, rest = list_secrets(
        server,
        server.admin_token,
        f"{query}&continue={page['metadata']['continue']}",
        accept=table,
        resource="namespaces",
    )
    rows = [row["cells"][:2] for row in page["rows"] + rest["rows"]]
    assert [name for name, _ in rows] == names
    assert [status for _, status in rows] == ["Active", "Terminating", "Active"]


def test_a_list_by_name_is_allowed_by_resource_names_only_with_its_field_selector(server: Server) -> None:
    """What lets the refresher read every target secret's state in one paged list, and nothing else."""
    name = f"ct-{uuid.uuid4().hex[:8]}"
    namespaces = sorted(server.namespace() for _ in range(3))
    for namespace in namespaces:
        server.core().create_namespaced_secret(namespace, secret(name, labels={"ct": "yes"}))
    with server.nobody_may_list_secrets_named(name):
        code, page = list_secrets(server, NOBODY_TOKEN, f"fieldSelector=metadata.name%3D{name}&limit=2")
        assert (code, [i["metadata"]["namespace"] for i in page["items"]]) == (200, namespaces[:2])
        code, rest = list_secrets(
            server,
            NOBODY_TOKEN,
            f"fieldSelector=metadata.name%3D{name}&limit=2&continue={page['metadata']['continue']}",
        )
        assert (code, [i["metadata"]["namespace"] for i in rest["items"]]) == (200, namespaces[2:])
        metadata_only = "application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1,application/json"
        code, partial = list_secrets(
            server, NOBODY_TOKEN, f"fieldSelector=metadata.name%3D{name}", accept=metadata_only
        )
        assert (code, partial["kind"]) == (200, "PartialObjectMetadataList")
        assert {item["kind"] for item in partial["items"]} == {"PartialObjectMetadata"}
        assert all("data" not in item and item["metadata"]["labels"] == {"ct": "yes"} for item in partial["items"])
        assert list_secrets(server, NOBODY_TOKEN, "limit=2")[0] == 403
        assert list_secrets(server, NOBODY_TOKEN, "fieldSelector=metadata.name%3Dother")[0] == 403


def access_review(server: Server, token: str, **attributes: Any) -> bool:
    review = k8s.V1SelfSubjectAccessReview(
        spec=k8s.V1SelfSubjectAccessReviewSpec(resource_attributes=k8s.V1ResourceAttributes(**attributes))
    )
    answer = k8s.AuthorizationV1Api(server.core(token).api_client).create_self_subject_access_review(review)
    return bool(answer.status.allowed)


def test_self_subject_reviews_answer_for_the_caller_and_change_nothing(server: Server) -> None:
    namespace = server.namespace()
    assert access_review(server, server.admin_token, verb="create", resource="secrets", namespace=namespace)
    assert not access_review(server, NOBODY_TOKEN, verb="get", resource="secrets", namespace=namespace, name="x")
    with server.nobody_may_list_secrets_named("ct-review"):
        assert access_review(server, NOBODY_TOKEN, verb="list", resource="secrets", name="ct-review")
        assert access_review(
            server, NOBODY_TOKEN, verb="list", resource="secrets", namespace=namespace, name="ct-review"
        )
        assert not access_review(server, NOBODY_TOKEN, verb="list", resource="secrets", name="other")
        assert not access_review(server, NOBODY_TOKEN, verb="list", resource="secrets")
    who = k8s.AuthenticationV1Api(server.core(NOBODY_TOKEN).api_client).create_self_subject_review(
        k8s.V1SelfSubjectReview()
    )
    assert who.status.user_info.username == "nobody"
    assert "system:authenticated" in (who.status.user_info.groups or [])
    assert server.core().list_namespaced_secret(namespace).items == []


def test_a_dry_run_write_is_answered_and_stores_nothing(server: Server) -> None:
    core, namespace = server.core(), server.namespace()
    answered = core.create_namespaced_secret(namespace, secret(), dry_run="All")
    assert answered.metadata.name == "regcred"
    with pytest.raises(ApiException) as missing:
        core.read_namespaced_secret("regcred", namespace)
    assert status(missing)[0] == 404
    core.create_namespaced_secret(namespace, secret())
    current = core.read_namespaced_secret("regcred", namespace)
    current.metadata.labels = {"changed": "yes"}
    core.replace_namespaced_secret("regcred", namespace, current, dry_run="All")
    core.patch_namespaced_secret("regcred", namespace, {"metadata": {"labels": {"patched": "yes"}}}, dry_run="All")
    core.delete_namespaced_secret("regcred", namespace, dry_run="All")
    after = core.read_namespaced_secret("regcred", namespace)
    assert (after.metadata.labels, after.metadata.resource_version) == (None, current.metadata.resource_version)
    with pytest.raises(ApiException) as unsupported:
        core.create_namespaced_secret(namespace, secret("other"), dry_run="Some")
    code, reason, message = status(unsupported)
    assert (code, reason) == (422, "Invalid")
    # kube-apiserver before 1.31 spells the value as Go does ([]string{"Some"}); the rest is the same.
    prefix, suffix = 'CreateOptions.meta.k8s.io "" is invalid: dryRun: Unsupported value: ', ': supported values: "All"'
    assert message.startswith(prefix)
    assert message.endswith(suffix)
    assert message.removeprefix(prefix).removesuffix(suffix) in ('["Some"]', '[]string{"Some"}')
