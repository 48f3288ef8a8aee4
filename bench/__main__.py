"""`make bench`: the refresher against the kubectl cron recipe, 100 to 5,000 namespaces, on the local
API server over HTTPS with 0 ms and 20 ms of injected latency per request, with realistic secrets
(ECR tokens of ~3.2 KB, two registries).

Every figure comes from this run: wall times measured here; requests, response bytes, writes and
delete-create gaps from the server's request log; each contestant's own peak memory from GNU time;
ECR calls from moto. The refresher runs as the Lambda does (EKS mode, bearer token).
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import os
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from bench.coverage import Coverage, simulate
from bench.kubectl_recipe import run_recipe
from bench.measure import run_measured
from bench.plot import plot
from bench.terminal import run_on_terminal, run_redirected
from lambda_fn.k8s.api import PAGE_SIZE
from localkube import LocalKube, RequestRecord
from sandbox.eks_cluster import local_eks_cluster
from sandbox.moto_aws import AwsCredentials, MotoAws, moto_aws

SIZES = (100, 1000, 5000)
LATENCIES_MS = (0, 20)
SWEEP = (8, 16, 32, 64)
PAGE_SIZES = (250, 500, 1000, 2000)
NAMED_SIZES = (1, 4, 16, 100)  # names or a glob: where a GET per namespace stops paying
PASSWORD_PADDING = 2400  # an ECR password is ~2.4 KB
SECOND_REGISTRY = "210987654321.dkr.ecr.us-east-1.amazonaws.com"  # same region: one token, two entries
SCHEDULE_SECONDS = 60.0  # the default schedule (scheduleMinutes=1)
NEW_NAMESPACES = 20  # created between two runs, for the coverage figure
RESULTS = Path("bench/results/bench.json")
FIGURE = Path("docs/bench.png")
CLUSTER_NUMBERS = itertools.count()
FIRST, FRESH, REFRESH = "refresher, first run", "refresher, fresh run", "refresher, refresh (--force)"
KUBECTL = "kubectl delete+create"


@dataclass
class Row:
    latency_ms: int
    namespaces: int
    contestant: str
    wall_s: float
    core_s: float | None = None  # the refresher's own duration_seconds (no process start-up)
    requests: int = 0
    response_mb: float = 0.0
    writes: int = 0
    deletes: int = 0
    max_gap_ms: float = 0.0  # longest time a namespace had no secret
    mean_gap_ms: float = 0.0
    peak_mb: float = 0.0  # the contestant's own process (each kubectl process: the largest)
    ecr_calls: int = 0
    notes: list[str] = field(default_factory=list)


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m bench")
    parser.add_argument("--sizes", type=int, nargs="+", default=list(SIZES))
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--baseline-max", type=int, default=1000, help="largest N for the kubectl recipe")
    parser.add_argument("--repeats", type=int, default=3, help="runs behind each spread (sweep, kubectl ratio)")
    args = parser.parse_args()
    started = time.monotonic()
    with moto_aws() as aws, tempfile.TemporaryDirectory() as scratch:
        aws.password_padding = PASSWORD_PADDING
        bench = Bench(aws, aws.assume_refresher_role(), Path(scratch), args.concurrency)
        rows = [row for latency in LATENCIES_MS for size in args.sizes for row in bench.measure(size, latency, args)]
        ratios = bench.kubectl_ratios(args.repeats) if 1000 in args.sizes and args.baseline_max >= 1000 else []
        sweep = bench.concurrency_sweep(args.repeats) if 1000 in args.sizes else {}
        coverage = bench.coverage()
        log_bytes = {size: bench.lambda_log_bytes(size) for size in args.sizes}
        progress = bench.progress_cost(max(args.sizes), args.repeats)
        page_sizes = bench.page_sizes(max(args.sizes), args.repeats)
        names_or_glob = bench.names_or_glob(NAMED_SIZES, args.repeats)
    elapsed = time.monotonic() - started
    report: dict[str, Any] = {
        "machine": machine(),
        "elapsed_s": round(elapsed),
        "rows": [asdict(r) for r in rows],
        "kubectl_ratios_n1000_20ms": ratios,
        "sweep": sweep,
        "coverage": asdict(coverage),
        "lambda_log_bytes_per_run": log_bytes,
        "progress_line_wall_s": progress,
        "fresh_run_by_page_size": page_sizes,
        "fresh_run_names_or_glob": names_or_glob,
    }
    print_report(rows, ratios, sweep, coverage, elapsed=elapsed, concurrency=args.concurrency)
    print(
        "log written per scheduled fresh run (bench/lambda_run.py): "
        + ", ".join(f"N={size}: {count:,} bytes" for size, count in log_bytes.items())
    )
    print(
        f"progress line, forced run at N={max(args.sizes)}, 0 ms, wall s (median, range of {args.repeats}): "
        + ", ".join(
            f"{where} {statistics.median(walls):.2f} ({min(walls):.2f}-{max(walls):.2f})"
            for where, walls in progress.items()
        )
    )
    print(
        f"fresh run at N={max(args.sizes)}, 20 ms, by page size (requests, median core s): "
        + ", ".join(f"{size}: {f['requests']:.0f} / {f['core_s']:.3f}" for size, f in page_sizes.items())
    )
    print(
        "fresh run, 20 ms, names or a glob (median core s, requests): "
        + ", ".join(
            f"N={n}: names {f['names_core_s']:.3f} ({f['names_requests']:.0f}), glob {f['glob_core_s']:.3f} "
            f"({f['glob_requests']:.0f})"
            for n, f in names_or_glob.items()
        )
    )
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(report, indent=2))
    plot(report["rows"], FIGURE, machine=machine())
    print(f"\nJSON: {RESULTS}; figure: {FIGURE}")
    return 0


@dataclass
class Bench:
    aws: MotoAws
    credentials: AwsCredentials
    scratch: Path
    concurrency: int

    @contextmanager
    def cluster(self, size: int, latency_ms: int) -> Iterator[tuple[LocalKube, Path, str]]:
        """A local EKS cluster with `size` namespaces, stopped on leaving: the refresher reaches it as the
        Lambda does (EKS mode: DescribeCluster, bearer token); kubectl through a kubeconfig with the admin
        token."""
        name = f"bench-{latency_ms}ms-{size}-{next(CLUSTER_NUMBERS)}"
        kube = local_eks_cluster(self.aws, self.credentials, cluster_name=name, latency=latency_ms / 1000)
        try:
            for index in range(size):
                kube.store.add_namespace(f"bench-{index:04d}")
            yield kube, kube.write_kubeconfig(self.scratch / "kubeconfig", token="admin-token"), name
        finally:
            kube.stop()

    def measure(self, size: int, latency_ms: int, args: argparse.Namespace) -> list[Row]:
        with self.cluster(size, latency_ms) as (kube, kubeconfig, name):
            rows = [
                self.refresher(kube, name, size, latency_ms, FIRST),
                self.refresher(kube, name, size, latency_ms, FRESH),
                self.refresher(kube, name, size, latency_ms, REFRESH, "--force"),
            ]
            # kubectl last: it finds every secret in place, as in steady state, and shows the gap.
            if size <= args.baseline_max and (latency_ms > 0 or size <= 100):
                rows.insert(0, self.kubectl(kube, kubeconfig, size, latency_ms))
        return rows

    def command(
        self, cluster_name: str, *flags: str, concurrency: int | None = None, interpreter: tuple[str, ...] = ()
    ) -> list[str]:
        """The CLI as the bench runs it (EKS mode, both registries, the glob bench-* unless `flags` name
        namespaces); `flags` add to it."""
        targets = [] if "--namespace" in flags else ["--namespace", "bench-*"]
        return [
            *(interpreter or (sys.executable, "-m", "lambda_fn")),
            "refresh",
            "--cluster",
            cluster_name,
            *targets,
            "--registry",
            SECOND_REGISTRY,
            "--concurrency",
            str(concurrency or self.concurrency),
            *flags,
        ]

    def refresher(
        self,
        kube: LocalKube,
        cluster_name: str,
        size: int,
        latency_ms: int,
        contestant: str,
        *flags: str,
        concurrency: int | None = None,
        interpreter: tuple[str, ...] = (),
    ) -> Row:
        kube.clear_log()
        calls_before = self.aws.token_calls
        command = self.command(
            cluster_name, "--output", "json", *flags, concurrency=concurrency, interpreter=interpreter
        )
        started = time.monotonic()
        done = run_measured(command, env=os.environ | self.aws.environment(self.credentials))
        wall = time.monotonic() - started
        if done.returncode != 0:
            raise SystemExit(f"{contestant} failed at N={size}: {done.stderr[-2000:]}")
        summary = json.loads(done.stdout)
        return Row(
            latency_ms,
            size,
            contestant,
            round(wall, 3),
            core_s=summary["duration_seconds"],
            peak_mb=done.peak_mb,
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
            KUBECTL,
            round(wall, 3),
            peak_mb=max(peaks),
            ecr_calls=self.aws.token_calls - calls_before,
            notes=["one registry, as the recipe serves"],
            **log_figures(kube.requests),
        )

    def kubectl_ratios(self, repeats: int) -> list[float]:
        """kubectl's wall time over the refresher's first run, N=1,000, 20 ms, `repeats` times."""
        ratios = []
        for _ in range(repeats):
            with self.cluster(1000, 20) as (kube, kubeconfig, name):
                first = self.refresher(kube, name, 1000, 20, FIRST)
                recipe = self.kubectl(kube, kubeconfig, 1000, 20)
            ratios.append(round(recipe.wall_s / first.wall_s, 1))
        return ratios

    def concurrency_sweep(self, repeats: int) -> dict[int, list[float]]:
        """First-run core seconds at N=1,000, 20 ms, for each concurrency, `repeats` times."""
        results: dict[int, list[float]] = {}
        for concurrency in SWEEP:
            results[concurrency] = []
            for _ in range(repeats):
                with self.cluster(1000, 20) as (kube, _, name):
                    row = self.refresher(kube, name, 1000, 20, "sweep", concurrency=concurrency)
                results[concurrency].append(row.core_s or 0.0)
        return results

    def lambda_log_bytes(self, size: int) -> int:
        """What one scheduled fresh run at `size` namespaces writes to its log (bench/lambda_run.py)."""
        with self.cluster(size, 0) as (kube, _, name):
            self.refresher(kube, name, size, 0, FIRST)
            environment = os.environ | self.aws.environment(self.credentials)
            environment |= {
                "CLUSTER_NAME": name,
                "NAMESPACES": "bench-*",
                "REGISTRIES": SECOND_REGISTRY,
                "POWERTOOLS_SERVICE_NAME": "ecr-token-refresher",
                "POWERTOOLS_METRICS_NAMESPACE": "EcrTokenRefresher",
                "POWERTOOLS_TRACE_DISABLED": "true",
            }
            done = run_measured([sys.executable, "-m", "bench.lambda_run"], env=environment)
            if done.returncode != 0:
                raise SystemExit(f"the Lambda run failed at N={size}: {done.stderr[-2000:]}")
        return len(done.stdout.encode()) + len(done.stderr.encode())

    def page_sizes(self, size: int, repeats: int) -> dict[int, dict[str, float]]:
        """Fresh runs at `size` namespaces, 20 ms, with each page size in PAGE_SIZES: requests and the
        median core seconds, the ground for the shipped PAGE_SIZE (docs/performance.md)."""
        with self.cluster(size, 20) as (kube, _, name):
            found: dict[int, dict[str, float]] = {}
            self.refresher(kube, name, size, 20, FIRST)
            for page_size in PAGE_SIZES:
                rows = [
                    self.refresher(kube, name, size, 20, FRESH, interpreter=with_page_size(page_size))
                    for _ in range(repeats)
                ]
                found[page_size] = {
                    "requests": rows[0].requests,
                    "core_s": median_core(rows),
                }
        return found

    def names_or_glob(self, sizes: tuple[int, ...], repeats: int) -> dict[int, dict[str, float]]:
        """Fresh runs, 20 ms, serving the same namespaces by their names (a GET each) or by a glob (one
        list of the namespaces and one of the secrets): median core seconds of each."""
        found: dict[int, dict[str, float]] = {}
        for size in sizes:
            with self.cluster(size, 20) as (kube, _, name):
                named = [flag for index in range(size) for flag in ("--namespace", f"bench-{index:04d}")]
                self.refresher(kube, name, size, 20, FIRST)
                by_names = [self.refresher(kube, name, size, 20, FRESH, *named) for _ in range(repeats)]
                by_glob = [self.refresher(kube, name, size, 20, FRESH) for _ in range(repeats)]
            found[size] = {
                "names_core_s": median_core(by_names),
                "names_requests": by_names[0].requests,
                "glob_core_s": median_core(by_glob),
                "glob_requests": by_glob[0].requests,
            }
        return found

    def progress_cost(self, size: int, repeats: int) -> dict[str, list[float]]:
        """Wall seconds of a forced run at `size` namespaces, 0 ms (where drawing weighs most), with the
        table output on a terminal (the progress line drawn) and on pipes (not drawn): the same launcher,
        the order alternating from one repeat to the next."""
        with self.cluster(size, 0) as (kube, _, name):
            environment = os.environ | self.aws.environment(self.credentials)
            command = self.command(name, "--output", "table", "--force")
            found: dict[str, list[float]] = {"terminal": [], "redirected": []}
            self.refresher(kube, name, size, 0, FIRST)
            for repeat in range(repeats):
                for where in ("terminal", "redirected")[:: 1 if repeat % 2 == 0 else -1]:
                    if where == "terminal":
                        code, wall, written = run_on_terminal(command, env=environment)
                        if f"/{size} namespaces" not in written:
                            raise SystemExit(f"no progress line was drawn on the terminal: {written[-2000:]}")
                    else:
                        code, wall = run_redirected(command, env=environment)
                    if code != 0:
                        raise SystemExit(f"the forced run ({where}) failed")
                    found[where].append(round(wall, 3))
        return found

    def coverage(self) -> Coverage:
        """Steady state at N=1,000, 20 ms, with NEW_NAMESPACES created since the last run: the delay
        from a run's start to each new namespace's secret, fed to the simulated schedule."""
        with self.cluster(1000, 20) as (kube, _, name):
            self.refresher(kube, name, 1000, 20, FIRST)
            for index in range(NEW_NAMESPACES):
                kube.store.add_namespace(f"bench-new-{index:02d}")
            kube.clear_log()
            started = time.monotonic()
            self.refresher(kube, name, 1000, 20, FRESH)
            delays = [
                record.at - started
                for record in kube.requests
                if record.method == "POST" and record.status == 201 and "/bench-new-" in record.path
            ]
        return simulate(SCHEDULE_SECONDS, delays)


def median_core(rows: list[Row]) -> float:
    return statistics.median(row.core_s or 0.0 for row in rows)


def with_page_size(page_size: int) -> tuple[str, ...]:
    """`python -m lambda_fn`, with the list page size set to `page_size` for this measurement only."""
    code = (
        f"import lambda_fn.k8s.api as api; api.PAGE_SIZE = {page_size}; "
        "from lambda_fn.cli import main; raise SystemExit(main())"
    )
    return (sys.executable, "-c", code)


def log_figures(log: list[RequestRecord]) -> dict[str, Any]:
    """Requests, response bytes, writes, deletes, and how long each namespace was without its secret."""
    deleted_at: dict[str, float] = {}
    gaps: list[float] = []
    for record in log:
        parts = record.path.split("/")
        if record.method == "DELETE" and record.status == 200:
            deleted_at[parts[4]] = record.at
        elif record.method == "POST" and record.status == 201 and len(parts) > 4 and parts[4] in deleted_at:
            gaps.append((record.at - deleted_at.pop(parts[4])) * 1000)
    return {
        "requests": len(log),
        "response_mb": round(sum(r.response_bytes for r in log) / 1e6, 2),
        "writes": sum(r.method in ("POST", "PUT", "PATCH", "DELETE") for r in log),
        "deletes": sum(r.method == "DELETE" for r in log),
        "max_gap_ms": round(max(gaps, default=0.0), 1),
        "mean_gap_ms": round(sum(gaps) / len(gaps), 1) if gaps else 0.0,
    }


def pages(size: int) -> int:
    return math.ceil(size / PAGE_SIZE)


def print_report(
    rows: list[Row],
    ratios: list[float],
    sweep: dict[int, list[float]],
    coverage: Coverage,
    *,
    concurrency: int,
    elapsed: float,
) -> None:
    print(f"machine: {machine()}; concurrency {concurrency}; page size {PAGE_SIZE}; bench took {elapsed:.0f}s")
    header = (
        f"{'lat':>4} {'N':>5}  {'contestant':<29} {'wall s':>8} {'core s':>7} {'reqs':>6} {'resp MB':>8} "
        f"{'writes':>6} {'gap max/mean ms':>16} {'peak MB':>8} {'ECR':>4}"
    )
    print(header)
    print("-" * len(header))
    for row in rows:
        core = f"{row.core_s:.3f}" if row.core_s is not None else "-"
        gap = f"{row.max_gap_ms:.0f} / {row.mean_gap_ms:.0f}"
        print(
            f"{row.latency_ms:>4} {row.namespaces:>5}  {row.contestant:<29} {row.wall_s:>8.2f} {core:>7} "
            f"{row.requests:>6} {row.response_mb:>8.2f} {row.writes:>6} {gap:>16} {row.peak_mb:>8} {row.ecr_calls:>4}"
        )
    if ratios:
        print(f"\nkubectl / refresher first run, N=1000, 20 ms (wall): {min(ratios)}x to {max(ratios)}x over {ratios}")
    for level, seconds in sweep.items():
        print(
            f"concurrency {level:>2}: first-run core s at N=1000, 20 ms: median {statistics.median(seconds):.2f} "
            f"(min {min(seconds):.2f}, max {max(seconds):.2f})"
        )
    print(
        f"new namespace to valid secret, {coverage.period_s:.0f} s schedule (simulated clock, measured in-run "
        f"delays {min(coverage.in_run_delays_s)}-{max(coverage.in_run_delays_s)} s): p50 {coverage.p50_s} s, "
        f"p99 {coverage.p99_s} s, max {coverage.max_s} s"
    )
    print_targets(rows, ratios)


def print_targets(rows: list[Row], ratios: list[float]) -> None:
    def of(contestant: str) -> list[Row]:
        return [row for row in rows if row.contestant == contestant]

    checks: list[tuple[str, bool]] = [
        ("first run: writes = N", all(r.writes == r.namespaces for r in of(FIRST))),
        ("fresh run: 0 writes", all(r.writes == 0 for r in of(FRESH))),
        ("refresh (--force): writes = N", all(r.writes == r.namespaces for r in of(REFRESH))),
        (
            f"fresh run: requests <= 2*ceil(N/{PAGE_SIZE}) + 3",
            all(r.requests <= 2 * pages(r.namespaces) + 3 for r in of(FRESH)),
        ),
        (
            f"first run: requests <= N + 2*ceil(N/{PAGE_SIZE}) + 3",
            all(r.requests <= r.namespaces + 2 * pages(r.namespaces) + 3 for r in of(FIRST)),
        ),
        ("exactly 1 ECR call per run", all(r.ecr_calls == 1 for r in of(FIRST) + of(FRESH) + of(REFRESH))),
        ("no namespace ever without a secret (no delete)", all(r.deletes == 0 for r in of(FIRST) + of(REFRESH))),
    ]
    fresh_5000 = next((r for r in of(FRESH) if (r.namespaces, r.latency_ms) == (5000, 20)), None)
    if fresh_5000 is not None:
        checks.append((f"fresh run, N=5000, 20 ms: core {fresh_5000.core_s} s < 1 s", (fresh_5000.core_s or 9) < 1))
    biggest = [r for r in of(FIRST) + of(FRESH) + of(REFRESH) if r.namespaces == max(x.namespaces for x in rows)]
    peak = max(r.peak_mb for r in biggest)
    checks.append((f"peak memory < 256 MB at N={biggest[0].namespaces}: {peak} MB", peak < 256))
    if ratios:
        checks.append(
            (f">= 50x faster than kubectl at N=1000, 20 ms: {min(ratios)}x to {max(ratios)}x", min(ratios) >= 50)
        )
    print("\ntargets:")
    for text, held in checks:
        print(f"  [{'held' if held else 'NOT held'}] {text}")


def machine() -> str:
    return f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"


if __name__ == "__main__":
    raise SystemExit(main())
