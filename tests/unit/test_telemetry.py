"""The run's summary line stays under CloudWatch's 256 KB event limit however many namespaces fail, and
the libraries that log credentials at DEBUG are pinned to WARNING."""

from __future__ import annotations

import json
import logging

from lambda_fn.library_logs import LIBRARY_LOGGERS
from lambda_fn.models import NamespaceResult, Outcome, RunSummary
from lambda_fn.telemetry import LOGGED_FAILURES_CAP, summary_for_log
from tests.fakes import NOW

CLOUDWATCH_EVENT_LIMIT = 256 * 1024


def summary_of(results: list[NamespaceResult]) -> RunSummary:
    return RunSummary("prod", "regcred", False, ("h",), NOW, tuple(results), (), 1.0)


def test_five_thousand_failures_fit_one_log_event_and_are_counted_by_reason() -> None:
    forbidden = (
        '403 Forbidden: secrets "regcred" is forbidden: User "ecr-token-refresher" cannot get resource '
        '"secrets" in API group "" in the namespace "{ns}": apply the RBAC manifest from `make rbac`'
    )
    results = [
        NamespaceResult(f"team-{i:04d}", Outcome.FAILED, forbidden.format(ns=f"team-{i:04d}")) for i in range(4990)
    ]
    results += [NamespaceResult(f"gone-{i}", Outcome.FAILED, f"namespace 'gone-{i}' does not exist") for i in range(10)]
    results += [NamespaceResult(f"ok-{i:04d}", Outcome.UNCHANGED) for i in range(3000)]
    view = summary_for_log(summary_of(results))
    assert len(json.dumps(view).encode()) < CLOUDWATCH_EVENT_LIMIT / 4
    assert len([r for r in view["namespaces"] if r["outcome"] == "failed"]) == LOGGED_FAILURES_CAP
    assert view["failures_not_listed"] == 5000 - LOGGED_FAILURES_CAP
    assert view["counts"]["failed"] == 5000
    assert view["failures_by_reason"] == {
        forbidden.replace('"{ns}"', "<namespace>"): 4990,
        "namespace <namespace> does not exist": 10,
    }


def test_a_small_run_is_logged_whole() -> None:
    results = [NamespaceResult("a", Outcome.CREATED), NamespaceResult("b", Outcome.FAILED, "boom")]
    view = summary_for_log(summary_of(results))
    assert view["namespaces"] == [
        {"namespace": "b", "outcome": "failed", "reason": "boom"},
        {"namespace": "a", "outcome": "created"},
    ]
    assert "namespaces_not_listed" not in view


def test_credential_logging_libraries_stay_at_warning_under_a_debug_root() -> None:
    logging.getLogger().setLevel(logging.DEBUG)
    try:
        for name in (*LIBRARY_LOGGERS, "botocore.parsers", "botocore.auth", "urllib3.connectionpool"):
            assert not logging.getLogger(name).isEnabledFor(logging.DEBUG), name
    finally:
        logging.getLogger().setLevel(logging.WARNING)
