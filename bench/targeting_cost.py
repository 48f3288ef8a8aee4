"""`make bench-targeting`: what a steady-state run reads for 100 target namespaces in a big cluster, by the
way the targets are given (a glob, the names, a label selector): requests and response bytes from the
local API server's request log. A glob lists every namespace and every same-named secret of the cluster,
so its cost follows the cluster, not the targets; names cost a GET each; a selector is filtered by the
API server. Bytes only: the server runs in this process, so CPU time here would include its own.
"""

from __future__ import annotations

import argparse
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

from lambda_fn.config import Settings
from lambda_fn.k8s import connect, kubeconfig_file_connection
from lambda_fn.models import RegistryCredential
from lambda_fn.refresher import renew_pull_secrets
from localkube import LocalKube

TARGETS = 100
TARGET_LABEL = {"pull": "ecr"}
# An ECR token as long as a real one (~3.2 KB), so that the secrets written weigh what they do in production.
CREDENTIAL = RegistryCredential(
    "123456789012.dkr.ecr.eu-west-1.amazonaws.com", "x" * 3200, datetime.now(UTC) + timedelta(hours=12)
)


def plans() -> dict[str, Settings]:
    names = tuple(f"team-{index:05}" for index in range(TARGETS))
    return {
        "glob team-*": Settings(region="eu-west-1", namespaces=("team-*",)),
        f"{TARGETS} names": Settings(region="eu-west-1", namespaces=names),
        "selector pull=ecr": Settings(region="eu-west-1", namespaces=(), namespace_selector="pull=ecr"),
    }


def measure(cluster_size: int, *, secrets_elsewhere: bool) -> list[str]:
    """One row per way of targeting: a fresh run's requests and response megabytes."""
    kube = LocalKube().start()
    try:
        for index in range(cluster_size):
            target = index < TARGETS
            kube.store.add_namespace(
                f"{'team' if target else 'other'}-{index:05}", labels=TARGET_LABEL if target else {}
            )
        kubeconfig = kube.write_kubeconfig(Path(tempfile.mkdtemp()) / "kubeconfig", token="admin-token")
        connection = kubeconfig_file_connection(str(kubeconfig), None, pool_size=16)

        def run(plan: Settings) -> tuple[int, float]:
            before = len(kube.requests)
            with connect(connection, time_left=lambda: None) as api:
                renew_pull_secrets(api, [CREDENTIAL], plan, cluster_label="bench", now=lambda: datetime.now(UTC))
            records = kube.requests[before:]
            return len(records), sum(record.response_bytes for record in records) / 1e6

        if secrets_elsewhere:  # another deployment's same-named secret in every other namespace
            run(Settings(region="eu-west-1", namespaces=("other-*",)))
        rows = []
        for label, plan in plans().items():
            run(plan)  # first run: creates
            requests, megabytes = run(plan)
            where = "every namespace" if secrets_elsewhere else "the targets only"
            rows.append(f"| {cluster_size:,} | {where} | {label} | {requests} | {megabytes:.2f} |")
        return rows
    finally:
        kube.stop()


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.targeting_cost", description=__doc__)
    parser.add_argument("--sizes", type=int, nargs="+", default=[5_000, 20_000])
    args = parser.parse_args()
    print("| namespaces | secret of that name in | targets given as | requests | response MB |")
    print("|---:|---|---|---:|---:|")
    for size in args.sizes:
        for elsewhere in (False, True):
            for row in measure(size, secrets_elsewhere=elsewhere):
                print(row, flush=True)


if __name__ == "__main__":
    main()
