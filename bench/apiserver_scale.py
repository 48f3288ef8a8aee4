"""`make bench-apiserver`: the refresher against the real kube-apiserver at 1,000, 5,000 and 20,000
namespaces, as the function runs there — the manifest the CDK app renders (RBAC and admission policy)
is its only grant, and it authenticates as the function's Kubernetes group (a client certificate in
that group: RBAC and the policy see the same subject an EKS access entry maps to).

Two deployments share each cluster, one without service accounts and one patching every namespace's
`default`: each gets a first run and three fresh runs. Requests and read-response bytes are what
kube-apiserver counts (its /metrics, for the resources the refresher touches); core and CPU seconds
are the refresher's own (the server runs in other processes); peak RSS is the refresher's process
under GNU time, imports included, as a Lambda's memory would be.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from kubernetes import client as k8s
from kubernetes import utils
from prometheus_client.parser import text_string_to_metric_families

from bench.measure import run_measured
from infra.config import DeploymentConfig
from infra.rbac import render
from lambda_fn.collector import tune_for_large_lists
from lambda_fn.config import Settings
from lambda_fn.k8s import connect, kubeconfig_file_connection
from lambda_fn.models import RegistryCredential
from lambda_fn.refresher import renew_pull_secrets
from localkube.kubeconfig import write_kubeconfig
from sandbox.clients import api_client
from sandbox.real_apiserver import ADMIN_TOKEN, RealKube, build

SIZES = (1_000, 5_000, 20_000)
FRESH_RUNS = 3
RESOURCES = {"namespaces", "secrets", "serviceaccounts"}  # what the refresher reads and writes
RESULTS = Path("bench/results/apiserver.json")
# An ECR token as long as a real one (~3.2 KB), so that the secrets written weigh what they do in production.
CREDENTIAL = RegistryCredential(
    "123456789012.dkr.ecr.eu-west-1.amazonaws.com", "x" * 3200, datetime.now(UTC) + timedelta(hours=12)
)
DEPLOYMENTS: dict[str, dict[str, Any]] = {
    "without service accounts": {"stackName": "BenchPlain", "secretName": "regcred"},
    "with service accounts": {"stackName": "BenchAccounts", "secretName": "regcred-sa", "serviceAccounts": ["default"]},
}
# Targets (issue 24): a fresh run at 20,000 within 3 s core and 256 MB; a first run linear in N.
FRESH_CORE_S = 3.0
PEAK_MB = 256.0
LINEAR_SLACK = 1.5  # seconds per namespace at the largest N may be at most this times that at the smallest


@dataclass(frozen=True)
class Row:
    namespaces: int
    deployment: str
    run: str  # "first" or "fresh"
    core_s: float
    cpu_s: float
    peak_mb: float
    requests: int
    read_mb: float
    counts: dict[str, int]


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.apiserver_scale", description=__doc__)
    parser.add_argument("--sizes", type=int, nargs="+", default=list(SIZES))
    parser.add_argument("--run", metavar="KUBECONFIG", help=argparse.SUPPRESS)  # the measured child
    args = parser.parse_args()
    if args.run:
        run_once(Path(args.run))
        return 0
    build()
    started = time.monotonic()
    rows = [row for size in args.sizes for row in measure(size)]
    print_table(rows)
    held = print_targets(rows)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps({"elapsed_s": round(time.monotonic() - started), "rows": [asdict(r) for r in rows]}))
    print(f"\n{time.monotonic() - started:.0f} s; JSON: {RESULTS}")
    return 0 if held else 1


def measure(size: int) -> list[Row]:
    with RealKube() as kube, tempfile.TemporaryDirectory() as scratch:
        admin = api_client(kube.url, kube.ca_pem, ADMIN_TOKEN, retries=3)
        populated = time.monotonic()
        populate(admin, size)
        print(
            f"N={size:,}: {size:,} namespaces with a `default` service account in {time.monotonic() - populated:.0f} s",
            flush=True,
        )
        rows = []
        for deployment, context in DEPLOYMENTS.items():
            config = DeploymentConfig.from_context({"clusterName": "bench", "namespaces": ["team-*"], **context})
            for manifest in render(config):
                utils.create_from_dict(admin, manifest)  # type: ignore[no-untyped-call]
            kubeconfig = write_kubeconfig(
                Path(scratch) / config.kubernetes_name,
                server=kube.url,
                ca_pem=kube.ca_pem,
                name="bench",
                client_certificate=kube.client_certificate(config.kubernetes_name, config.kubernetes_group),
            )
            environment = os.environ | {"AWS_REGION": "eu-west-1"} | config.environment(config.clusters[0])
            for run in ["first", *["fresh"] * FRESH_RUNS]:
                row = measured_run(kube, kubeconfig, environment, size=size, deployment=deployment, run=run)
                print(
                    f"  {deployment}, {run}: {row.core_s:.2f} s core, {row.requests} requests, {row.peak_mb} MB",
                    flush=True,
                )
                rows.append(row)
        return rows


def populate(admin: k8s.ApiClient, size: int) -> None:
    """`size` namespaces team-00000…, each with the `default` service account the controller manager
    would make (this server runs without one)."""
    core = k8s.CoreV1Api(admin)

    def create(index: int) -> None:
        name = f"team-{index:05}"
        core.create_namespace(k8s.V1Namespace(metadata=k8s.V1ObjectMeta(name=name)))
        core.create_namespaced_service_account(name, k8s.V1ServiceAccount(metadata=k8s.V1ObjectMeta(name="default")))

    with ThreadPoolExecutor(16) as pool:
        list(pool.map(create, range(size)))


def measured_run(
    kube: RealKube, kubeconfig: Path, environment: dict[str, str], *, size: int, deployment: str, run: str
) -> Row:
    before = server_counts(kube)
    child = run_measured([sys.executable, "-m", "bench.apiserver_scale", "--run", str(kubeconfig)], env=environment)
    if child.returncode != 0:
        raise SystemExit(f"the measured run failed ({child.returncode}):\n{child.stderr[-3000:]}")
    after = server_counts(kube)
    figures = json.loads(child.stdout)
    return Row(
        namespaces=size,
        deployment=deployment,
        run=run,
        core_s=round(figures["core_s"], 3),
        cpu_s=round(figures["cpu_s"], 3),
        peak_mb=child.peak_mb,
        requests=int(after[0] - before[0]),
        read_mb=round((after[1] - before[1]) / 1e6, 2),
        counts=figures["counts"],
    )


def server_counts(kube: RealKube) -> tuple[float, float]:
    """(requests, read-response bytes) kube-apiserver has counted so far for RESOURCES."""
    admin = api_client(kube.url, kube.ca_pem, ADMIN_TOKEN)
    text = admin.call_api(*admin.param_serialize("GET", "/metrics", auth_settings=["BearerToken"])).read().decode()  # type: ignore[no-untyped-call]
    requests = read_bytes = 0.0
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.labels.get("resource") not in RESOURCES:
                continue
            if sample.name == "apiserver_request_total":
                requests += sample.value
            elif sample.name == "apiserver_response_sizes_sum":
                read_bytes += sample.value
    return requests, read_bytes


def run_once(kubeconfig: Path) -> None:
    """The measured child: one run as the function's settings say, its own figures on stdout."""
    tune_for_large_lists()  # as the Lambda's init and the CLI do
    settings = Settings.from_env(os.environ, require_cluster=False)
    plan = replace(settings, run_lease=None)
    connection = kubeconfig_file_connection(str(kubeconfig), None, pool_size=settings.max_concurrency)
    with connect(connection, time_left=lambda: None) as api:
        cpu, core = time.process_time(), time.monotonic()
        summary = renew_pull_secrets(api, [CREDENTIAL], plan, cluster_label="bench", now=lambda: datetime.now(UTC))
        cpu, core = time.process_time() - cpu, time.monotonic() - core
    if summary.errors:
        raise SystemExit("; ".join(summary.errors))
    print(json.dumps({"core_s": core, "cpu_s": cpu, "counts": {k: v for k, v in summary.counts.items() if v}}))


def print_table(rows: list[Row]) -> None:
    """Medians: the server's counters cover the window of a run, and kube-apiserver's own informers
    sometimes re-list in it (once, 358 MB of secrets with their data, beside a run's 24 MB)."""
    print("\n| namespaces | deployment | run | core s | CPU s | peak MB | requests | read MB |")
    print("|---:|---|---|---:|---:|---:|---:|---:|")
    for (size, deployment, run), group in grouped(rows).items():
        core = [row.core_s for row in group]
        spread = f" ({min(core):.2f} to {max(core):.2f})" if len(group) > 1 else ""
        print(
            f"| {size:,} | {deployment} | {run} | {statistics.median(core):.2f}{spread} | "
            f"{statistics.median(row.cpu_s for row in group):.2f} | {max(row.peak_mb for row in group):.0f} | "
            f"{statistics.median(row.requests for row in group):,.0f} | "
            f"{statistics.median(row.read_mb for row in group):.2f} |"
        )


def grouped(rows: list[Row]) -> dict[tuple[int, str, str], list[Row]]:
    groups: dict[tuple[int, str, str], list[Row]] = {}
    for row in rows:
        groups.setdefault((row.namespaces, row.deployment, row.run), []).append(row)
    return groups


def print_targets(rows: list[Row]) -> bool:
    largest, smallest = max(row.namespaces for row in rows), min(row.namespaces for row in rows)
    checks: list[tuple[str, bool]] = []
    for (size, deployment, run), group in grouped(rows).items():
        expected = {"created": size} if run == "first" else {"unchanged": size}
        checks.append((f"N={size:,} {deployment}, {run}: {expected}", all(row.counts == expected for row in group)))
    for deployment in DEPLOYMENTS:
        fresh = grouped(rows).get((largest, deployment, "fresh"), [])
        core, peak = statistics.median(row.core_s for row in fresh), max(row.peak_mb for row in fresh)
        checks.append(
            (f"fresh run at N={largest:,} {deployment}: {core:.2f} s core < {FRESH_CORE_S}", core < FRESH_CORE_S)
        )
        checks.append((f"fresh run at N={largest:,} {deployment}: peak {peak:.0f} MB < {PEAK_MB:.0f}", peak < PEAK_MB))
        per_namespace = {
            size: grouped(rows)[(size, deployment, "first")][0].core_s / size for size in (smallest, largest)
        }
        ratio = per_namespace[largest] / per_namespace[smallest]
        checks.append(
            (
                f"first run linear in N ({deployment}): s per namespace at {largest:,} / at {smallest:,} = {ratio:.2f} "
                f"<= {LINEAR_SLACK}",
                ratio <= LINEAR_SLACK,
            )
        )
    print("\ntargets:")
    for text, held in checks:
        print(f"  [{'held' if held else 'NOT held'}] {text}")
    return all(held for _, held in checks)


if __name__ == "__main__":
    raise SystemExit(main())
