"""Events: the schedule runs the settings as they are; a manual event overrides them, strictly."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from lambda_fn.config import Settings
from lambda_fn.errors import ConfigError
from lambda_fn.events import settings_for_event

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
    assert manual.namespaces == ("team-a", "team-b")
    assert manual.service_accounts == ("default",)
    assert manual.force is True


def test_a_selector_alone_replaces_the_targeting() -> None:
    settings = settings_for_event({"selector": "team=a"}, SETTINGS)
    assert settings.namespaces == ()
    assert settings.namespace_selector == "team=a"


def test_a_schedule_input_may_name_the_cluster() -> None:
    assert settings_for_event({"cluster_name": "staging"}, SETTINGS).cluster_name == "staging"


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
        ({"secret_name": "Not Valid"}, "secret_name: 'Not Valid' is not a valid Kubernetes name"),
        (["not", "an", "object"], "event: must be a JSON object"),
        ({"source": "aws.events", "detail-type": "Scheduled Event"}, "scheduled event"),
    ],
)
def test_bad_events_are_rejected_naming_the_field(event: object, expected: str) -> None:
    with pytest.raises(ConfigError) as caught:
        settings_for_event(event, SETTINGS)
    assert expected in str(caught.value)
