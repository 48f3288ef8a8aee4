"""Deployment configuration: validated at synth, each problem named by its context key."""

from __future__ import annotations

import pytest

from infra.config import DeploymentConfig
from lambda_fn.errors import ConfigError
from tests.infra.conftest import config_for


def problems(**context: object) -> str:
    with pytest.raises(ConfigError) as caught:
        config_for(**context)
    return str(caught.value)


def test_defaults_are_valid() -> None:
    config = config_for()
    assert config.clusters == ("my-cluster",)
    assert config.schedule_minutes == 30
    assert config.lists_namespaces is False


def test_a_missing_cluster_name_fails_synth() -> None:
    with pytest.raises(ConfigError, match="clusterName: required"):
        DeploymentConfig.from_context({}.get)


@pytest.mark.parametrize(
    ("context", "expected"),
    [
        ({"namespaces": ["Team_A"]}, "namespaces: 'Team_A' is not a namespace name"),
        ({"namespaceSelector": "a in (b"}, "namespaceSelector: 'a in (b' is not a label selector"),
        ({"registries": ["docker.io"]}, "registries: 'docker.io' is not an ECR registry host"),
        ({"secretName": "Bad Name"}, "secretName: 'Bad Name' is not a valid Kubernetes name"),
        ({"scheduleMinutes": 360}, "scheduleMinutes: a run every 360 min with refreshThresholdMinutes=360"),
        ({"scheduleMinutes": 0}, "scheduleMinutes: must be a whole number from 1 to 360"),
        ({"refreshThresholdMinutes": 45}, "scheduleMinutes: a run every 30 min with refreshThresholdMinutes=45"),
        ({"clusters": ["ok", "not ok"]}, "clusters: 'not ok' is not a valid EKS cluster name"),
        ({"vpcSubnetIds": ["subnet-0123456789abcdef0"]}, "vpcSubnetIds: set vpcSubnetIds and vpcSecurityGroupIds"),
        ({"vpcSecurityGroupIds": ["sg-x"], "vpcSubnetIds": ["subnet-x"]}, "is not an id like"),
        ({"alarmEmail": "nobody"}, "alarmEmail: 'nobody' is not an e-mail address"),
        ({"kubernetesGroup": "system:masters"}, "kubernetesGroup: 'system:masters' is not a group name"),
        ({"runOnDeploy": "sometimes"}, "runOnDeploy: must be true or false"),
    ],
)
def test_invalid_context_fails_synth_naming_the_key(context: dict[str, object], expected: str) -> None:
    assert expected in problems(**context)


def test_context_from_the_command_line_is_text() -> None:
    config = config_for(namespaces="team-*,default", scheduleMinutes="15", runOnDeploy="false")
    assert config.settings.namespaces == ("team-*", "default")
    assert config.schedule_minutes == 15
    assert config.run_on_deploy is False
    assert config.lists_namespaces is True
