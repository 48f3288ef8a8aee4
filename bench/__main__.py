"""`make bench`: the refresher against the kubectl cron recipe, 10 to 5,000 namespaces, on the local
API server over HTTPS with 0 ms and 20 ms of injected latency per request.

Every figure comes from this run: wall times measured here, requests/writes/delete-create gaps from
the server's request log, peak memory from the child process's rusage, ECR calls from moto.
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import os
import platform
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from bench.kubectl_recipe import run_recipe
from lambda_fn.k8s.api import PAGE_SIZE
from localkube import LocalKube, RequestRecord
from sandbox.eks_cluster import local_eks_cluster
from sandbox.moto_aws import AwsCredentials, MotoAws, moto_aws

SIZES = (10, 100, 1000, 5000)
LATENCIES_MS = (0, 20)
SWEEP = (4, 8, 16, 32, 64)
RESULTS = Path("bench/results/bench.json")
CLUSTER_NUMBERS = itertools.count()


@dataclass
class Row:
    latency_ms: int
    namespaces: int
    contestant: str
    wall_s: float
    core_s: float | None = None  # the refresher's own duration_seconds (no process start-up)
    cpu_s: float | None = None  # the refresher process's CPU time (user + system)
    requests: int = 0
    writes: int = 0
    deletes: int = 0
    max_gap_ms: float = 0.0  # longest time a namespace had no secret
    mean_gap_ms: float = 0.0
    peak_rss_mb: float = 0.0
    ecr_calls: int = 0
    extrapolated: bool = False
    notes: list[str] = field(default_factory=list)


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m bench")
    parser.add_argument("--sizes", type=int, nargs="+", default=list(SIZES))
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--baseline-max", type=int, default=1000, help="largest N for the kubectl recipe")
    args = parser.parse_args()
    rows: list[Row] = []
    sweep: dict[int, float] = {}
    started = time.monotonic()
    with moto_aws() as aws, tempfile.TemporaryDirectory() as scratch:
        bench = Bench(aws, aws.assume_refresher_role(), Path(scratch), args.concurrency)
        for latency_ms in LATENCIES_MS:
            for size in args.sizes:
                rows += bench.measure(size, latency_ms, baseline_max=args.baseline_max)
        if 1000 in args.sizes:
            sweep = bench.concurrency_sweep()
    print_report(rows, sweep, args.concurrency, time.monotonic() - started)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps({"machine": machine(), "rows": [asdict(r) for r in rows], "sweep": sweep}, indent=2))
    print(f"\nJSON: {RESULTS}")
    return 0


@dataclass
class Bench:
    aws: MotoAws
    credentials: AwsCredentials
    scratch: Path
    concurrency: int

    def cluster(self, size: int, latency_ms: int) -> tuple[LocalKube, Path, str]:
        """A local EKS cluster with `size` namespaces: the refresher reaches it as the Lambda does (EKS
        mode: DescribeCluster, bearer token); kubectl through a kubeconfig with the admin token."""
        name = f"bench-{latency_ms}ms-{size}-{next(CLUSTER_NUMBERS)}"
        kube = local_eks_cluster(self.aws, self.credentials, cluster_name=name, latency=latency_ms / 1000)
        for index in range(size):
            kube.store.add_namespace(f"bench-{index:04d}")
        return kube, kube.write_kubeconfig(self.scratch / "kubeconfig", token="admin-token"), name

    def measure(self, size: int, latency_ms: int, *, baseline_max: int) -> list[Row]:
        kube, kubeconfig, name = self.cluster(size, latency_ms)
        try:
            rows = [
                self.refresher(kube, name, size, latency_ms, concurrency=self.concurrency, name="refresher, 1st run"),
                self.refresher(kube, name, size, latency_ms, concurrency=self.concurrency, name="refresher, 2nd run"),
            ]
            # kubectl last: it finds every secret in place, as in steady state, and shows the gap.
            if size <= baseline_max and (latency_ms > 0 or size <= 100):
                rows.insert(0, self.kubectl(kube, kubeconfig, size, latency_ms))
        finally:
            kube.stop()
        return rows

    def refresher(
        self, kube: LocalKube, cluster_name: str, size: int, latency_ms: int, *, concurrency: int, name: str
    ) -> Row:
        kube.clear_log()
        calls_before = self.aws.token_calls
        command = [
            sys.executable,
            "-m",
            "lambda_fn",
            "refresh",
            "--cluster",
            cluster_name,
            "--namespace",
            "bench-*",
            "--concurrency",
            str(concurrency),
            "--output",
            "json",
        ]
        environment = os.environ | self.aws.environment(self.credentials)
        started = time.monotonic()
        with tempfile.TemporaryFile("w+") as errors_file:
            # stdout is read to the end, then os.wait4 reaps the child with its own peak memory.
            child = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=errors_file, env=environment, text=True)  # noqa: S603
            assert child.stdout is not None  # noqa: S101 - PIPE asked for
            output = child.stdout.read()
            _, status, usage = os.wait4(child.pid, 0)
            errors_file.seek(0)
            errors = errors_file.read()
        wall = time.monotonic() - started
        if os.waitstatus_to_exitcode(status) != 0:
            raise SystemExit(f"{name} failed at N={size}: {errors[-2000:]}")
        summary = json.loads(output)
        return Row(
            latency_ms,
            size,
            name,
            round(wall, 3),
            core_s=summary["duration_seconds"],
            cpu_s=round(usage.ru_utime + usage.ru_stime, 2),
            peak_rss_mb=round(usage.ru_maxrss / 1024, 1),
            ecr_calls=self.aws.token_calls - calls_before,
            **log_figures(kube.requests),
        )

    def kubectl(self, kube: LocalKube, kubeconfig: Path, size: int, latency_ms: int) -> Row:
        kube.clear_log()
        calls_before = self.aws.token_calls
        started = time.monotonic()
        peaks = run_recipe(
            [f"bench-{i:04d}" for i in range(size)],
            kubeconfig=kubeconfig,
            cache_dir=self.scratch / "cache",
            ecr=self.aws.client("ecr"),
        )
        wall = time.monotonic() - started
        return Row(
            latency_ms,
            size,
            "kubectl delete+create",
            round(wall, 3),
            peak_rss_mb=round(max(peaks) / 1024, 1),
            ecr_calls=self.aws.token_calls - calls_before,
            **log_figures(kube.requests),
        )

    def concurrency_sweep(self) -> dict[int, float]:
        """First-run core time at N=1,000, 20 ms, for each concurrency: the data behind the default."""
        results = {}
        for concurrency in SWEEP:
            kube, _, name = self.cluster(1000, 20)
            try:
                results[concurrency] = (
                    self.refresher(kube, name, 1000, 20, concurrency=concurrency, name="sweep").core_s or 0.0
                )
            finally:
                kube.stop()
        return results


def log_figures(log: list[RequestRecord]) -> dict[str, Any]:
    """Requests, writes, deletes, and how long each namespace was without its secret."""
    deleted_at: dict[str, float] = {}
    gaps: list[float] = []
    for record in log:
        parts = record.path.split("/")
        if record.method == "DELETE" and record.status == 200:
            deleted_at[parts[4]] = record.at
        elif record.method == "POST" and record.status == 201 and parts[4] in deleted_at:
            gaps.append((record.at - deleted_at.pop(parts[4])) * 1000)
    return {
        "requests": len(log),
        "writes": sum(r.method in ("POST", "PUT", "PATCH", "DELETE") for r in log),
        "deletes": sum(r.method == "DELETE" for r in log),
        "max_gap_ms": round(max(gaps, default=0.0), 1),
        "mean_gap_ms": round(sum(gaps) / len(gaps), 1) if gaps else 0.0,
    }


def ideal_seconds(row: Row, concurrency: int) -> float:
    """Every request of the run, each one latency long, `concurrency` at a time."""
    return row.requests * row.latency_ms / 1000 / concurrency


def print_report(rows: list[Row], sweep: dict[int, float], concurrency: int, elapsed: float) -> None:
    print(f"machine: {machine()}; concurrency {concurrency}; page size {PAGE_SIZE}; bench took {elapsed:.0f}s")
    header = (
        f"{'lat':>4} {'N':>5}  {'contestant':<22} {'wall s':>8} {'core s':>7} {'cpu s':>6} {'ms/ns':>6} {'reqs':>6} "
        f"{'writes':>6} {'gap max/mean ms':>18} {'peak MB':>8} {'ECR':>4} {'x ideal':>7}"
    )
    print(header)
    print("-" * len(header))
    for row in rows:
        per_ns = (row.core_s if row.core_s is not None else row.wall_s) * 1000 / row.namespaces
        ideal = ideal_seconds(row, concurrency) if row.core_s is not None and row.latency_ms else 0
        ratio = f"{row.core_s / ideal:.2f}" if ideal and row.core_s else "-"
        core = f"{row.core_s:.3f}" if row.core_s is not None else "-"
        gap = f"{row.max_gap_ms:.0f} / {row.mean_gap_ms:.0f}"
        cpu = f"{row.cpu_s:.2f}" if row.cpu_s is not None else "-"
        print(
            f"{row.latency_ms:>4} {row.namespaces:>5}  {row.contestant:<22} {row.wall_s:>8.2f} {core:>7} {cpu:>6} "
            f"{per_ns:>6.2f} {row.requests:>6} {row.writes:>6} {gap:>18} {row.peak_rss_mb:>8} {row.ecr_calls:>4} "
            f"{ratio:>7}"
        )
    if sweep:
        print(
            "\nconcurrency sweep, N=1000, 20 ms, 1st run core seconds: "
            + ", ".join(f"{c}: {s:.2f}" for c, s in sweep.items())
        )
    print_targets(rows, concurrency)


def print_targets(rows: list[Row], concurrency: int) -> None:
    def find(latency: int, size: int, contestant: str) -> Row | None:
        return next(
            (r for r in rows if (r.latency_ms, r.namespaces, r.contestant) == (latency, size, contestant)), None
        )

    print("\ntargets:")
    checks: list[tuple[str, bool | None]] = []
    kube_1000, first_1000 = find(20, 1000, "kubectl delete+create"), find(20, 1000, "refresher, 1st run")
    if kube_1000 and first_1000:
        speedup = kube_1000.wall_s / first_1000.wall_s
        checks.append(
            (
                f">= 50x faster than kubectl at N=1000, 20 ms: {speedup:.0f}x (wall, process start included)",
                speedup >= 50,
            )
        )
        ideal = ideal_seconds(first_1000, concurrency)
        ratio = (first_1000.core_s or 0) / ideal
        checks.append(
            (
                f"within 1.5x of ideal at N=1000, 20 ms: {ratio:.2f}x ({first_1000.core_s:.2f}s vs {ideal:.2f}s)",
                ratio <= 1.5,
            )
        )
    firsts = [r for r in rows if r.contestant == "refresher, 1st run"]
    seconds = [r for r in rows if r.contestant == "refresher, 2nd run"]
    checks.append(("writes = N on the 1st run", all(r.writes == r.namespaces for r in firsts)))
    checks.append(("writes = 0 on the 2nd run", all(r.writes == 0 for r in seconds)))
    checks.append(
        (
            "2nd-run requests <= N + ceil(N/page) + 2",
            all(r.requests <= r.namespaces + math.ceil(r.namespaces / PAGE_SIZE) + 2 for r in seconds),
        )
    )
    checks.append(("exactly 1 ECR call per run (one region)", all(r.ecr_calls == 1 for r in firsts + seconds)))
    checks.append(
        (
            "no namespace ever without a secret (refresher deletes nothing)",
            all(r.deletes == 0 for r in firsts + seconds),
        )
    )
    biggest = max(firsts, key=lambda r: r.namespaces)
    checks.append(
        (f"peak memory < 256 MB at N={biggest.namespaces}: {biggest.peak_rss_mb} MB", biggest.peak_rss_mb < 256)
    )
    for text, held in checks:
        print(f"  [{'held' if held else 'NOT held'}] {text}")


def machine() -> str:
    return f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"


if __name__ == "__main__":
    raise SystemExit(main())
