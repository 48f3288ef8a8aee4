"""Runs the handler twice against local AWS + a local EKS cluster and shows what a kubelet reads."""

from __future__ import annotations

import base64
import json
import os
import time
from pathlib import Path
from typing import Any

from lambda_fn.render import render_report, render_summary
from localkube import LocalKube
from sandbox.eks_cluster import CLUSTER_NAME, local_eks_cluster
from sandbox.lambda_context import FakeLambdaContext
from sandbox.moto_aws import OWN_REGISTRY, moto_aws

SCHEDULED_EVENT = json.loads((Path(__file__).parent.parent / "events" / "scheduled.json").read_text())
SETTINGS = {
    "CLUSTER_NAME": CLUSTER_NAME,
    "NAMESPACES": "default,team-*",
    "NAMESPACE_SELECTOR": "ecr-pull=enabled",
    "SERVICE_ACCOUNTS": "default",
    "REGISTRIES": "210987654321.dkr.ecr.us-east-1.amazonaws.com",
    "POWERTOOLS_LOG_LEVEL": "WARNING",  # the summary line is in the table below
    "POWERTOOLS_TRACE_DISABLED": "true",
    "POWERTOOLS_METRICS_DISABLED": "true",
}


def seed(kube: LocalKube) -> None:
    store = kube.store
    for name in ("default", "team-a", "team-b", "kube-system", "unrelated"):
        store.add_namespace(name)
    store.add_namespace("payments", labels={"ecr-pull": "enabled"})
    store.add_namespace("analytics", labels={"ecr-pull": "enabled"})
    foreign = base64.b64encode(json.dumps({"auths": {"ghcr.io": {"auth": "bm90OnlvdXJz"}}}).encode()).decode()
    store.create(
        "secrets",
        "payments",
        {
            "metadata": {"name": "regcred", "labels": {"owner": "payments-team"}},
            "type": "kubernetes.io/dockerconfigjson",
            "data": {".dockerconfigjson": foreign},
        },
    )


def invoke(event: dict[str, Any] = SCHEDULED_EVENT) -> dict[str, Any]:
    from lambda_fn.handler import lambda_handler  # noqa: PLC0415 - after the environment is set

    result: dict[str, Any] = lambda_handler(event, FakeLambdaContext())
    return result


def kubelet_view(kube: LocalKube, namespace: str) -> str:
    secret = kube.store.get("secrets", namespace, "regcred")
    auths = json.loads(base64.b64decode(secret["data"][".dockerconfigjson"]))["auths"]
    lines = [f"secret {namespace}/regcred, type {secret['type']}, as the kubelet reads it:"]
    for host, entry in sorted(auths.items()):
        user, _, password = base64.b64decode(entry["auth"]).decode().partition(":")
        lines.append(
            f"  {host}: username {entry['username']!r} (auth user {user!r}), password <{len(password)} chars, redacted>"
        )
    for key in ("ecr-token-refresher/expires-at", "ecr-token-refresher/refreshed-at"):
        lines.append(f"  {key}: {secret['metadata']['annotations'][key]}")
    return "\n".join(lines)


def main() -> None:
    started = time.monotonic()
    with moto_aws() as aws:
        credentials = aws.assume_refresher_role()
        kube = local_eks_cluster(aws, credentials)
        try:
            seed(kube)
            os.environ.update(aws.environment(credentials) | SETTINGS)
            print(
                f"moto (ECR, EKS, STS) at {aws.url}; EKS cluster {CLUSTER_NAME!r} at {kube.url} (TLS, EKS token auth)"
            )
            print(f"settings: {json.dumps({k: v for k, v in SETTINGS.items() if not k.startswith('POWERTOOLS')})}\n")
            print("== run 1: scheduled event ==")
            print(render_summary(invoke()))
            print("\n== run 2: right after; every secret is fresh, nothing is written ==")
            writes_before = len([r for r in kube.requests if r.method != "GET"])
            print(render_summary(invoke()))
            writes = len([r for r in kube.requests if r.method != "GET"]) - writes_before
            print(f"writes in run 2: {writes}\n")
            print(kubelet_view(kube, "team-a"))
            payments = kube.store.get("secrets", "payments", "regcred")
            foreign_hosts = list(json.loads(base64.b64decode(payments["data"][".dockerconfigjson"]))["auths"])
            print(f"\npayments/regcred (not ours) is untouched, still only: {foreign_hosts}")
            print(f"own registry served: {OWN_REGISTRY}")
            print('\n== check: the read-only preflight (manual event {"check": true}) ==')
            print(render_report(invoke({"check": True})))
        finally:
            kube.stop()
    print(f"\ndemo finished in {time.monotonic() - started:.1f}s")


if __name__ == "__main__":
    main()
