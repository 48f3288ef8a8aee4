"""Powertools Logger, Metrics and Tracer, and what one run publishes: one summary line, EMF metrics."""

from __future__ import annotations

import logging
import sys
from datetime import datetime
from typing import Any

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit

from lambda_fn.models import Outcome, RunSummary

SERVICE = "ecr-token-refresher"
METRICS_NAMESPACE = "EcrTokenRefresher"
# A CloudWatch Logs event holds 256 KB: the summary line lists every failure but caps the rest.
LOGGED_RESULTS_CAP = 200


class _StderrHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to sys.stderr as it is at each record (callers and test runners may swap it)."""

    def emit(self, record: logging.LogRecord) -> None:
        self.stream = sys.stderr
        super().emit(record)


# stderr, so the CLI's stdout carries only its table or JSON; Lambda sends both to CloudWatch.
logger = Logger(service=SERVICE, logger_handler=_StderrHandler())
metrics = Metrics(service=SERVICE, namespace=METRICS_NAMESPACE)
tracer = Tracer(service=SERVICE)


def publish_run(summary: RunSummary, *, now: datetime) -> None:
    """Log the one summary line and add the run's metrics (flushed by @metrics.log_metrics)."""
    logger.info("refresh finished", extra={"summary": summary_for_log(summary)})
    metrics.add_dimension(name="cluster", value=summary.cluster)
    for outcome, count in summary.counts.items():
        metrics.add_metric(name=f"Namespaces{outcome.capitalize()}", unit=MetricUnit.Count, value=count)
    metrics.add_metric(name="RunErrors", unit=MetricUnit.Count, value=len(summary.errors))
    metrics.add_metric(name="RunDuration", unit=MetricUnit.Seconds, value=summary.duration_seconds)
    if summary.token_expires_at is not None:
        seconds_left = (summary.token_expires_at - now).total_seconds()
        metrics.add_metric(name="SecondsUntilTokenExpiry", unit=MetricUnit.Seconds, value=seconds_left)


def summary_for_log(summary: RunSummary) -> dict[str, Any]:
    """The summary with every failure and at most LOGGED_RESULTS_CAP other namespaces."""
    view = summary.to_dict()
    failed = [r for r in view["namespaces"] if r["outcome"] == Outcome.FAILED]
    others = [r for r in view["namespaces"] if r["outcome"] != Outcome.FAILED]
    view["namespaces"] = failed + others[:LOGGED_RESULTS_CAP]
    if len(others) > LOGGED_RESULTS_CAP:
        view["namespaces_not_listed"] = len(others) - LOGGED_RESULTS_CAP
    return view
