"""Events: the schedule runs the settings as they are; a manual event overrides them, strictly."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from lambda_fn.config import Settings
from lambda_fn.errors import ConfigError
from lambda_fn.events import settings_for_event
from lambda_fn.models import TargetSpec

EVENTS = Path(__file__).parents[2] / "events"
SETTINGS = Settings.from_env(
    {"AWS_REGION": "eu-west-1", "CLUSTER_NAME": "prod", "NAMESPACES": "team-*"}, require_cluster=True
)


def load(name: str) -> object:
    return json.loads((EVENTS / name).read_text())


def test_the_scheduled_event_keeps_the_settings() -> None:
    assert settings_for_event(load("scheduled.json"), SETTINGS) == SETTINGS


def test_the_shipped_manual_events_parse() -> None:
    assert settings_for_event(load("dry-run.json"), SETTINGS).dry_run is True
    manual = settings_for_event(load("manual-override.json"), SETTINGS)
    assert manual.narrowing == TargetSpec(("team-a", "team-b"), None, ())
    assert manual.namespaces == SETTINGS.namespaces  # the configured scope stays; the event chooses within it
    assert manual.force is True


def test_a_selector_alone_narrows_the_targeting_as_a_whole() -> None:
    settings = settings_for_event({"selector": "team=a"}, SETTINGS)
    assert settings.narrowing == TargetSpec((), "team=a", ())
    assert settings.namespaces == ("team-*",)


def test_exclusions_in_an_event_add_to_the_configured_ones() -> None:
    settings = settings_for_event({"exclude_namespaces": ["team-x"]}, SETTINGS)
    assert settings.narrowing == TargetSpec((), None, ("team-x",))


def test_a_configured_dry_run_cannot_be_turned_off_by_an_event() -> None:
    dry = SETTINGS.replace({}, source="test", dry_run=True)
    assert settings_for_event({"dry_run": True, "force": True}, dry).dry_run is True
    with pytest.raises(ConfigError, match="dry_run: this function is configured not to write"):
        settings_for_event({"dry_run": False}, dry)
    assert settings_for_event({"dry_run": False}, SETTINGS).dry_run is False


def test_options_added_to_a_scheduled_event_are_refused_not_dropped() -> None:
    event = load("scheduled.json")
    assert isinstance(event, dict)
    with pytest.raises(ConfigError, match="invalid scheduled event") as caught:
        settings_for_event({**event, "dry_run": True, "namespaces": ["team-a"]}, SETTINGS)
    message = str(caught.value)
    assert "dry_run: unknown field: an EventBridge event carries only EventBridge's own fields" in message
    assert "namespaces: unknown field" in message


def test_the_event_may_name_the_configured_cluster_secret_and_service_accounts() -> None:
    configured = SETTINGS.replace({}, source="test", service_accounts=("default", "builder"))
    settings = settings_for_event(
        {"cluster_name": "prod", "secret_name": "regcred", "service_accounts": ["builder"]}, configured
    )
    assert (settings.cluster_name, settings.secret_name, settings.service_accounts) == ("prod", "regcred", ("builder",))


@pytest.mark.parametrize(
    ("event", "expected"),
    [
        ({"cluster_name": "staging"}, "cluster_name: this function serves cluster 'prod' only (CLUSTER_NAME)"),
        ({"secret_name": "other"}, "secret_name: this function writes 'regcred' only (SECRET_NAME)"),
        (
            {"service_accounts": ["default"]},
            "service_accounts: default not configured: a manual event may only choose among the configured",
        ),
    ],
)
def test_an_event_that_would_widen_the_scope_is_rejected(event: dict[str, object], expected: str) -> None:
    with pytest.raises(ConfigError, match="invalid event") as caught:
        settings_for_event(event, SETTINGS)
    assert expected in str(caught.value)


@pytest.mark.parametrize(
    ("event", "expected"),
    [
        ({"namespace": ["a"]}, "namespace: unknown field; a manual event may set cluster_name, namespaces"),
        ({"dry_run": "true"}, "dry_run: Input should be a valid boolean"),
        ({"namespaces": "team-a"}, "namespaces: Input should be a valid list"),
        ({"namespaces": []}, "namespaces: List should have at least 1 item"),
        ({"namespaces": [f"ns-{i}" for i in range(1001)]}, "namespaces: List should have at most 1000 items"),
        ({"namespaces": ["../../etc"]}, "namespaces: '../../etc' is not a namespace name"),
        ({"namespaces": ["a\u0000b"]}, "namespaces: 'a\\x00b' is not a namespace name"),
        ({"selector": "a in (b"}, "selector: 'a in (b' is not a label selector"),
        ({"exclude_namespaces": ["Not Valid"]}, "exclude_namespaces: 'Not Valid' is not a namespace name"),
        (["not", "an", "object"], "event: must be a JSON object"),
        ({"source": "aws.events", "detail-type": "Scheduled Event"}, "scheduled event"),
    ],
)
def test_bad_events_are_rejected_naming_the_field(event: object, expected: str) -> None:
    with pytest.raises(ConfigError) as caught:
        settings_for_event(event, SETTINGS)
    assert expected in str(caught.value)
