"""The real kube-apiserver as tests drive it: an admin client that applies the rendered manifests and
removes them afterwards, the function's own EKS identity, and waiting for an admission policy."""

from __future__ import annotations

import base64
import http.client
import json
import ssl
import time
import urllib.parse
import uuid
from collections.abc import Callable
from typing import Any

import boto3
import pytest
from kubernetes import client as k8s
from kubernetes import utils
from kubernetes.client.exceptions import ApiException

from infra.config import DeploymentConfig
from lambda_fn.aws import generate_eks_token
from sandbox.clients import api_client
from sandbox.eks_cluster import CLUSTER_NAME
from sandbox.moto_aws import REGION, AwsCredentials
from sandbox.real_apiserver import ADMIN_TOKEN, RealKube

Invoke = Callable[..., dict[str, Any]]
DOCKERCONFIG = "kubernetes.io/dockerconfigjson"


def secret(name: str, kind: str = "Opaque", **metadata: Any) -> k8s.V1Secret:
    data: dict[str, bytes | str] = {".dockerconfigjson": "eyJhdXRocyI6e319"} if kind == DOCKERCONFIG else {"k": "dg=="}
    return k8s.V1Secret(metadata=k8s.V1ObjectMeta(name=name, **metadata), type=kind, data=data)


class Cluster:
    """The real API server, as its admin (or as the token given)."""

    def __init__(self, kube: RealKube, token: str = ADMIN_TOKEN) -> None:
        self.kube = kube
        self.api = api_client(kube.url, kube.ca_pem, token)
        self.core = k8s.CoreV1Api(self.api)
        self.rbac = k8s.RbacAuthorizationV1Api(self.api)
        self.admission = k8s.AdmissionregistrationV1Api(self.api)
        self.applied: list[dict[str, Any]] = []

    def namespace(self, name: str, labels: dict[str, str] | None = None) -> str:
        self.core.create_namespace(k8s.V1Namespace(metadata=k8s.V1ObjectMeta(name=name, labels=labels)))
        self.core.create_namespaced_service_account(
            name, k8s.V1ServiceAccount(metadata=k8s.V1ObjectMeta(name="default"))
        )
        return name

    def apply(self, manifests: list[dict[str, Any]]) -> None:
        for manifest in manifests:
            utils.create_from_dict(self.api, manifest)  # type: ignore[no-untyped-call]  # the client leaves utils untyped
            self.applied.append(manifest)

    def remove_applied(self) -> None:
        """Undo apply(): the objects have fixed names and the server outlives the test."""

        def name(manifest: dict[str, Any]) -> str:
            return str(manifest["metadata"]["name"])

        deleters: dict[str, Callable[[dict[str, Any]], object]] = {
            "ClusterRole": lambda m: self.rbac.delete_cluster_role(name(m)),
            "ClusterRoleBinding": lambda m: self.rbac.delete_cluster_role_binding(name(m)),
            "Role": lambda m: self.rbac.delete_namespaced_role(name(m), m["metadata"]["namespace"]),
            "RoleBinding": lambda m: self.rbac.delete_namespaced_role_binding(name(m), m["metadata"]["namespace"]),
            "ServiceAccount": lambda m: self.core.delete_namespaced_service_account(
                name(m), m["metadata"]["namespace"]
            ),
            "Lease": lambda m: k8s.CoordinationV1Api(self.api).delete_namespaced_lease(
                name(m), m["metadata"]["namespace"]
            ),
            "ValidatingAdmissionPolicy": lambda m: self.admission.delete_validating_admission_policy(name(m)),
            "ValidatingAdmissionPolicyBinding": lambda m: self.admission.delete_validating_admission_policy_binding(
                name(m)
            ),
        }
        subjects = [
            subject
            for manifest in self.applied
            if manifest["kind"].endswith("Binding")
            for subject in manifest.get("subjects", [])
        ]
        policies = any(manifest["kind"] == "ValidatingAdmissionPolicy" for manifest in self.applied)
        for manifest in reversed(self.applied):
            deleters[manifest["kind"]](manifest)
        self.applied.clear()
        if policies:
            for subject in subjects:
                self._wait_until_admitted(subject)

    def _wait_until_admitted(self, subject: dict[str, str], timeout: float = 10.0) -> None:
        """Until no policy refuses `subject` a dry-run create of any secret: kube-apiserver may enforce a
        deleted policy for a moment, and the next test applies one of the same name with another scope.
        Asked as the subject, impersonated with system:masters added so that RBAC (removed already)
        allows the request and only admission decides."""
        if subject["kind"] == "ServiceAccount":
            user, groups = f"system:serviceaccount:{subject['namespace']}:{subject['name']}", ["system:masters"]
        else:
            user, groups = "policy-probe", ["system:masters", subject["name"]]
        deadline = time.monotonic() + timeout
        while self._dry_run_create_as(user, groups) == 422:
            if time.monotonic() > deadline:
                raise TimeoutError(f"an admission policy still refuses {user} {groups} after {timeout}s")
            time.sleep(0.1)

    def _dry_run_create_as(self, user: str, groups: list[str]) -> int:
        """The status of a dry-run secret create as `user` in `groups`; raw HTTP, as the kubernetes client
        cannot send the Impersonate-Group header more than once."""
        url = urllib.parse.urlsplit(self.kube.url)
        context = ssl.create_default_context(cadata=self.kube.ca_pem.decode())
        connection = http.client.HTTPSConnection(url.hostname or "", url.port, context=context, timeout=10)
        body = json.dumps({"metadata": {"name": f"probe-{uuid.uuid4().hex[:6]}"}, "type": "Opaque"})
        connection.putrequest("POST", "/api/v1/namespaces/default/secrets?dryRun=All")
        for header, value in [
            ("Authorization", f"Bearer {ADMIN_TOKEN}"),
            ("Content-Type", "application/json"),
            ("Content-Length", str(len(body))),
            ("Impersonate-User", user),
            *[("Impersonate-Group", group) for group in groups],
        ]:
            connection.putheader(header, value)
        connection.endheaders(body.encode())
        status = connection.getresponse().status
        connection.close()
        return status

    def auths(self, namespace: str, secret: str = "regcred") -> dict[str, Any]:
        data = self.core.read_namespaced_secret(secret, namespace).data or {}
        auths: dict[str, Any] = json.loads(base64.b64decode(data[".dockerconfigjson"]))["auths"]
        return auths


def configure(monkeypatch: pytest.MonkeyPatch, **context: Any) -> DeploymentConfig:
    """The deployment's config for `context`, and its first cluster's function environment set."""
    config = DeploymentConfig.from_context({"clusterName": CLUSTER_NAME, **context})
    for variable, value in config.environment(config.clusters[0]).items():
        monkeypatch.setenv(variable, value)
    return config


def outcomes(result: dict[str, Any]) -> dict[str, str]:
    return {entry["namespace"]: entry["outcome"] for entry in result["namespaces"]}


def role_client(kube: RealKube, credentials: AwsCredentials) -> Cluster:
    """A client authenticated exactly as the refresher is: an EKS token signed by its role."""
    session = boto3.Session(
        aws_access_key_id=credentials.access_key_id,
        aws_secret_access_key=credentials.secret_access_key,
        aws_session_token=credentials.session_token,
        region_name=REGION,
    )
    return Cluster(kube, generate_eks_token(session, cluster_name=CLUSTER_NAME, region=REGION))


def wait_for_policy(
    identity: Cluster,
    namespace: str,
    policy: str,
    timeout: float = 10.0,
    *,
    denied: Callable[[], object] | None = None,
    admitted: Callable[[], object] | None = None,
) -> None:
    """kube-apiserver loads admission policies (and namespaces' labels) within about a second, and a policy
    just replaced under the same name may still answer for a moment: wait until a server-side dry run the
    policy must deny (by default, creating another secret) is denied by it, and one it must admit is
    admitted. Nothing is stored."""
    probe = k8s.V1Secret(metadata=k8s.V1ObjectMeta(name=f"probe-{uuid.uuid4().hex[:6]}"), type="Opaque")
    denied = denied or (lambda: identity.core.create_namespaced_secret(namespace, probe, dry_run="All"))
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if _refused_by(denied, policy) and (admitted is None or not _refused_by(admitted, policy)):
            return
        time.sleep(0.1)
    raise TimeoutError(f"admission policy {policy} not in effect after {timeout}s")


def wait_for_policy_gone(identity: Cluster, namespace: str, policy: str, timeout: float = 10.0) -> None:
    """The other way round: until the dry-run create another secret is no longer refused by `policy` (one
    a previous test applied under the same name may answer for a moment after its deletion)."""
    probe = k8s.V1Secret(metadata=k8s.V1ObjectMeta(name=f"probe-{uuid.uuid4().hex[:6]}"), type="Opaque")
    deadline = time.monotonic() + timeout
    while _refused_by(lambda: identity.core.create_namespaced_secret(namespace, probe, dry_run="All"), policy):
        if time.monotonic() > deadline:
            raise TimeoutError(f"admission policy {policy} still in effect after {timeout}s")
        time.sleep(0.1)


def wait_for_policy_answer(identity: Cluster, call: Callable[[], object], status: int, timeout: float = 10.0) -> None:
    """Until `call` (a dry run) is answered with `status`: a new policy is in force a moment after it is created."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            call()
        except ApiException as exc:
            if exc.status == status:
                return
        if time.monotonic() > deadline:
            raise TimeoutError(f"no {status} answer after {timeout}s")
        time.sleep(0.1)


def _refused_by(call: Callable[[], object], policy: str) -> bool:
    try:
        call()
    except ApiException as exc:
        return exc.status == 422 and policy in (exc.body or "")
    return False
