"""`python -m bench.client_cpu`: the refresher's own CPU seconds per run (first, then steady state with a
glob), the local API server in another process so that its work is not counted. The ground for the
Lambda cost model in docs/performance.md: Lambda gives 512 MB about 0.29 vCPU, so CPU-bound time
stretches by 3.5 there.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from lambda_fn.config import Settings
from lambda_fn.k8s import connect, kubeconfig_file_connection
from lambda_fn.models import RegistryCredential
from lambda_fn.refresher import renew_pull_secrets

CREDENTIAL = RegistryCredential(
    "123456789012.dkr.ecr.eu-west-1.amazonaws.com", "x" * 3200, datetime.now(UTC) + timedelta(hours=12)
)
PLAN = Settings(region="eu-west-1", namespaces=("team-*",))
FRESH_RUNS = 3


def serve(namespaces: int, kubeconfig: Path) -> None:
    """The server side (a child process): `namespaces` namespaces, its kubeconfig path on stdout."""
    from localkube import LocalKube  # noqa: PLC0415 - only the server process needs it

    kube = LocalKube().start()
    for index in range(namespaces):
        kube.store.add_namespace(f"team-{index:05}")
    print(kube.write_kubeconfig(kubeconfig, token="admin-token"), flush=True)
    sys.stdin.read()  # until the measuring process closes the pipe


def measure(namespaces: int) -> str:
    kubeconfig = Path(f"/tmp/bench-client-cpu-{namespaces}.kubeconfig")  # noqa: S108 - a throwaway file
    with subprocess.Popen(  # noqa: S603 - this module, as the server
        [sys.executable, "-m", "bench.client_cpu", "--serve", str(namespaces), str(kubeconfig)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    ) as server:
        assert server.stdout is not None  # noqa: S101 - piped above
        connection = kubeconfig_file_connection(server.stdout.readline().strip(), None, pool_size=16)
        seconds = []
        for _ in range(1 + FRESH_RUNS):
            with connect(connection, time_left=lambda: None) as api:
                started = time.process_time()
                renew_pull_secrets(api, [CREDENTIAL], PLAN, cluster_label="bench", now=lambda: datetime.now(UTC))
                seconds.append(time.process_time() - started)
        server.communicate("")
    fresh = seconds[1:]
    return (
        f"| {namespaces:,} | {seconds[0]:.2f} | {statistics.median(fresh):.2f} ({min(fresh):.2f} to {max(fresh):.2f}) |"
    )


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.client_cpu", description=__doc__)
    parser.add_argument("--sizes", type=int, nargs="+", default=[100, 1_000, 5_000, 20_000])
    parser.add_argument("--serve", nargs=2, metavar=("NAMESPACES", "KUBECONFIG"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(int(args.serve[0]), Path(args.serve[1]))
        return
    print("| namespaces | first run CPU s | steady-state run CPU s, median (range) |")
    print("|---:|---:|---:|")
    for size in args.sizes:
        print(measure(size), flush=True)


if __name__ == "__main__":
    main()
