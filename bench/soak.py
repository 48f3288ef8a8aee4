"""`make soak`: many runs against a changing cluster with random faults, invariants checked after each.

500 namespaces x 30 runs (fixed seed): namespaces appear, disappear and start terminating between
runs; each run meets random faults from the fault matrix; some secrets are pushed near expiry so runs
update, not only create. After every run:
  1. every target namespace has a valid, unexpired, managed secret, or this run reported it failed;
  2. no managed secret ever disappeared from a namespace that still exists;
  3. foreign secrets are byte-for-byte unchanged.
Exit status 1 if any invariant was violated.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import random
import sys
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

from lambda_fn.config import Settings
from lambda_fn.errors import RefresherError
from lambda_fn.models import RunSummary
from lambda_fn.runner import CLUSTERS, EksCluster, run_refresh
from lambda_fn.secret_contract import EXPIRES_AT_ANNOTATION, MANAGED_BY_LABEL
from localkube import FaultRule, LocalKube
from sandbox.eks_cluster import CLUSTER_NAME, local_eks_cluster
from sandbox.moto_aws import MotoAws, moto_aws

SEED = 20261128


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.soak")
    parser.add_argument("--namespaces", type=int, default=500)
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--seed", type=int, default=SEED)
    args = parser.parse_args()
    rng = random.Random(args.seed)  # noqa: S311 - reproducible fault schedule, not cryptography
    started = time.monotonic()
    with moto_aws() as aws:
        credentials = aws.assume_refresher_role()
        os.environ.update(aws.environment(credentials) | {"CLUSTER_NAME": CLUSTER_NAME, "NAMESPACES": "soak-*"})
        kube = local_eks_cluster(aws, credentials)
        try:
            report = Soak(aws, kube, rng).run(args.namespaces, args.runs)
        finally:
            kube.stop()
    report["seconds"] = round(time.monotonic() - started, 1)
    print(json.dumps(report, indent=2))
    return 1 if report["invariant_violations"] else 0


class Soak:
    def __init__(self, aws: MotoAws, kube: LocalKube, rng: random.Random) -> None:
        self.aws, self.kube, self.rng = aws, kube, rng
        self.counter = 0
        self.foreign: dict[str, dict[str, Any]] = {}
        self.faults: Counter[str] = Counter()
        self.failures_reported = 0
        self.violations: list[str] = []

    def run(self, namespaces: int, runs: int) -> dict[str, Any]:
        for _ in range(namespaces):
            self.add_namespace()
        outcomes: Counter[str] = Counter()
        for number in range(runs):
            if number:
                self.churn()
            self.inject_faults()
            had_secret = self.managed_namespaces()
            summary = self.refresh()
            self.kube.faults.clear()
            self.aws.ecr_errors.clear()
            if summary is not None:
                outcomes.update(result.outcome.value for result in summary.results)
                self.failures_reported += len(summary.failed_namespaces)
            self.check(number, summary, had_secret)
        return {
            "runs": runs,
            "namespaces_at_end": len(self.kube.store.namespaces()),
            "outcomes": dict(outcomes),
            "faults_injected": dict(self.faults),
            "failures_reported": self.failures_reported,
            "invariant_violations": len(self.violations),
            "violations": self.violations[:20],
        }

    def add_namespace(self) -> None:
        name = f"soak-{self.counter:04d}"
        self.counter += 1
        self.kube.store.add_namespace(name)
        if self.rng.random() < 0.04:  # someone else's secret of the same name
            self.foreign[name] = self.kube.store.create(
                "secrets", name, {"metadata": {"name": "regcred"}, "type": "Opaque", "data": {"x": "eA=="}}
            )

    def churn(self) -> None:
        for _ in range(self.rng.randint(0, 10)):
            self.add_namespace()
        existing = [ns["metadata"]["name"] for ns in self.kube.store.namespaces()]
        for name in self.rng.sample(existing, self.rng.randint(0, 5)):
            self.kube.store.remove_namespace(name)
            self.foreign.pop(name, None)
        for name in self.rng.sample(existing, 2):
            if self.kube.store.find("secrets", name, "regcred") is not None:
                self.near_expiry(name)

    def near_expiry(self, namespace: str) -> None:
        secret = self.kube.store.get("secrets", namespace, "regcred")
        if secret["metadata"].get("labels", {}).get(MANAGED_BY_LABEL):
            soon = (datetime.now(UTC) + timedelta(minutes=30)).isoformat(timespec="seconds")
            secret["metadata"]["annotations"][EXPIRES_AT_ANNOTATION] = soon
            self.kube.store.replace("secrets", namespace, "regcred", secret, manager="ecr-token-refresher")

    def inject_faults(self) -> None:
        names = [ns["metadata"]["name"] for ns in self.kube.store.namespaces()]
        choices = {
            "500 always on one namespace": lambda: FaultRule(path=f"/namespaces/{self.rng.choice(names)}/", status=500),
            "500 once": lambda: FaultRule(status=500, times=1),
            "429 once, Retry-After 0": lambda: FaultRule(status=429, retry_after=0, times=1),
            "503 once": lambda: FaultRule(status=503, retry_after=0, times=1),
            "dropped connection on a write": lambda: FaultRule(method="PUT", drop=True, times=1),
            "409 on an update": lambda: FaultRule(method="PUT", status=409, times=1),
            "namespace starts terminating mid-run": lambda: self.terminate_during_run(self.rng.choice(names)),
        }
        for name in self.rng.sample(sorted(choices), self.rng.randint(0, 3)):
            self.kube.faults.append(choices[name]())
            self.faults[name] += 1
        if self.rng.random() < 0.2:
            self.aws.ecr_errors = ["ThrottlingException"]
            self.faults["ECR throttling once"] += 1

    def terminate_during_run(self, name: str) -> FaultRule:
        def terminate() -> None:
            self.kube.store.add_namespace(name, terminating=True)

        return FaultRule(method="GET", path=f"/namespaces/{name}/secrets/", before=terminate, times=1)

    def refresh(self) -> RunSummary | None:
        CLUSTERS.forget(cluster_name=CLUSTER_NAME, region="us-east-1")
        try:
            settings = Settings.from_env(os.environ, require_cluster=True)
            return run_refresh(settings, EksCluster(CLUSTER_NAME))
        except RefresherError as exc:
            self.violations.append(f"run failed as a whole: {exc}")
            return None

    def managed_namespaces(self) -> set[str]:
        return {
            ns["metadata"]["name"]
            for ns in self.kube.store.namespaces()
            if (secret := self.kube.store.find("secrets", ns["metadata"]["name"], "regcred"))
            and secret["metadata"].get("labels", {}).get(MANAGED_BY_LABEL)
        }

    def check(self, number: int, summary: RunSummary | None, had_secret: set[str]) -> None:
        failed = set(summary.failed_namespaces) if summary else set()
        for namespace in self.kube.store.namespaces():
            name = namespace["metadata"]["name"]
            secret = self.kube.store.find("secrets", name, "regcred")
            if name in self.foreign:
                if secret != self.foreign[name]:
                    self.violations.append(f"run {number}: foreign secret in {name} changed")
                continue
            if name in had_secret and secret is None:
                self.violations.append(f"run {number}: managed secret in {name} disappeared")
            if namespace["status"]["phase"] == "Terminating" or name in failed:
                continue
            if not valid(secret):
                self.violations.append(f"run {number}: {name} has no valid secret and no reported failure")


def valid(secret: dict[str, Any] | None) -> bool:
    if secret is None or not secret["metadata"].get("labels", {}).get(MANAGED_BY_LABEL):
        return False
    expires = datetime.fromisoformat(secret["metadata"]["annotations"][EXPIRES_AT_ANNOTATION])
    auths = json.loads(base64.b64decode(secret["data"][".dockerconfigjson"]))["auths"]
    return expires > datetime.now(UTC) + timedelta(hours=6) and all(
        base64.b64decode(entry["auth"]).startswith(b"AWS:") for entry in auths.values()
    )


if __name__ == "__main__":
    sys.exit(main())
