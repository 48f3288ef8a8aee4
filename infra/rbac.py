"""The Kubernetes manifest for one cluster, rendered from the same configuration as the stack: RBAC
with exactly the verbs needed, and the admission policy that confines the identity to its own secret.

`python -m infra.rbac [--cluster NAME] key=value ...` prints it for `kubectl apply -f -` (make rbac).
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

import boto3
import yaml

from infra.admission import admission_policy
from infra.config import LEASE_SUFFIX, Cluster, DeploymentConfig, Environment
from lambda_fn.aws import caller_registry_host, registry_host
from lambda_fn.errors import ConfigError
from lambda_fn.models import LEASE_GROUP, LEASE_NAMESPACE

RBAC = "rbac.authorization.k8s.io/v1"
LEASE_API = f"{LEASE_GROUP}/v1"
LABELS = {"app.kubernetes.io/name": "ecr-token-refresher", "app.kubernetes.io/managed-by": "cdk"}
# Which deployment (stack) an object belongs to: `make apply` and `make remove` select by it alone.
INSTANCE_LABEL = "app.kubernetes.io/instance"
POLICY_KINDS = ("ValidatingAdmissionPolicy", "ValidatingAdmissionPolicyBinding")


def rules(config: DeploymentConfig) -> list[dict[str, Any]]:
    """PolicyRules for what the refresher calls (lambda_fn/k8s/api.py), and nothing else.

    Secrets: get and update (PUT) narrowed to the secret's name, and with globs or a selector list,
    which the name narrows too: kube-apiserver then allows only `?fieldSelector=metadata.name=<it>`.
    Create cannot be narrowed by name (the admission policy does that). Namespaces: list, only for
    globs and selectors. Service accounts: get and patch, by name.
    """
    settings = config.settings
    found: list[dict[str, Any]] = [
        {
            "apiGroups": [""],
            "resources": ["secrets"],
            "verbs": ["get", "list", "update"] if config.lists_namespaces else ["get", "update"],
            "resourceNames": [settings.secret_name],
        },
        {"apiGroups": [""], "resources": ["secrets"], "verbs": ["create"]},
    ]
    if settings.service_accounts:
        found.append(
            {
                "apiGroups": [""],
                "resources": ["serviceaccounts"],
                # list (by name, cluster-wide) with globs or a selector: the run reads them all at once.
                "verbs": ["get", "list", "patch"] if config.lists_namespaces else ["get", "patch"],
                "resourceNames": list(settings.service_accounts),
            }
        )
    if config.lists_namespaces:
        found.append({"apiGroups": [""], "resources": ["namespaces"], "verbs": ["list"]})
    return found


def subject(config: DeploymentConfig, cluster: Cluster) -> dict[str, str]:
    """EKS: the group the access entry maps the role to. Elsewhere: the kubeconfig's service account."""
    if not cluster.binds_service_account:
        return {"kind": "Group", "apiGroup": "rbac.authorization.k8s.io", "name": config.kubernetes_group}
    namespace, name = config.kubernetes_service_account
    return {"kind": "ServiceAccount", "namespace": namespace, "name": name}


def adoptable_hosts(config: DeploymentConfig, own_registry: str | None) -> list[str]:
    """The registries whose kubectl-recipe secrets the admission policy lets the function adopt: the
    configured ones, and the function's own when its account and region are known to the caller."""
    hosts = [spec.host for spec in config.registries]
    if config.settings.include_own_registry and own_registry:
        hosts.append(own_registry)
    return sorted(set(hosts))


def render(
    config: DeploymentConfig, cluster: Cluster | None = None, *, own_registry: str | None = None
) -> list[dict[str, Any]]:
    """ClusterRole + binding when targets are discovered (globs, selector), else a Role per namespace;
    the service account for a cluster outside EKS; the admission policy unless turned off.

    `own_registry` is the function's own registry host (account and region are known at deploy, not
    at an environment-agnostic synth): without it, the policy lets only the configured registries'
    recipe secrets be adopted."""
    cluster = cluster or config.clusters[0]
    name = config.kubernetes_name
    metadata = {"name": name, "labels": {**LABELS, INSTANCE_LABEL: name}}
    subjects = [subject(config, cluster)]
    # The policies and their bindings first: `kubectl apply` creates in order, so the identity is
    # confined before any RBAC binds it (and a cluster without the policy kinds fails before the grant).
    manifests: list[dict[str, Any]] = []
    if config.admission_policy:
        manifests += admission_policy(
            config, subjects[0], metadata=metadata, adoptable_hosts=adoptable_hosts(config, own_registry)
        )
    if cluster.binds_service_account:
        namespace, account = config.kubernetes_service_account
        manifests.append(
            {
                "apiVersion": "v1",
                "kind": "ServiceAccount",
                "metadata": {**metadata, "name": account, "namespace": namespace},
            }
        )
    if config.lists_namespaces:
        manifests += grant("ClusterRole", metadata, rules(config), subjects)
    for namespace in [] if config.lists_namespaces else sorted(set(config.settings.targets.names)):
        manifests += grant("Role", {**metadata, "namespace": namespace}, rules(config), subjects)
    return manifests + lease_grant(config, metadata, subjects)


def grant(
    kind: str, metadata: dict[str, Any], rules: list[dict[str, Any]], subjects: list[dict[str, str]]
) -> list[dict[str, Any]]:
    """A (Cluster)Role with `rules` and the binding of `subjects` to it, both named by `metadata`."""
    return [
        {"apiVersion": RBAC, "kind": kind, "metadata": metadata, "rules": rules},
        {
            "apiVersion": RBAC,
            "kind": f"{kind}Binding",
            "metadata": metadata,
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": kind, "name": metadata["name"]},
            "subjects": subjects,
        },
    ]


def lease_grant(
    config: DeploymentConfig, metadata: dict[str, Any], subjects: list[dict[str, str]]
) -> list[dict[str, Any]]:
    """The run's Lease (lambda_fn/lease.py) as an object of the manifest, created by whoever applies it,
    and a Role in kube-system to get and update that one Lease: no create, which RBAC could not narrow
    to a name in the namespace where the control plane keeps its own leader-election Leases."""
    lease = {**metadata, "namespace": LEASE_NAMESPACE}
    named = {**metadata, "name": metadata["name"] + LEASE_SUFFIX, "namespace": LEASE_NAMESPACE}
    rules = [
        {
            "apiGroups": [LEASE_GROUP],
            "resources": ["leases"],
            "verbs": ["get", "update"],
            "resourceNames": [config.kubernetes_name],
        }
    ]
    return [
        {"apiVersion": LEASE_API, "kind": "Lease", "metadata": lease, "spec": {}},
        *grant("Role", named, rules, subjects),
    ]


def to_yaml(config: DeploymentConfig, cluster: Cluster | None = None, *, own_registry: str | None = None) -> str:
    cluster = cluster or config.clusters[0]
    who = subject(config, cluster)
    header = (
        f"# ecr-token-refresher for cluster {cluster.name}: RBAC and admission policy for "
        f"{who['kind']} {who['name']!r}. Apply with: kubectl apply -f <this file>\n"
    )
    return header + yaml.safe_dump_all(render(config, cluster, own_registry=own_registry), sort_keys=False)


def manifest_files(config: DeploymentConfig, *, own_registry: str | None = None) -> dict[str, str]:
    """What `cdk synth` writes beside the templates, per environment: rbac.yaml for the EKS clusters (one
    manifest serves them all), rbac-<name>.yaml for each cluster reached through a kubeconfig; in an
    environment named by the clusters, rbac.<account>-<region>[-<name>].yaml, whose own registry is known.
    `own_registry`: the deploy's own environment's, when the caller knows it."""
    files: dict[str, str] = {}
    for environment, clusters in config.environments.items():
        # `.` is in no cluster name: a pinned environment's files never take an unpinned cluster's name.
        prefix = f"rbac.{environment.label}" if environment else "rbac"
        own = own_registry_of(environment) or own_registry
        eks = [cluster for cluster in clusters if cluster.is_eks]
        if eks:
            files[f"{prefix}.yaml"] = to_yaml(config, eks[0], own_registry=own)
        for cluster in clusters:
            if not cluster.is_eks:
                files[f"{prefix}-{cluster.name}.yaml"] = to_yaml(config, cluster, own_registry=own)
    return files


def own_registry_of(environment: Environment | None) -> str | None:
    """The function's own registry host in an environment the configuration names; None for the deploy's."""
    return registry_host(environment.account, environment.region) if environment else None


def context_from_cdk_json(path: Path, overrides: list[str]) -> dict[str, Any]:
    """cdk.json's context with `key=value` overrides, as `cdk synth -c key=value` would see it."""
    context: dict[str, Any] = json.loads(path.read_text()).get("context", {})
    for override in overrides:
        key, _, value = override.partition("=")
        context[key] = value
    return context


def load_config(
    overrides: list[str], cluster_name: str | None, *, from_host: bool = False
) -> tuple[DeploymentConfig, Cluster, str | None] | int:
    """cdk.json's context with the overrides, the cluster chosen (served from a host if `from_host`),
    and the function's own registry host (from the caller's AWS credentials); or, having said why on
    stderr, the exit code 2."""
    try:
        config = DeploymentConfig.from_context(context_from_cdk_json(Path("cdk.json"), overrides))
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    chosen = [cluster for cluster in config.clusters if cluster_name in (None, cluster.name, cluster.label)]
    labels = ", ".join(cluster.label for cluster in config.clusters)
    if not chosen:
        print(f"error: --cluster {cluster_name!r} is not one of the configured clusters ({labels})", file=sys.stderr)
        return 2
    if cluster_name is not None and len(chosen) > 1:
        print(
            f"error: --cluster {cluster_name!r} names clusters in several environments: give one of {labels}",
            file=sys.stderr,
        )
        return 2
    cluster = replace(chosen[0], from_host=from_host or chosen[0].from_host)
    own_registry = own_registry_of(cluster.environment)
    if own_registry is None and config.settings.include_own_registry:
        own_registry = caller_registry_host(boto3.Session())
        if own_registry is None:
            print(
                "warning: no AWS credentials or region, so the function's own registry is unknown: the admission "
                "policy lets it adopt only the configured registries' kubectl secrets. Run with the deploy's "
                "credentials (AWS_PROFILE, AWS_REGION) to include it.",
                file=sys.stderr,
            )
    return config, cluster, own_registry


def manifest_parser(prog: str, description: str | None) -> argparse.ArgumentParser:
    """The arguments every command on a cluster's manifest takes: which cluster, and the CDK context."""
    parser = argparse.ArgumentParser(prog=prog, description=description)
    parser.add_argument("--cluster", help="which cluster's manifest (default: the first one listed)")
    parser.add_argument(
        "--host",
        action="store_true",
        help="the cluster is served from a host with the CLI and a kubeconfig, not by the Lambda: bind the "
        "service account kubernetesServiceAccount (its token goes in that kubeconfig)",
    )
    parser.add_argument("context", nargs="*", metavar="KEY=VALUE", help="CDK context, as with -c KEY=VALUE")
    return parser


def main(argv: list[str]) -> int:
    args = manifest_parser("python -m infra.rbac", __doc__).parse_args(argv)
    loaded = load_config(args.context, args.cluster, from_host=args.host)
    if isinstance(loaded, int):
        return loaded
    config, cluster, own_registry = loaded
    sys.stdout.write(to_yaml(config, cluster, own_registry=own_registry))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
