"""Make a cluster hold exactly the manifest this configuration renders, or remove all of it.

`python -m infra.apply [--delete] [--cluster NAME] [--kubectl-arg ARG ...] key=value ...` (make apply,
make remove). kubectl does the talking, with the operator's own context and credentials; this module
decides what and in which order:

- apply: the admission policies and their bindings first, then a pause while kube-apiserver compiles
  them (it loads a new policy asynchronously, 0.4 s after its creation on v1.34 here: without the pause
  a first apply leaves the grant in force and the policy not yet), then the grants; then what an earlier
  configuration rendered and this one does not (the ClusterRole after a switch from globs to names, the
  Role of a namespace no longer listed) is deleted. kubectl's own --prune visits only the namespaces in
  the file, so it would miss exactly those Roles.
- delete: every object of this deployment, the grants first and the policies last, so that the
  identity is never bound and unconfined on the way out either.

This deployment's objects are those labelled app.kubernetes.io/instance=<its Kubernetes name>, unique
per stack name (infra.config.kubernetes_name); another stack's on the same cluster carry another value.
Objects applied before that label existed are adopted by the next apply (same names), except those the
configuration no longer renders: delete those once by hand.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Sequence
from typing import Any

import yaml

from infra.admission import ADMISSION
from infra.config import Cluster, DeploymentConfig
from infra.rbac import INSTANCE_LABEL, LEASE_API, POLICY_KINDS, RBAC, load_config, manifest_parser, render

# The kinds a manifest holds, in the order a delete goes: grants first, policies last, so that no grant
# is ever left without its policy.
API_VERSIONS = {
    "ClusterRoleBinding": RBAC,
    "RoleBinding": RBAC,
    "ClusterRole": RBAC,
    "Role": RBAC,
    "Lease": LEASE_API,
    "ServiceAccount": "v1",
    "ValidatingAdmissionPolicyBinding": ADMISSION,
    "ValidatingAdmissionPolicy": ADMISSION,
}
# Twice what kube-apiserver took to enforce a new policy here (0.4 s), and above its one-second reload.
POLICY_LOAD_SECONDS = 2.0
Key = tuple[str, str | None, str]  # kind, namespace, name


def key(document: dict[str, Any]) -> Key:
    metadata = document["metadata"]
    return document["kind"], metadata.get("namespace"), metadata["name"]


class Kubectl:
    def __init__(self, arguments: Sequence[str]) -> None:
        self.command = ["kubectl", *arguments]

    def run(self, *arguments: str, stdin: str | None = None) -> str:
        done = subprocess.run(  # noqa: S603 - kubectl from PATH with the operator's own arguments
            [*self.command, *arguments], input=stdin, capture_output=True, text=True, check=False
        )
        sys.stderr.write(done.stderr)
        if done.returncode:
            raise SystemExit(f"error: kubectl {arguments[0]} failed (exit {done.returncode})")
        return done.stdout

    def apply(self, documents: list[dict[str, Any]]) -> None:
        if documents:
            sys.stderr.write(self.run("apply", "-f", "-", stdin=yaml.safe_dump_all(documents, sort_keys=False)))

    def delete(self, keys: list[Key]) -> None:
        """In the order given: one kubectl call per kind, so the order holds whatever kubectl does inside one."""
        for kind in dict.fromkeys(kind for kind, _, _ in keys):
            stubs = [
                {
                    "apiVersion": API_VERSIONS[kind],
                    "kind": kind,
                    "metadata": {"name": name} | ({"namespace": namespace} if namespace else {}),
                }
                for each, namespace, name in keys
                if each == kind
            ]
            payload = yaml.safe_dump_all(stubs, sort_keys=False)
            sys.stderr.write(self.run("delete", "--ignore-not-found", "--wait=false", "-f", "-", stdin=payload))

    def deployed(self, config: DeploymentConfig) -> list[Key]:
        """This deployment's objects on the cluster, whatever configuration rendered them, in delete order."""
        kinds = ",".join(kind.lower() for kind in API_VERSIONS)
        selector = f"{INSTANCE_LABEL}={config.kubernetes_name}"
        listed = json.loads(self.run("get", kinds, "--all-namespaces", "-l", selector, "-o", "json"))
        order = list(API_VERSIONS)
        return sorted((key(item) for item in listed["items"]), key=lambda k: order.index(k[0]))


def apply(kubectl: Kubectl, config: DeploymentConfig, cluster: Cluster, own_registry: str | None) -> list[Key]:
    """Apply in the safe order, then delete what is deployed and no longer rendered. Returns the deleted."""
    manifest = render(config, cluster, own_registry=own_registry)
    policies = [document for document in manifest if document["kind"] in POLICY_KINDS]
    kubectl.apply(policies)
    if policies:
        time.sleep(POLICY_LOAD_SECONDS)
    kubectl.apply([document for document in manifest if document["kind"] not in POLICY_KINDS])
    rendered = {key(document) for document in manifest}
    stale = [found for found in kubectl.deployed(config) if found not in rendered]
    kubectl.delete(stale)
    return stale


def main(argv: list[str]) -> int:
    parser = manifest_parser("python -m infra.apply", __doc__)
    parser.add_argument("--delete", action="store_true", help="remove every object of this deployment")
    parser.add_argument(
        "--kubectl-arg", action="append", default=[], help="passed to kubectl, e.g. --kubectl-arg=--context=prod"
    )
    args = parser.parse_args(argv)
    loaded = load_config(args.context, args.cluster, from_host=args.host)
    if isinstance(loaded, int):
        return loaded
    config, cluster, own_registry = loaded
    kubectl = Kubectl(args.kubectl_arg)
    if args.delete:
        removed = kubectl.deployed(config)
        kubectl.delete(removed)
        print(f"removed {len(removed)} objects of {config.kubernetes_name}", file=sys.stderr)
        return 0
    stale = apply(kubectl, config, cluster, own_registry)
    shown = ", ".join(f"{kind} {namespace + '/' if namespace else ''}{name}" for kind, namespace, name in stale)
    print(f"applied; removed what this configuration no longer renders: {shown or 'nothing'}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
