"""What people read: a run's summary and a preflight's report as text tables (the CLI, the demo)."""

from __future__ import annotations

from typing import Any

MARKS = {"ok": "\u2713", "failed": "\u2717", "unknown": "-"}


def render_summary(summary: dict[str, Any]) -> str:
    """A readable table of a run's JSON summary (as the Lambda returns it)."""
    rows = [("NAMESPACE", "OUTCOME", "DETAIL")]
    for result in summary["namespaces"]:
        details = [result.get("reason", "")]
        if result.get("service_accounts_patched"):
            details.append("service accounts: " + ", ".join(result["service_accounts_patched"]))
        rows.append((result["namespace"], result["outcome"], "; ".join(filter(None, details))))
    lines = _columns(rows) if summary["namespaces"] else []
    if summary.get("skipped_run"):
        lines.append(f"nothing done: {summary['skipped_run']}")
    # A short or empty table must not read as "all done": say why rows are missing.
    if not summary.get("targets_known", True):
        lines.append("the target namespaces could not be listed: those not shown were not attempted (see the error)")
    elif not summary["namespaces"] and not summary.get("skipped_run"):
        lines.append(
            "no namespace matched the targets: compare the globs or selector with `kubectl get ns --show-labels`"
        )
    shown = dict(summary["counts"])
    if not summary.get("targets_known", True):
        shown["failed"] = f"\u2265{shown['failed'] + 1}"  # how many were missed is unknown, but never none
    counts = "  ".join(f"{name} {count}" for name, count in shown.items())
    lines += [
        "",
        f"cluster {summary['cluster']}  secret {summary['secret_name']}  "
        f"registries {', '.join(summary['registries']) or '-'}"
        + (
            f" (no token: {', '.join(summary['unavailable_registries'])})"
            if summary.get("unavailable_registries")
            else ""
        ),
        f"{counts}  token expires {summary['token_expires_at'] or '-'}  {summary['duration_seconds']:.2f}s"
        + ("  (dry run)" if summary["dry_run"] else ""),
    ]
    lines += [f"error: {error}" for error in summary["errors"]]
    return "\n".join(lines)


def render_report(report: dict[str, Any]) -> str:
    """A preflight's findings, one line each (with the fix under every failed one), then the namespaces."""
    lines = []
    for finding in report["checks"]:
        lines.append(f"{MARKS[finding['status']]} {finding['check']}: {finding['detail']}")
        if finding.get("fix"):
            lines.append(f"    fix: {finding['fix']}")
    if report["namespaces"]:
        lines += [
            "",
            *_columns(
                [("NAMESPACE", "SECRET", "DETAIL")]
                + [(n["namespace"], n["state"], n["detail"]) for n in report["namespaces"]]
            ),
        ]
    failed = sum(finding["status"] == "failed" for finding in report["checks"])
    lines += ["", f"cluster {report['cluster']}: " + ("ready" if report["ok"] else f"{failed} check(s) failed")]
    return "\n".join(lines)


def _columns(rows: list[tuple[str, str, str]]) -> list[str]:
    width = [max(len(row[column]) for row in rows) for column in range(2)]
    return [f"{row[0]:<{width[0]}}  {row[1]:<{width[1]}}  {row[2]}".rstrip() for row in rows]
