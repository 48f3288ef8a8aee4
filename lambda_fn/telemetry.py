"""Powertools Logger, Metrics and Tracer, and what one run publishes: one summary line, EMF metrics."""

from __future__ import annotations

import logging
import os
import sys
from collections import Counter
from datetime import datetime
from typing import Any

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit

from lambda_fn.library_logs import pin_library_loggers
from lambda_fn.models import Outcome, RunSummary

# The `service` dimension of every metric and the `service` key of every log line. The stack sets
# POWERTOOLS_SERVICE_NAME to its own name, so two stacks on one cluster never share a metric series (nor
# watch each other's); the CLI, which publishes no metrics, logs under this default.
SERVICE = "ecr-token-refresher"
SERVICE_NAME = os.environ.get("POWERTOOLS_SERVICE_NAME") or SERVICE
METRICS_NAMESPACE = "EcrTokenRefresher"
# The watchdog's metric: seconds until the first target secret expires, as they stand after the run.
EXPIRY_METRIC = "SecondsUntilFirstExpiry"
# Published when the targets are known and none is served: nothing can expire sooner than a fresh token.
NOTHING_TO_EXPIRE_SECONDS = 12 * 3600
# A CloudWatch Logs event holds 256 KB: the summary line lists the first failures and the first other
# namespaces, and counts failures by reason, so it stays far below that however many namespaces fail.
LOGGED_FAILURES_CAP = 100
LOGGED_OTHERS_CAP = 100
LOGGED_REASONS_CAP = 20
REASON_CHARS = 300


class _StderrHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to sys.stderr as it is at each record (callers and test runners may swap it)."""

    def emit(self, record: logging.LogRecord) -> None:
        self.stream = sys.stderr
        super().emit(record)


# stderr, so the CLI's stdout carries only its table or JSON; Lambda sends both to CloudWatch.
logger = Logger(service=SERVICE_NAME, logger_handler=_StderrHandler())
metrics = Metrics(service=SERVICE_NAME, namespace=METRICS_NAMESPACE)
tracer = Tracer(service=SERVICE_NAME)
pin_library_loggers()


def publish_run(summary: RunSummary, *, now: datetime) -> None:
    """Log the one summary line and add the run's metrics (flushed by @metrics.log_metrics)."""
    if summary.skipped_run is not None:
        # Nothing observed, so no figure of the cluster: the run that holds the Lease publishes those. The
        # skip itself is counted, so that a watchdog alarm fed by skipped runs can be told from a dead schedule.
        logger.info("refresh skipped", extra={"summary": summary_for_log(summary)})
        metrics.add_dimension(name="cluster", value=summary.cluster)
        metrics.add_metric(name="RunsSkipped", unit=MetricUnit.Count, value=1)
        return
    logger.info("refresh finished", extra={"summary": summary_for_log(summary)})
    foreign = summary.foreign_namespaces
    if foreign:
        logger.warning(
            f"{len(foreign)} namespace(s) hold a {summary.secret_name!r} secret this tool does not manage; it was "
            "left untouched and pods there get no fresh token from it: rename or delete it, or configure another "
            "secret name (`check` lists them)",
            extra={"foreign_secrets": len(foreign), "namespaces": list(foreign[:LOGGED_OTHERS_CAP])},
        )
    metrics.add_dimension(name="cluster", value=summary.cluster)
    counts = summary.counts | {Outcome.FAILED.value: summary.failures}
    for outcome, count in counts.items():
        metrics.add_metric(name=f"Namespaces{outcome.capitalize()}", unit=MetricUnit.Count, value=count)
    metrics.add_metric(name="ForeignSecrets", unit=MetricUnit.Count, value=len(foreign))
    metrics.add_metric(name="RunErrors", unit=MetricUnit.Count, value=len(summary.errors))
    metrics.add_metric(name="RunDuration", unit=MetricUnit.Seconds, value=summary.duration_seconds)
    first_expiry = summary.seconds_until_first_expiry(now)
    metrics.add_metric(
        name=EXPIRY_METRIC,
        unit=MetricUnit.Seconds,
        value=NOTHING_TO_EXPIRE_SECONDS if first_expiry is None else first_expiry,
    )


def summary_for_log(summary: RunSummary) -> dict[str, Any]:
    """The summary with at most LOGGED_FAILURES_CAP failures and LOGGED_OTHERS_CAP other namespaces
    listed, and the failures counted by reason (the namespace's name taken out)."""
    view = summary.to_dict()
    results = view.pop("namespaces")
    failed = [r for r in results if r["outcome"] == Outcome.FAILED]
    others = [r for r in results if r["outcome"] != Outcome.FAILED]
    view["namespaces"] = failed[:LOGGED_FAILURES_CAP] + others[:LOGGED_OTHERS_CAP]
    if len(failed) > LOGGED_FAILURES_CAP:
        view["failures_not_listed"] = len(failed) - LOGGED_FAILURES_CAP
    if len(others) > LOGGED_OTHERS_CAP:
        view["namespaces_not_listed"] = len(others) - LOGGED_OTHERS_CAP
    if failed:
        reasons = Counter(_general(r["namespace"], r.get("reason", "")) for r in failed)
        view["failures_by_reason"] = dict(reasons.most_common(LOGGED_REASONS_CAP))
    return view


def _general(namespace: str, reason: str) -> str:
    """A failure's reason without its namespace's name, so that the same cause counts once."""
    for quoted in (f'"{namespace}"', f"'{namespace}'"):
        reason = reason.replace(quoted, "<namespace>")
    return reason[:REASON_CHARS]
