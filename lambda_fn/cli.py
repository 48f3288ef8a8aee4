"""The CLI: the same core as the Lambda, against EKS or any kubeconfig. Exit 0 ok, 1 failed, 2 usage."""

from __future__ import annotations

import argparse
import json
import os
import socket
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from typing import Any, TextIO

import boto3

from lambda_fn import __version__
from lambda_fn.aws import new_session
from lambda_fn.check import run_check
from lambda_fn.collector import tune_for_large_lists
from lambda_fn.config import DECLARED, Settings
from lambda_fn.declaration import Kind, names
from lambda_fn.errors import ConfigError, Problem, RefresherError
from lambda_fn.k8s import kubeconfig_file_problems
from lambda_fn.library_logs import pin_library_loggers
from lambda_fn.models import NamespaceResult, RunSummary
from lambda_fn.progress import ProgressLine
from lambda_fn.render import render_report, render_summary
from lambda_fn.runner import Cluster, KubeconfigCluster, configured_cluster, run_refresh

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2
EPILOG = """examples:
  ecr-token-refresher check --kubeconfig ~/.kube/config --context dev --region eu-west-1 --namespace 'team-*'
  ecr-token-refresher refresh --cluster prod --region eu-west-1 --namespace 'team-*' --dry-run
  ecr-token-refresher refresh --kubeconfig-secret onprem-kubeconfig --selector pull=ecr --service-account default

exit codes:
  0    every target namespace holds a valid secret (check: every prerequisite holds)
  1    a namespace failed, or AWS or the cluster refused (check: something is missing; each line names the fix)
  2    bad usage or configuration: nothing was written
  130  interrupted: each secret is as it was or fully written

Settings not given as flags come from the environment (docs/configuration.md)."""
EXIT_INTERRUPTED = 130  # 128 + SIGINT, as shells report it
INTERRUPTED = "interrupted: every secret is as it was or fully written; run again to finish"

# Each setting's flag, for error messages.
FLAG_NAMES = names(Settings, "flag")
BY_FIELD = {declared.field: declared for declared in DECLARED}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ecr-token-refresher",
        description="Keep Amazon ECR image-pull secrets valid in Kubernetes namespaces "
        "(also runs as `python -m lambda_fn`).",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    common = argparse.ArgumentParser(add_help=False)
    where = common.add_argument_group("cluster (EKS, or a kubeconfig)")
    add_setting_flags(where, "cluster_name", "region")
    where.add_argument("--kubeconfig", metavar="PATH", help="use this kubeconfig instead of EKS")
    add_setting_flags(where, "kubeconfig_secret", "kubeconfig_context")
    what = common.add_argument_group("what to write")
    add_setting_flags(
        what,
        "namespaces",
        "namespace_selector",
        "exclude_namespaces",
        "secret_name",
        "service_accounts",
        "registries",
        "tenants",
    )
    how = common.add_argument_group("how")
    add_setting_flags(how, "max_concurrency", "dry_run", "force")
    how.add_argument("--output", choices=("table", "json"), default="table")
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser(
        "refresh",
        parents=[common],
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        help="create or update the pull secret in every target namespace",
        description="Settings not given as flags come from the environment (NAMESPACES, REGISTRIES, ...). "
        "Namespaces, globs or a selector given as flags replace the environment's targeting as a whole.",
    )
    commands.add_parser(
        "check",
        parents=[common],
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        help="read-only preflight: every prerequisite, with the fix for each missing one",
        description="Writes nothing. Exit 0 when everything holds, 1 when something is missing, 2 for bad usage.",
    )
    return parser


def add_setting_flags(group: argparse._ArgumentGroup, *fields: str) -> None:
    """The flags of these settings, as their declarations say (lambda_fn/config.py)."""
    for field in fields:
        declared = BY_FIELD[field]
        help_text = declared.help + ("; repeatable" if declared.kind in {Kind.NAMES, Kind.LIST} else "")
        if declared.env and declared.env not in help_text and "default:" not in help_text:
            default = f" or {declared.default_text}" if declared.default_text else ""
            help_text += f" (default: {declared.env}{default})"
        flag = str(declared.flag)
        options: dict[str, Any] = {"dest": field, "help": help_text}
        if declared.kind is Kind.FLAG:
            options["action"] = "store_true"
        else:
            options["metavar"] = declared.metavar or flag.lstrip("-").upper().replace("-", "_")
        if declared.kind in {Kind.NAMES, Kind.LIST}:
            options["action"] = "append"
        elif declared.kind is Kind.NUMBER:
            options["type"] = int
        group.add_argument(flag, **options)


def run() -> None:
    """The `ecr-token-refresher` command: an interrupt or a reader that went away (`| head`) ends it
    without a traceback. Every write is a whole-object create or update, so an interrupted run leaves
    each secret either as it was or as written; the next run finishes the rest."""
    tune_for_large_lists()
    try:
        code = main()
        sys.stdout.flush()
    except KeyboardInterrupt:
        print(INTERRUPTED, file=sys.stderr)
        code = EXIT_INTERRUPTED
    except BrokenPipeError:
        # Python's documented way: point stdout at devnull so that the flush at exit raises nothing more.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        code = EXIT_FAILED
    raise SystemExit(code)


def main(argv: Sequence[str] | None = None, *, stdout: TextIO = sys.stdout, stderr: TextIO = sys.stderr) -> int:
    pin_library_loggers()
    args = build_parser().parse_args(argv)
    target: list[str] = []

    def announce(description: str) -> None:
        """Before the first write: which cluster this run is about to change."""
        target.append(description)
        if args.output == "table":
            print(f"target: {description}" + (" (dry run)" if args.dry_run else ""), file=stdout, flush=True)

    # Progress only for a person watching: table output, stdout and stderr both a terminal.
    watching = args.output == "table" and stdout.isatty() and stderr.isatty()
    try:
        settings, cluster, session = resolve(args, os.environ)
        if args.command == "check":
            report = run_check(settings, cluster, session=session).to_dict()
            print(json.dumps(report, indent=2) if args.output == "json" else render_report(report), file=stdout)
            return EXIT_OK if report["ok"] else EXIT_FAILED
        line = ProgressLine(stderr) if watching else None
        settled = SettledSoFar(line or (lambda *_: None))
        interrupted = False
        try:
            summary = run_refresh(
                settings,
                cluster,
                session=session,
                announce=announce,
                progress=settled,
                holder=f"cli {socket.gethostname()} {os.getpid()}",
            )
        except KeyboardInterrupt:
            if not target:
                raise  # nothing was about to be written: the plain interrupt line says it all
            if line is not None:
                line.clear()
            summary, interrupted = settled.interrupted(settings, target[0]), True
    except ConfigError as exc:
        print(f"error: {exc}", file=stderr)
        return EXIT_USAGE
    except RefresherError as exc:
        print(f"error: {exc}", file=stderr)
        return EXIT_FAILED
    result = {"target": target[0], **summary.to_dict()} if target else summary.to_dict()
    print(json.dumps(result, indent=2) if args.output == "json" else render_summary(result), file=stdout)
    if interrupted:
        print(INTERRUPTED, file=stderr)
        return EXIT_INTERRUPTED
    return EXIT_OK if summary.ok else EXIT_FAILED


class SettledSoFar:
    """Hears each namespace as it settles (passing it on), so an interrupted run can say what it did."""

    def __init__(self, progress: Callable[[NamespaceResult, int, int], None]) -> None:
        self._progress = progress
        self._results: list[NamespaceResult] = []
        self._total = 0
        self._started = time.monotonic()

    def __call__(self, result: NamespaceResult, done: int, total: int) -> None:
        self._results.append(result)
        self._total = total
        self._progress(result, done, total)

    def interrupted(self, settings: Settings, cluster: str) -> RunSummary:
        """The namespaces settled before the interrupt; the run is failed, and the error says how far it got.
        No expiry is claimed: the namespaces not reached are unknown."""
        results = tuple(sorted((replace(r, expires_at=None) for r in self._results), key=lambda r: r.namespace))
        return RunSummary.unfinished(
            cluster=cluster,
            secret_name=settings.secret_name,
            dry_run=settings.dry_run,
            results=results,
            errors=(
                f"interrupted after {len(results)} of {self._total or '?'} namespaces; the others were not attempted",
            ),
            duration_seconds=time.monotonic() - self._started,
        )


def resolve(args: argparse.Namespace, environ: Mapping[str, str]) -> tuple[Settings, Cluster, boto3.Session]:
    """The settings, the cluster and an AWS session for these flags; ConfigError names the flags."""
    kubeconfig_file = bool(args.kubeconfig or (args.kubeconfig_context and not args.kubeconfig_secret))
    ways = [flag for flag, given in (("--cluster", args.cluster_name), ("--kubeconfig", kubeconfig_file)) if given]
    if len(ways) + bool(args.kubeconfig_secret) > 1:
        raise ConfigError(
            [Problem(ways[0], "give one of --cluster (EKS), --kubeconfig [--context] or --kubeconfig-secret")],
            source="command line",
        )
    region = args.region or environ.get("AWS_REGION") or environ.get("AWS_DEFAULT_REGION")
    session = new_session(region, profile=environ.get("AWS_PROFILE"))
    region = region or session.region_name
    if not region:
        raise ConfigError(
            [Problem("--region", "required: an AWS region such as eu-west-1 (or AWS_REGION, or the profile's region)")],
            source="command line",
        )
    settings = settings_from_args(args, {**environ, "AWS_REGION": region})
    cluster: Cluster
    if kubeconfig_file or not (settings.cluster_name or settings.kubeconfig_secret):
        # A kubeconfig the user pointed at is usage: refused here, so refresh and check both exit 2.
        problems = kubeconfig_file_problems(args.kubeconfig, args.kubeconfig_context)
        if problems:
            raise ConfigError(problems, source="command line")
        cluster = KubeconfigCluster(args.kubeconfig, args.kubeconfig_context)
    else:
        cluster = configured_cluster(settings)
    return settings, cluster, session


def settings_from_args(args: argparse.Namespace, environ: Mapping[str, str]) -> Settings:
    """The environment's settings with the flags applied; ConfigError names the flags."""
    settings = Settings.from_env(environ, require_cluster=False)
    given: dict[str, Any] = {}
    for field in ("exclude_namespaces", "secret_name", "service_accounts", "max_concurrency", "dry_run", "force"):
        value = getattr(args, field)
        if value is not None and value is not False:  # 0 is a value (`--concurrency 0` is refused by name)
            given[field] = tuple(value) if isinstance(value, list) else value
    if args.registries:
        try:  # each flag's value read whole: a role ARN may hold a comma
            given["registries"] = settings.registries + BY_FIELD["registries"].read_entries(args.registries)
        except ValueError as exc:
            raise ConfigError([Problem("--registry", fault) for fault in exc.args], source="command line") from None
    if args.tenants:
        try:  # replaces TENANTS from the environment, as one document
            given["tenants"] = BY_FIELD["tenants"].read(args.tenants)
        except ValueError as exc:
            raise ConfigError([Problem("--tenants", fault) for fault in exc.args], source="command line") from None
    # The cluster is one choice too: a flag for it replaces the environment's whole way of reaching one
    # (else KUBECONFIG_SECRET in the environment would win over --cluster, as it does in the Lambda).
    if args.cluster_name:
        given |= {"cluster_name": args.cluster_name, "kubeconfig_secret": None, "kubeconfig_context": None}
    elif args.kubeconfig_secret:
        given |= {"kubeconfig_secret": args.kubeconfig_secret, "kubeconfig_context": args.kubeconfig_context}
    if args.namespaces or args.namespace_selector:
        # One rule everywhere: targeting given here replaces the configured targeting as a whole, an
        # absent selector included.
        given |= {"namespaces": tuple(args.namespaces or ()), "namespace_selector": args.namespace_selector}
    return settings.replace(FLAG_NAMES, source="command line", **given)
