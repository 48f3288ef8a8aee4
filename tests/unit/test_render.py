"""The CLI's table: a short or empty table says why rows are missing, and unknown is never `failed 0`."""

from __future__ import annotations

from lambda_fn.models import NamespaceResult, Outcome, RunSummary
from lambda_fn.render import render_summary


def summary(*results: NamespaceResult, targets_known: bool = True, errors: tuple[str, ...] = ()) -> str:
    run = RunSummary("prod", "regcred", False, ("host",), None, results, errors, 0.1, targets_known=targets_known)
    return render_summary(run.to_dict())


def test_a_glob_that_matches_nothing_says_so() -> None:
    text = summary()
    assert "no namespace matched the targets" in text
    assert "failed 0" in text


def test_targets_that_could_not_be_listed_are_not_shown_as_nothing_failed() -> None:
    listed_error = "could not list namespaces, so the globs and selector reached none: 403 Forbidden"
    text = summary(NamespaceResult("team-a", Outcome.UPDATED), targets_known=False, errors=(listed_error,))
    assert "the target namespaces could not be listed: those not shown were not attempted" in text
    assert "failed \u22651" in text
    assert "failed 0" not in text
    assert text.splitlines()[-1] == f"error: {listed_error}"
