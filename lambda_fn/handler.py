"""Lambda entry point: lambda_fn.handler.lambda_handler. Thin: settings, event, compose, publish."""

from __future__ import annotations

import os
from typing import Any

from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext

from lambda_fn.check import run_check
from lambda_fn.collector import tune_for_large_lists
from lambda_fn.config import Settings
from lambda_fn.errors import RefresherError, RefreshFailed
from lambda_fn.events import requested_check, settings_for_event
from lambda_fn.runner import configured_cluster, run_refresh, utc_now
from lambda_fn.telemetry import logger, metrics, publish_run, tracer

tune_for_large_lists()  # at init, after the imports: see lambda_fn/collector.py


@logger.inject_lambda_context(correlation_id_path=correlation_paths.EVENT_BRIDGE)
@tracer.capture_lambda_handler(capture_response=False)
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    """Renew the pull secrets; raise (after logging the summary) if any namespace failed.
    A manual {"check": true} runs the read-only preflight instead and returns its report."""

    def remaining_seconds() -> float:
        return context.get_remaining_time_in_millis() / 1000

    try:
        settings = settings_for_event(event, Settings.from_env(os.environ, require_cluster=True))
        cluster = configured_cluster(settings)
        if requested_check(event):
            report = run_check(
                settings, cluster, remaining_seconds=remaining_seconds, function_name=context.function_name
            ).to_dict()
            logger.info("check finished", extra={"check": report})
            return report
        holder = f"lambda {context.function_name} {context.aws_request_id}"
        summary = run_refresh(settings, cluster, remaining_seconds=remaining_seconds, holder=holder)
    except RefresherError as exc:
        logger.error("refresh not run", extra={"error": str(exc), "error_type": type(exc).__name__})
        raise
    publish_run(summary, now=utc_now())
    if not summary.ok:
        raise RefreshFailed(summary.failed_namespaces, summary.errors)
    return summary.to_dict()
