"""The Lambda event: an EventBridge schedule, or a manual run whose fields override the settings."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.parser import parse
from aws_lambda_powertools.utilities.parser.models import EventBridgeModel
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from lambda_fn.config import MAX_NAMESPACE_PATTERNS, Settings
from lambda_fn.declaration import names
from lambda_fn.errors import ConfigError, Problem
from lambda_fn.models import TargetSpec

# Each setting's name in a manual event, for error messages.
EVENT_NAMES = names(Settings, "event")


class ScheduledEvent(EventBridgeModel):
    """An EventBridge event exactly as a rule sends it: a field added to one (say `dry_run`) is
    refused, not silently dropped."""

    model_config = ConfigDict(extra="forbid")


class ManualRun(BaseModel):
    """A console "Test" event: it may narrow the configured run, never widen it."""

    model_config = ConfigDict(extra="forbid", strict=True)

    cluster_name: str | None = Field(default=None, max_length=100)
    namespaces: list[str] | None = Field(default=None, min_length=1, max_length=MAX_NAMESPACE_PATTERNS)
    selector: str | None = Field(default=None, min_length=1, max_length=1000)
    exclude_namespaces: list[str] | None = Field(default=None, max_length=MAX_NAMESPACE_PATTERNS)
    secret_name: str | None = Field(default=None, max_length=253)
    service_accounts: list[str] | None = Field(default=None, max_length=100)
    dry_run: bool | None = None
    force: bool | None = None
    check: bool | None = None  # run the read-only preflight instead, and return its report


MANUAL_FIELDS = "unknown field; a manual event may set " + ", ".join(ManualRun.model_fields)
SCHEDULED_FIELDS = (
    "unknown field: an EventBridge event carries only EventBridge's own fields; to choose options, invoke "
    'with a manual event (no "source" or "detail-type"), e.g. {"dry_run": true}'
)


def requested_check(event: Any) -> bool:
    """Whether a manual event (already accepted by settings_for_event) asks for the preflight."""
    return isinstance(event, dict) and event.get("check") is True


def settings_for_event(event: Any, settings: Settings) -> Settings:
    """The settings for this invocation; ConfigError (nothing written) if the event is malformed or
    would widen what the function is configured to do."""
    if isinstance(event, dict) and event.get("source") == "aws.events" and "detail-type" in event:
        try:
            parse(event=event, model=ScheduledEvent)
        except ValidationError as exc:
            raise ConfigError(_problems(exc, SCHEDULED_FIELDS), source="scheduled event") from None
        return settings
    if not isinstance(event, dict):
        raise ConfigError([Problem("event", 'must be a JSON object, e.g. {"dry_run": true}')], source="event")
    try:
        run = parse(event=event, model=ManualRun)
    except ValidationError as exc:
        raise ConfigError(_problems(exc, MANUAL_FIELDS), source="event") from None
    problems = _widenings(run, settings)
    if problems:
        raise ConfigError(problems, source="event")
    changes: dict[str, Any] = {
        name: value
        for name, value in {
            "service_accounts": _tuple(run.service_accounts),
            "dry_run": run.dry_run,
            "force": run.force,
        }.items()
        if value is not None
    }
    if run.namespaces is not None or run.selector is not None or run.exclude_namespaces:
        # Targeting is chosen as a whole: {"selector": ...} alone means "those of the configured
        # namespaces that the selector matches".
        changes["narrowing"] = TargetSpec(
            tuple(run.namespaces or ()), run.selector, tuple(run.exclude_namespaces or ())
        )
    return settings.replace(EVENT_NAMES, source="event", **changes)


def _widenings(run: ManualRun, settings: Settings) -> list[Problem]:
    """What in `run` would reach beyond the configuration: each names the setting that governs it."""
    problems = []
    if run.cluster_name is not None and run.cluster_name != settings.cluster_name:
        problems.append(
            Problem("cluster_name", f"this function serves cluster {settings.cluster_name!r} only (CLUSTER_NAME)")
        )
    if run.dry_run is False and settings.dry_run:
        problems.append(
            Problem("dry_run", "this function is configured not to write (DRY_RUN=true); no event turns it on")
        )
    if run.secret_name is not None and run.secret_name != settings.secret_name:
        problems.append(Problem("secret_name", f"this function writes {settings.secret_name!r} only (SECRET_NAME)"))
    extra = sorted(set(run.service_accounts or ()) - set(settings.service_accounts))
    if extra:
        configured = ", ".join(settings.service_accounts) or "none"
        problems.append(
            Problem(
                "service_accounts",
                f"{', '.join(extra)} not configured: a manual event may only choose among the configured service "
                f"accounts ({configured}; SERVICE_ACCOUNTS)",
            )
        )
    return problems


def _tuple(values: list[str] | None) -> tuple[str, ...] | None:
    return None if values is None else tuple(values)


def _problems(exc: ValidationError, unknown: str) -> list[Problem]:
    problems = []
    for error in exc.errors(include_input=False, include_url=False):
        field = ".".join(str(part) for part in error["loc"]) or "event"
        if error["type"] == "extra_forbidden":
            problems.append(Problem(field, unknown))
        else:
            problems.append(Problem(field, error["msg"]))
    return problems
