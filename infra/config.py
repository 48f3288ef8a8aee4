"""DeploymentConfig: CDK context -> a typed, validated configuration, checked at synth time.

The refresher's own settings are validated by the Lambda's Settings (one set of rules for the
function, the CLI and the deployment); problems are reported under the context key's name.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from lambda_fn.config import RegistrySpec, Settings
from lambda_fn.errors import ConfigError, Problem
from lambda_fn.models import is_glob

# Context key -> the function's environment variable it becomes.
SETTING_KEYS = {
    "namespaces": "NAMESPACES",
    "namespaceSelector": "NAMESPACE_SELECTOR",
    "excludeNamespaces": "EXCLUDE_NAMESPACES",
    "registries": "REGISTRIES",
    "includeOwnRegistry": "INCLUDE_OWN_REGISTRY",
    "serviceAccounts": "SERVICE_ACCOUNTS",
    "secretName": "SECRET_NAME",
    "refreshThresholdMinutes": "REFRESH_THRESHOLD_MINUTES",
    "maxConcurrency": "MAX_CONCURRENCY",
}
CONTEXT_FOR_ENV = {env: key for key, env in SETTING_KEYS.items()} | {"CLUSTER_NAME": "clusterName"}
SCHEDULE_MARGIN_MINUTES = 30
SUBNET_ID = re.compile(r"^subnet-[0-9a-f]{8,17}$")
SECURITY_GROUP_ID = re.compile(r"^sg-[0-9a-f]{8,17}$")
TOPIC_ARN = re.compile(r"^arn:aws[a-z-]*:sns:[a-z0-9-]+:\d{12}:[\w-]{1,256}$")
EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
KUBERNETES_GROUP = re.compile(r"^(?!system:)[A-Za-z0-9:._-]{1,63}$")


@dataclass(frozen=True)
class DeploymentConfig:
    """Everything the stack needs; build with from_context."""

    clusters: tuple[str, ...]
    settings: Settings  # the refresher's settings, as the function will read them
    function_environment: Mapping[str, str]
    schedule_minutes: int = 30
    subnet_ids: tuple[str, ...] = ()
    security_group_ids: tuple[str, ...] = ()
    alarm_email: str | None = None
    alarm_topic_arn: str | None = None
    kubernetes_group: str = "ecr-token-refresher"
    run_on_deploy: bool = True
    memory_mb: int = 512
    timeout_seconds: int = 300
    log_retention_days: int = 30

    @property
    def lists_namespaces(self) -> bool:
        """Globs and selectors need `list namespaces`; explicit names do not."""
        return self.settings.namespace_selector is not None or any(map(is_glob, self.settings.namespaces))

    @property
    def registries(self) -> tuple[RegistrySpec, ...]:
        return self.settings.registries

    @classmethod
    def from_context(cls, get: Callable[[str], Any]) -> DeploymentConfig:
        """Read and validate every context key; one ConfigError names every bad key."""
        reader = _ContextReader(get)
        clusters = reader.names("clusters") or reader.names("clusterName")
        if not clusters:
            reader.problem("clusterName", "required: pass -c clusterName=<EKS cluster name> (or a clusters list)")
        raw = {env: reader.setting(key) for key, env in SETTING_KEYS.items()}
        environment = {env: value for env, value in raw.items() if value is not None}
        environment["CLUSTER_NAME"] = clusters[0] if clusters else "unset"
        settings = reader.settings(environment, clusters)
        config = cls(
            clusters=clusters,
            settings=settings,
            function_environment=environment,
            schedule_minutes=reader.number("scheduleMinutes", 30, 1, 360),
            subnet_ids=reader.ids("vpcSubnetIds", SUBNET_ID, "subnet-0123456789abcdef0"),
            security_group_ids=reader.ids("vpcSecurityGroupIds", SECURITY_GROUP_ID, "sg-0123456789abcdef0"),
            alarm_email=reader.matching("alarmEmail", EMAIL, "an e-mail address"),
            alarm_topic_arn=reader.matching("alarmTopicArn", TOPIC_ARN, "an SNS topic ARN"),
            kubernetes_group=reader.matching(
                "kubernetesGroup", KUBERNETES_GROUP, "a group name not starting with system:"
            )
            or "ecr-token-refresher",
            run_on_deploy=reader.flag("runOnDeploy", default=True),
            memory_mb=reader.number("memorySize", 512, 256, 10240),
            timeout_seconds=reader.number("timeoutSeconds", 300, 30, 900),
            log_retention_days=reader.number("logRetentionDays", 30, 1, 3653),
        )
        threshold = int(settings.refresh_threshold.total_seconds() // 60)
        if config.schedule_minutes + SCHEDULE_MARGIN_MINUTES > threshold:
            reader.problem(
                "scheduleMinutes",
                f"a run every {config.schedule_minutes} min with refreshThresholdMinutes={threshold} could let a "
                f"token expire: keep scheduleMinutes + {SCHEDULE_MARGIN_MINUTES} <= refreshThresholdMinutes",
            )
        if bool(config.subnet_ids) != bool(config.security_group_ids):
            reader.problem("vpcSubnetIds", "set vpcSubnetIds and vpcSecurityGroupIds together (private endpoints)")
        reader.raise_problems()
        return config


class _ContextReader:
    def __init__(self, get: Callable[[str], Any]) -> None:
        self._get = get
        self._problems: list[Problem] = []

    def problem(self, key: str, message: str) -> None:
        self._problems.append(Problem(key, message))

    def raise_problems(self) -> None:
        if self._problems:
            raise ConfigError(self._problems, source="CDK context")

    def names(self, key: str) -> tuple[str, ...]:
        value = self._get(key)
        if value is None:
            return ()
        if isinstance(value, str):
            return tuple(item.strip() for item in value.split(",") if item.strip())
        if isinstance(value, Sequence) and all(isinstance(item, str) for item in value):
            return tuple(value)
        self.problem(key, "must be a list of strings or a comma-separated string")
        return ()

    def setting(self, key: str) -> str | None:
        """A context value as the environment variable's text."""
        value = self._get(key)
        if value is None:
            return None
        if isinstance(value, bool):
            return "true" if value else "false"
        if isinstance(value, int | str):
            return str(value)
        return ",".join(self.names(key))

    def settings(self, environment: dict[str, str], clusters: Sequence[str]) -> Settings:
        try:
            settings = Settings.from_env({**environment, "AWS_REGION": "us-east-1"}, require_cluster=True)
        except ConfigError as exc:
            for problem in exc.problems:
                self.problem(CONTEXT_FOR_ENV.get(problem.field, problem.field), problem.message)
            return Settings(region="us-east-1")
        for cluster in clusters[1:]:
            try:
                settings.replace({"cluster_name": "clusters"}, source="CDK context", cluster_name=cluster)
            except ConfigError as exc:
                self._problems += exc.problems
        return settings

    def number(self, key: str, default: int, low: int, high: int) -> int:
        value = self._get(key)
        if value is None:
            return default
        if isinstance(value, str) and value.isdigit():
            value = int(value)
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            self.problem(key, f"must be a whole number from {low} to {high}")
            return default
        return value

    def flag(self, key: str, *, default: bool) -> bool:
        value = self._get(key)
        if value is None:
            return default
        if isinstance(value, bool):
            return value
        if str(value).lower() in {"true", "false"}:
            return str(value).lower() == "true"
        self.problem(key, "must be true or false")
        return default

    def matching(self, key: str, pattern: re.Pattern[str], what: str) -> str | None:
        value = self._get(key)
        if value is None or value == "":
            return None
        if not isinstance(value, str) or not pattern.match(value):
            self.problem(key, f"{value!r} is not {what}")
            return None
        return value

    def ids(self, key: str, pattern: re.Pattern[str], example: str) -> tuple[str, ...]:
        ids = self.names(key)
        for bad in [item for item in ids if not pattern.match(item)]:
            self.problem(key, f"{bad!r} is not an id like {example}")
        return ids
