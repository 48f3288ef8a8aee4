"""The CLI: the same core as the Lambda, against EKS or any kubeconfig. Exit 0 ok, 1 failed, 2 usage."""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Mapping, Sequence
from typing import Any, TextIO

import boto3

from lambda_fn import __version__
from lambda_fn.aws import new_session
from lambda_fn.config import RegistrySpec, Settings
from lambda_fn.errors import ConfigError, Problem, RefresherError
from lambda_fn.runner import Cluster, KubeconfigCluster, configured_cluster, run_refresh

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2

# Each setting's flag, for error messages.
FLAG_NAMES = {
    "cluster_name": "--cluster",
    "region": "--region",
    "namespaces": "--namespace",
    "namespace_selector": "--selector",
    "exclude_namespaces": "--exclude",
    "secret_name": "--secret-name",
    "service_accounts": "--service-account",
    "registries": "--registry",
    "max_concurrency": "--concurrency",
    "kubeconfig_secret": "--kubeconfig-secret",
    "kubeconfig_context": "--context",
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ecr-token-refresher",
        description="Keep Amazon ECR image-pull secrets valid in Kubernetes namespaces "
        "(also runs as `python -m lambda_fn`).",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    common = argparse.ArgumentParser(add_help=False)
    where = common.add_argument_group("cluster (EKS, or a kubeconfig)")
    where.add_argument("--cluster", help="EKS cluster name (default: CLUSTER_NAME)")
    where.add_argument("--region", help="AWS region (default: AWS_REGION or the AWS profile's)")
    where.add_argument("--kubeconfig", metavar="PATH", help="use this kubeconfig instead of EKS")
    where.add_argument(
        "--kubeconfig-secret",
        metavar="ARN_OR_NAME",
        help="a kubeconfig held in Secrets Manager (default: KUBECONFIG_SECRET)",
    )
    where.add_argument("--context", help="the kubeconfig's context (default: its current context)")
    what = common.add_argument_group("what to write")
    what.add_argument("--namespace", action="append", metavar="NAME_OR_GLOB", help="repeatable; globs allowed")
    what.add_argument("--selector", help="namespace label selector, e.g. team=a")
    what.add_argument("--exclude", action="append", metavar="NAME_OR_GLOB", help="repeatable")
    what.add_argument("--secret-name", help="default: SECRET_NAME or regcred")
    what.add_argument("--service-account", action="append", metavar="NAME", help="repeatable")
    what.add_argument("--registry", action="append", metavar="HOST[=ROLE_ARN]", help="repeatable extra registry")
    how = common.add_argument_group("how")
    how.add_argument("--concurrency", type=int, help="parallel writes (default: MAX_CONCURRENCY or 16)")
    how.add_argument("--dry-run", action="store_true", help="report what would change, write nothing")
    how.add_argument("--force", action="store_true", help="rewrite secrets even when still fresh")
    how.add_argument("--output", choices=("table", "json"), default="table")
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser(
        "refresh",
        parents=[common],
        help="create or update the pull secret in every target namespace",
        description="Settings not given as flags come from the environment (NAMESPACES, REGISTRIES, ...). "
        "Namespaces, globs or a selector given as flags replace the environment's targeting as a whole.",
    )
    return parser


def main(argv: Sequence[str] | None = None, *, stdout: TextIO = sys.stdout, stderr: TextIO = sys.stderr) -> int:
    args = build_parser().parse_args(argv)
    target: list[str] = []

    def announce(description: str) -> None:
        """Before the first write: which cluster this run is about to change."""
        target.append(description)
        if args.output == "table":
            print(f"target: {description}" + (" (dry run)" if args.dry_run else ""), file=stdout, flush=True)

    try:
        settings, cluster, session = resolve(args, os.environ)
        summary = run_refresh(settings, cluster, session=session, announce=announce)
    except ConfigError as exc:
        print(f"error: {exc}", file=stderr)
        return EXIT_USAGE
    except RefresherError as exc:
        print(f"error: {exc}", file=stderr)
        return EXIT_FAILED
    result = {"target": target[0], **summary.to_dict()} if target else summary.to_dict()
    print(json.dumps(result, indent=2) if args.output == "json" else render_table(result), file=stdout)
    return EXIT_OK if summary.ok else EXIT_FAILED


def resolve(args: argparse.Namespace, environ: Mapping[str, str]) -> tuple[Settings, Cluster, boto3.Session]:
    """The settings, the cluster and an AWS session for these flags; ConfigError names the flags."""
    kubeconfig_file = bool(args.kubeconfig or (args.context and not args.kubeconfig_secret))
    ways = [flag for flag, given in (("--cluster", args.cluster), ("--kubeconfig", kubeconfig_file)) if given]
    if len(ways) + bool(args.kubeconfig_secret) > 1:
        raise ConfigError(
            [Problem(ways[0], "give one of --cluster (EKS), --kubeconfig [--context] or --kubeconfig-secret")],
            source="command line",
        )
    region = args.region or environ.get("AWS_REGION") or environ.get("AWS_DEFAULT_REGION")
    session = new_session(region, profile=environ.get("AWS_PROFILE"))
    settings = settings_from_args(args, {**environ, "AWS_REGION": region or session.region_name or ""})
    cluster: Cluster
    if kubeconfig_file or not (settings.cluster_name or settings.kubeconfig_secret):
        cluster = KubeconfigCluster(args.kubeconfig, args.context)
    else:
        cluster = configured_cluster(settings)
    return settings, cluster, session


def settings_from_args(args: argparse.Namespace, environ: Mapping[str, str]) -> Settings:
    """The environment's settings with the flags applied; ConfigError names the flags."""
    settings = Settings.from_env(environ, require_cluster=False)
    changes: dict[str, Any] = {
        "cluster_name": args.cluster,
        "kubeconfig_secret": args.kubeconfig_secret,
        "kubeconfig_context": args.context if args.kubeconfig_secret else None,
        "exclude_namespaces": tuple(args.exclude) if args.exclude else None,
        "secret_name": args.secret_name,
        "service_accounts": tuple(args.service_account) if args.service_account else None,
        "max_concurrency": args.concurrency,
        "dry_run": args.dry_run or None,
        "force": args.force or None,
    }
    if args.namespace or args.selector:
        # One rule everywhere: targeting given here replaces the configured targeting as a whole.
        changes |= {"namespaces": tuple(args.namespace or ()), "namespace_selector": args.selector}
    if args.registry:
        changes["registries"] = settings.registries + _parse_registries(args.registry)
    return settings.replace(
        FLAG_NAMES,
        source="command line",
        **{name: value for name, value in changes.items() if value is not None},
    )


def _parse_registries(entries: Sequence[str]) -> tuple[RegistrySpec, ...]:
    specs, problems = [], []
    for entry in entries:
        try:
            specs.append(RegistrySpec.parse(entry))
        except ValueError as exc:
            problems.append(Problem("--registry", str(exc)))
    if problems:
        raise ConfigError(problems, source="command line")
    return tuple(specs)


def render_table(summary: dict[str, Any]) -> str:
    """A readable table of a run's JSON summary (as the Lambda returns it)."""
    rows = [("NAMESPACE", "OUTCOME", "DETAIL")]
    for result in summary["namespaces"]:
        details = [result.get("reason", "")]
        if result.get("service_accounts_patched"):
            details.append("service accounts: " + ", ".join(result["service_accounts_patched"]))
        rows.append((result["namespace"], result["outcome"], "; ".join(filter(None, details))))
    width = [max(len(row[column]) for row in rows) for column in range(2)]
    lines = [f"{row[0]:<{width[0]}}  {row[1]:<{width[1]}}  {row[2]}".rstrip() for row in rows]
    counts = "  ".join(f"{name} {count}" for name, count in summary["counts"].items())
    lines += [
        "",
        f"cluster {summary['cluster']}  secret {summary['secret_name']}  "
        f"registries {', '.join(summary['registries']) or '-'}",
        f"{counts}  token expires {summary['token_expires_at'] or '-'}  {summary['duration_seconds']:.2f}s"
        + ("  (dry run)" if summary["dry_run"] else ""),
    ]
    lines += [f"error: {error}" for error in summary["errors"]]
    return "\n".join(lines)
