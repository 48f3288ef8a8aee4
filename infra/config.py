"""DeploymentConfig: CDK context -> a typed, validated configuration, checked at synth time.

The refresher's own settings are validated by the Lambda's Settings (one set of rules for the
function, the CLI and the deployment); problems are reported under the context key's name. Every key
is listed in KNOWN_KEYS (and in docs/configuration.md); an unknown key fails synth naming the closest known one.
"""

from __future__ import annotations

import difflib
import hashlib
import json
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from lambda_fn.config import CLUSTER_NAME, REGION, RegistrySpec, Settings
from lambda_fn.declaration import Declared, Kind, declarations, names, setting, split
from lambda_fn.errors import ConfigError, Problem, shown
from lambda_fn.telemetry import METRICS_NAMESPACE

# Context key -> the function's environment variable it becomes (per-cluster settings are set by cluster).
SETTING_KEYS = {
    declared.context: declared.env
    for declared in declarations(Settings)
    if declared.context and declared.env and not declared.per_cluster
}
# The settings whose value is a JSON document (a list of objects), in cdk.json or as -c text.
JSON_KEYS = frozenset(declared.context for declared in declarations(Settings) if declared.kind is Kind.JSON)
# Each of the function's settings, named as a context key, for error messages.
CONTEXT_NAMES = names(Settings, "context")
DEFAULT_STACK_NAME = "EcrTokenRefresher"
SCHEDULE_MARGIN_MINUTES = 30
# Lambda refuses a function whose environment variables (names and values) exceed 4 KB in all.
ENVIRONMENT_BYTES = 4096
# The values CloudWatch Logs accepts for a log group's retention.
LOG_RETENTION_DAYS = (
    1,
    3,
    5,
    7,
    14,
    30,
    60,
    90,
    120,
    150,
    180,
    365,
    400,
    545,
    731,
    1096,
    1827,
    2192,
    2557,
    2922,
    3288,
    3653,
)
ARCHITECTURES = ("arm64", "x86_64")
SUBNET_ID = re.compile(r"^subnet-[0-9a-f]{8,17}$")
SECURITY_GROUP_ID = re.compile(r"^sg-[0-9a-f]{8,17}$")
TOPIC_ARN = re.compile(r"^arn:aws[a-z-]*:sns:[a-z0-9-]+:\d{12}:[\w-]{1,256}$")
SECRET_ARN = re.compile(r"^arn:aws[a-z-]*:secretsmanager:[a-z0-9-]+:\d{12}:secret:[\w/+=.@-]{1,512}$")
KMS_KEY_ARN = re.compile(r"^arn:aws[a-z-]*:kms:[a-z0-9-]+:\d{12}:key/[0-9a-f-]{36}$")
EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
KUBERNETES_GROUP = re.compile(r"^[A-Za-z0-9:._-]{1,63}$")
SERVICE_ACCOUNT = re.compile(r"^(?P<namespace>[a-z0-9]([-a-z0-9]*[a-z0-9])?)/(?P<name>[a-z0-9]([-a-z0-9.]*[a-z0-9])?)$")
REPOSITORY_PREFIX = re.compile(r"^[a-z0-9][a-z0-9._/-]{0,255}$")
ACCOUNT_ID = re.compile(r"^\d{12}$")
CLUSTER_KEYS = ("name", "account", "region", "kubeconfigSecretArn", "kmsKeyArn")
MAX_STACK_NAME = 128
STACK_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9-]{0,127}$")
# Keys of the CDK itself (feature flags, bundling, path metadata) are not this app's to check.
CDK_KEY = re.compile(r"^(@|aws:cdk:|aws-cdk:|cdk-|acknowledged-issue-numbers$)")


@dataclass(frozen=True, order=True)
class Environment:
    """An AWS account and region a stack deploys to."""

    account: str
    region: str

    @property
    def label(self) -> str:
        return f"{self.account}-{self.region}"


@dataclass(frozen=True)
class Cluster:
    """One cluster the function serves: EKS (by name), or any cluster through a kubeconfig that
    Secrets Manager holds. `manage_access_entry` is False where the entry is made elsewhere.
    `environment`: the account and region its function runs in (the cluster's, for EKS); None: wherever
    the deploy's credentials point (the stack is environment-agnostic)."""

    name: str
    kubeconfig_secret_arn: str | None = None
    kms_key_arn: str | None = None
    manage_access_entry: bool = True
    # Served from a host with the CLI and a kubeconfig, not by the Lambda (`make rbac HOST=1`): the
    # manifest then binds the service account whose token that kubeconfig holds.
    from_host: bool = False
    environment: Environment | None = None

    @property
    def label(self) -> str:
        """How `make rbac CLUSTER=...` names it: `<account>/<region>/<name>` in an environment of its own."""
        where = self.environment
        return f"{where.account}/{where.region}/{self.name}" if where else self.name

    @property
    def is_eks(self) -> bool:
        return self.kubeconfig_secret_arn is None

    @property
    def binds_service_account(self) -> bool:
        """Whether the manifest's identity is a service account (a kubeconfig) rather than the group an
        EKS access entry maps the function's role to."""
        return self.from_host or not self.is_eks

    @property
    def output_prefix(self) -> str:
        """`Cluster<name>` with only the letters and digits CloudFormation allows in an output's key: the
        stack's outputs keep these keys (`ClusterprodFunctionName`) instead of the CDK's hashed IDs."""
        return "Cluster" + re.sub(r"[^A-Za-z0-9]", "", self.name)


def _matching(pattern: re.Pattern[str], what: str) -> Callable[[str], str]:
    """A parser that takes `pattern`'s matches and refuses anything else as not `what`."""

    def parse(text: str) -> str:
        if not pattern.match(text):
            raise ValueError(f"{text!r} is not {what}")
        return text

    return parse


def _one_of(choices: Sequence[str]) -> Callable[[str], str]:
    def parse(text: str) -> str:
        if text not in choices:
            raise ValueError(f"{text!r} is not one of {', '.join(choices)}")
        return text

    return parse


def _retention(text: str) -> int:
    if not text.isdigit() or int(text) not in LOG_RETENTION_DAYS:
        raise ValueError(
            f"CloudWatch Logs keeps logs for one of {', '.join(map(str, LOG_RETENTION_DAYS))} days, not {text}"
        )
    return int(text)


@dataclass(frozen=True)
class DeploymentConfig:
    """Everything the stack needs; build with from_context. The deployment's own keys are declared on
    their fields, as the function's settings are on Settings' (lambda_fn/declaration.py)."""

    clusters: tuple[Cluster, ...]
    settings: Settings  # the refresher's settings, as the function will read them
    setting_environment: Mapping[str, str]  # those settings as the function's environment
    stack_name: str = setting(
        DEFAULT_STACK_NAME, context="stackName", parse=_matching(STACK_NAME, "a CloudFormation stack name")
    )
    schedule_minutes: int = setting(1, context="scheduleMinutes", kind=Kind.NUMBER, bounds=(1, 360))
    repositories: Mapping[str, tuple[str, ...]] = field(default_factory=dict)  # host or "" -> name prefixes
    subnet_ids: tuple[str, ...] = setting(
        (), context="vpcSubnetIds", kind=Kind.LIST, parse=_matching(SUBNET_ID, "an id like subnet-0123456789abcdef0")
    )
    security_group_ids: tuple[str, ...] = setting(
        (),
        context="vpcSecurityGroupIds",
        kind=Kind.LIST,
        parse=_matching(SECURITY_GROUP_ID, "an id like sg-0123456789abcdef0"),
    )
    alarm_email: str | None = setting(None, context="alarmEmail", parse=_matching(EMAIL, "an e-mail address"))
    alarm_topic_arn: str | None = setting(None, context="alarmTopicArn", parse=_matching(TOPIC_ARN, "an SNS topic ARN"))
    expiry_alarm_minutes: int = setting(120, context="expiryAlarmMinutes", kind=Kind.NUMBER, bounds=(10, 660))
    # Their defaults follow the stack's name (kubernetes_name): read by _ContextReader.
    kubernetes_group: str = "ecr-token-refresher"
    kubernetes_service_account: tuple[str, str] = ("kube-system", "ecr-token-refresher")
    admission_policy: bool = setting(True, context="admissionPolicy", kind=Kind.FLAG)
    run_on_deploy: bool = setting(True, context="runOnDeploy", kind=Kind.FLAG)
    reserved_concurrency: int | None = setting(None, context="reservedConcurrency", kind=Kind.NUMBER, bounds=(1, 1000))
    architecture: str = setting("arm64", context="architecture", parse=_one_of(ARCHITECTURES))
    memory_mb: int = setting(512, context="memorySize", kind=Kind.NUMBER, bounds=(256, 10240))
    timeout_seconds: int = setting(300, context="timeoutSeconds", kind=Kind.NUMBER, bounds=(30, 900))
    log_retention_days: int = setting(30, context="logRetentionDays", parse=_retention)
    # The environment this configuration's stack deploys to (for_environment); None: the deploy's own.
    deploys_to: Environment | None = None

    @property
    def lists_namespaces(self) -> bool:
        """Globs and selectors need `list namespaces` (and read state with a list by name); a tenant's
        selector is allowed only then (lambda_fn/config.py)."""
        return self.settings.targets.discovers

    @property
    def registries(self) -> tuple[RegistrySpec, ...]:
        """Every registry served, shared or a tenant's: the role pulls or assumes for each."""
        return self.settings.served_registries

    @property
    def environments(self) -> dict[Environment | None, tuple[Cluster, ...]]:
        """The clusters by the account and region their stack deploys to (None: the deploy's own)."""
        found: dict[Environment | None, list[Cluster]] = {}
        for cluster in self.clusters:
            found.setdefault(cluster.environment, []).append(cluster)
        return {environment: tuple(clusters) for environment, clusters in found.items()}

    def stack_name_for(self, environment: Environment | None) -> str:
        """`EcrTokenRefresher` for the deploy's own environment, `EcrTokenRefresher-<account>-<region>` for
        any other: unique per environment, and a stack's name never changes when another is added."""
        return f"{self.stack_name}-{environment.label}" if environment else self.stack_name

    def for_environment(self, environment: Environment | None) -> DeploymentConfig:
        """This configuration, with the clusters of one environment only (what its stack deploys)."""
        return replace(self, clusters=self.environments[environment], deploys_to=environment)

    @property
    def service_name(self) -> str:
        """The metrics' `service` dimension: the name of the stack this configuration deploys, so that no two
        stacks share a series (two environments' stacks may land in one account and region)."""
        return self.stack_name_for(self.deploys_to)

    @property
    def kubernetes_name(self) -> str:
        """The name of this deployment's cluster-wide objects (roles, bindings, admission policy):
        from the stack name, so two deployments in one cluster never overwrite each other's."""
        return kubernetes_name(self.stack_name)

    def environment(self, cluster: Cluster) -> dict[str, str]:
        """The function's whole environment for `cluster`."""
        environment = {
            **self.setting_environment,
            "CLUSTER_NAME": cluster.name,
            # The metrics' `service` dimension: the stack, so no two stacks share a series.
            "POWERTOOLS_SERVICE_NAME": self.service_name,
            "POWERTOOLS_METRICS_NAMESPACE": METRICS_NAMESPACE,
            # Scheduled runs that overlap take turns on this Lease (lambda_fn/lease.py), in the manifest.
            "RUN_LEASE": self.kubernetes_name,
        }
        if cluster.kubeconfig_secret_arn:
            environment["KUBECONFIG_SECRET"] = cluster.kubeconfig_secret_arn
        return environment

    @classmethod
    def from_context(cls, context: Mapping[str, Any]) -> DeploymentConfig:
        """Read and validate every context key; one ConfigError names every bad key."""
        reader = _ContextReader(context)
        reader.reject_unknown_keys()
        declared = {field: reader.declared(declaration) for field, declaration in DEPLOYMENT_KEYS.items()}
        clusters = reader.clusters()
        raw = {env: reader.setting(key) for key, env in SETTING_KEYS.items()}
        environment = {env: value for env, value in raw.items() if value is not None}
        settings = reader.settings(environment)
        stack_name = declared["stack_name"]
        config = cls(
            clusters=clusters,
            settings=settings,
            setting_environment=environment,
            repositories=reader.repositories(settings),
            kubernetes_group=reader.kubernetes_group(kubernetes_name(stack_name)),
            kubernetes_service_account=reader.service_account(kubernetes_name(stack_name)),
            **declared,
        )
        for key, message in [*_timing_problems(config), *_size_problems(config), *_environment_problems(config)]:
            reader.problem(key, message)
        reader.raise_problems()
        return config


def _timing_problems(config: DeploymentConfig) -> list[tuple[str, str]]:
    """The schedule, the refresh threshold and the watchdog's threshold must fit together."""
    found = []
    threshold = int(config.settings.refresh_threshold.total_seconds() // 60)
    if config.schedule_minutes + SCHEDULE_MARGIN_MINUTES > threshold:
        found.append(
            (
                "scheduleMinutes",
                f"a run every {config.schedule_minutes} min with refreshThresholdMinutes={threshold} could let a "
                f"token expire: keep scheduleMinutes + {SCHEDULE_MARGIN_MINUTES} <= refreshThresholdMinutes",
            )
        )
    # After every healthy run each secret has more than the refresh threshold left (those at or
    # under it were renewed), so the watchdog's threshold must sit below it, a schedule period and a
    # margin lower, or a correct `unchanged` steady state alarms every cycle.
    alarm_ceiling = threshold - config.schedule_minutes - SCHEDULE_MARGIN_MINUTES
    if config.expiry_alarm_minutes > alarm_ceiling:
        found.append(
            (
                "expiryAlarmMinutes",
                f"{config.expiry_alarm_minutes} would alarm in a healthy steady state: secrets are renewed when "
                f"refreshThresholdMinutes={threshold} remain; keep expiryAlarmMinutes <= refreshThresholdMinutes - "
                f"scheduleMinutes - {SCHEDULE_MARGIN_MINUTES} (here {alarm_ceiling}) or raise refreshThresholdMinutes",
            )
        )
    return found


def _size_problems(config: DeploymentConfig) -> list[tuple[str, str]]:
    """What Lambda and the run's RBAC can hold: the environment's size, a tenant's selector, the VPC pair,
    one alarm destination."""
    found = []
    for cluster in config.clusters:
        size = sum(len(key.encode()) + len(value.encode()) for key, value in config.environment(cluster).items())
        if size > ENVIRONMENT_BYTES:
            found.append(
                (
                    "namespaces",
                    f"the function's environment for cluster {cluster.name!r} would be {size} bytes; Lambda accepts "
                    f"{ENVIRONMENT_BYTES} in all: serve the namespaces with globs or a namespaceSelector rather than "
                    "a long list of names (or split them across stacks)",
                )
            )
    for tenant in config.settings.tenants:
        if tenant.namespace_selector and not config.settings.targets.discovers:
            # Namespaces are listed (and `list` granted) only for targets found by globs or a selector.
            found.append(
                (
                    "tenants",
                    f"tenant {tenant.name!r}: a namespaceSelector needs targets found by globs or a selector; name "
                    "its namespaces instead",
                )
            )
    if bool(config.subnet_ids) != bool(config.security_group_ids):
        found.append(("vpcSubnetIds", "set vpcSubnetIds and vpcSecurityGroupIds together (private endpoints)"))
    if config.alarm_email and config.alarm_topic_arn:
        found.append(
            (
                "alarmEmail",
                "give alarmEmail (a new topic with this subscription) or alarmTopicArn (your topic), not both",
            )
        )
    return found


def _environment_problems(config: DeploymentConfig) -> list[tuple[str, str]]:
    """What one stack per environment cannot share: subnets, a topic in another region, a stack name over
    CloudFormation's length."""
    found = []
    for where in config.environments:
        name = config.stack_name_for(where)
        if len(name) > MAX_STACK_NAME:
            found.append(
                (
                    "stackName",
                    f"the stack {name!r} would be longer than the {MAX_STACK_NAME} characters CloudFormation "
                    "accepts: shorten stackName",
                )
            )
    if config.subnet_ids and len(config.environments) > 1:
        found.append(
            (
                "vpcSubnetIds",
                "subnets belong to one account and region, and the clusters are in "
                f"{len(config.environments)}: run VPC mode with the clusters of one environment per configuration",
            )
        )
    topic = config.alarm_topic_arn.split(":") if config.alarm_topic_arn else None
    for where in config.environments:
        if topic and where and topic[3] != where.region:
            found.append(
                (
                    "alarmTopicArn",
                    f"the topic is in {topic[3]}; the alarms of the stack in {where.account}/{where.region} publish "
                    "to a topic in their own region: give alarmEmail (a topic per stack) instead",
                )
            )
    return found


SERVICE_ACCOUNTS_SUFFIX = "-serviceaccounts"
LEASE_SUFFIX = "-lease"  # the Role, binding and policy for the run's Lease


def kubernetes_name(stack_name: str) -> str:
    """`EcrTokenRefresher` -> `ecr-token-refresher`; any other stack `Prod` -> `ecr-token-refresher-prod`.

    Two stacks never get one name: a slug has one PascalCase stack name (`TeamA` for `team-a`); any other
    spelling of it (`Team-A`, `teamA`, `TEAMA`) gets a hash of the stack name, so two such stacks on one
    cluster never share a group, a service account or a policy."""
    slug = re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "-", stack_name).lower()
    name = slug if slug == "ecr-token-refresher" else f"ecr-token-refresher-{slug}"
    # The service accounts' policy is `<name>-serviceaccounts`: a stack named `ProdServiceaccounts` would
    # take stack `Prod`'s, so such a name gets the hash too (a hashed name ends in hex digits).
    pascal = stack_name == "".join(part.capitalize() for part in slug.split("-"))
    if pascal and len(name) <= 63 and not name.endswith((SERVICE_ACCOUNTS_SUFFIX, LEASE_SUFFIX)):
        return name
    digest = hashlib.sha256(stack_name.encode()).hexdigest()[:6]
    return f"{name[:56].rstrip('-')}-{digest}"


class _ContextReader:
    def __init__(self, context: Mapping[str, Any]) -> None:
        self._context = context
        self._problems: list[Problem] = []

    def _get(self, key: str) -> Any:
        """The value. JSON is read only for `clusters`, the one key whose entries may be objects: the CDK
        CLI passes every `-c key=value` as text (`-c 'clusters=[{"name": "onprem", ...}]'`); other lists
        are comma-separated there (a glob may start with `[` too: `namespaces=[a-c]*`)."""
        value = self._context.get(key)
        if not isinstance(value, str) or value.lstrip()[:1] not in ("[", "{"):
            return value
        try:
            parsed = json.loads(value)
        except json.JSONDecodeError:
            return value
        if key == "clusters" and isinstance(parsed, list) and all(isinstance(item, str | dict) for item in parsed):
            return parsed
        if key in JSON_KEYS:
            return value  # the function reads it as its environment variable's JSON
        if isinstance(parsed, list) and parsed and all(isinstance(item, str) for item in parsed):
            self.problem(
                key,
                "a JSON list given as text: on the command line a list is comma-separated (-c key=a,b); "
                "a JSON list belongs in cdk.json",
            )
            return None
        return value

    def problem(self, key: str, message: str) -> None:
        self._problems.append(Problem(key, message))

    def raise_problems(self) -> None:
        if self._problems:
            raise ConfigError(self._problems, source="CDK context")

    def reject_unknown_keys(self) -> None:
        for key in sorted(self._context):
            if key in KNOWN_KEYS or CDK_KEY.match(key):
                continue
            close = difflib.get_close_matches(key, sorted(KNOWN_KEYS), n=1, cutoff=0.6)
            hint = f"did you mean {close[0]}?" if close else "see the table in docs/configuration.md"
            self.problem(key, f"unknown context key; {hint}")

    def names(self, key: str) -> tuple[str, ...]:
        value = self._get(key)
        if value is None:
            return ()
        if isinstance(value, str):
            return split(value)
        if isinstance(value, Sequence) and all(isinstance(item, str) for item in value):
            return tuple(value)
        self.problem(key, "must be a list of strings or a comma-separated string")
        return ()

    def clusters(self) -> tuple[Cluster, ...]:
        """`clusters` (names, or objects with a kubeconfig secret) or `clusterName`; at least one."""
        entries = self._get("clusters")
        if entries is None or entries == "":
            entries = self.names("clusterName")
        elif isinstance(entries, str) and entries.lstrip().startswith(("[{", "{")):
            self.problem(
                "clusters",
                'not a JSON list of cluster names or objects: write e.g. [{"name":"onprem","kubeconfigSecretArn":'
                '"arn:..."}], with its quotes',
            )
            return ()
        elif isinstance(entries, str):
            entries = self.names("clusters")
        if not isinstance(entries, Sequence) or not entries:
            self.problem("clusterName", "required: pass -c clusterName=<EKS cluster name> (or a clusters list)")
            return ()
        external = set(self.names("existingAccessEntries"))
        clusters = [self._cluster(entry, external) for entry in entries]
        found = tuple(cluster for cluster in clusters if cluster is not None)
        labels = [cluster.label for cluster in found]
        for duplicate in sorted({label for label in labels if labels.count(label) > 1}):
            self.problem("clusters", f"{duplicate!r} is listed twice")
        by_prefix: dict[tuple[str, str], set[str]] = {}
        for cluster in found:  # one stack per environment: its output keys must differ
            where = cluster.environment.label if cluster.environment else ""
            by_prefix.setdefault((where, cluster.output_prefix), set()).add(cluster.name)
        for (_, prefix), clash in sorted(by_prefix.items()):
            if len(clash) > 1:
                shared = " and ".join(map(repr, sorted(clash)))
                self.problem("clusters", f"{shared} would share the stack's output keys {prefix}...: rename one")
        eks = {name for cluster in found if cluster.is_eks for name in (cluster.name, cluster.label)}
        for unknown in sorted(external - eks):
            self.problem("existingAccessEntries", f"{unknown!r} is not one of the EKS clusters listed")
        return found

    def _cluster(self, entry: Any, external: set[str]) -> Cluster | None:
        if isinstance(entry, str):
            entry = {"name": entry}
        if not isinstance(entry, Mapping) or set(entry) - set(CLUSTER_KEYS):
            self.problem(
                "clusters",
                "each entry is a cluster name or {name[, account, region][, kubeconfigSecretArn[, kmsKeyArn]]} "
                "(nothing else)",
            )
            return None
        name, secret, key = entry.get("name"), entry.get("kubeconfigSecretArn"), entry.get("kmsKeyArn")
        environment, valid = self._environment(entry)
        if not isinstance(name, str) or not CLUSTER_NAME.match(name):
            self.problem("clusters", f"{name!r} is not a valid cluster name (letters, digits, '-' and '_')")
            valid = False
        if secret is not None and not (isinstance(secret, str) and SECRET_ARN.match(secret)):
            self.problem("clusters", f"kubeconfigSecretArn {shown(str(secret))} is not a Secrets Manager secret ARN")
            valid = False
        if key is not None and (secret is None or not (isinstance(key, str) and KMS_KEY_ARN.match(key))):
            self.problem("clusters", f"kmsKeyArn {shown(str(key))} must be a KMS key ARN, beside a kubeconfigSecretArn")
            valid = False
        if valid and environment and secret and SECRET_ARN.match(secret):
            _, _, _, region, account, *_ = secret.split(":")
            if (account, region) != (environment.account, environment.region):
                self.problem(
                    "clusters",
                    f"{name!r}: its kubeconfig secret is in {account}/{region}, its function in "
                    f"{environment.account}/{environment.region}: keep the secret beside the function",
                )
                valid = False
        if not valid:
            return None
        cluster = Cluster(str(name), secret, key, manage_access_entry=secret is None, environment=environment)
        # By name (every environment's cluster of that name), or by label where a name repeats.
        return replace(
            cluster, manage_access_entry=cluster.manage_access_entry and not {name, cluster.label} & external
        )

    def _environment(self, entry: Mapping[str, Any]) -> tuple[Environment | None, bool]:
        """The entry's account and region (None: the deploy's), and whether they are valid (else reported)."""
        account, region = entry.get("account"), entry.get("region")
        if account is None and region is None:
            return None, True
        where = f"{entry.get('name')!r}"
        if account is None or region is None:
            self.problem("clusters", f"{where}: give account and region together (or neither: the deploy's)")
        elif not (isinstance(account, str) and ACCOUNT_ID.match(account)):
            self.problem("clusters", f"{where}: account {account!r} is not a 12-digit AWS account ID")
        elif not (isinstance(region, str) and REGION.match(region)):
            self.problem("clusters", f"{where}: region {region!r} is not an AWS region such as eu-west-1")
        else:
            return Environment(account, region), True
        return None, False

    def setting(self, key: str) -> str | None:
        """A context value as the environment variable's text."""
        value = self._get(key)
        if value is None:
            return None
        if key in JSON_KEYS and not isinstance(value, str):
            return json.dumps(value, separators=(",", ":"))  # a list of objects, as in cdk.json
        if isinstance(value, bool):
            return "true" if value else "false"
        if isinstance(value, int | str):
            return str(value)
        return ",".join(self.names(key))

    def settings(self, environment: dict[str, str]) -> Settings:
        """The function's settings, checked by the function's own rules, named as context keys."""
        try:
            return Settings.from_env(
                {**environment, "AWS_REGION": "us-east-1"}, require_cluster=False, names=CONTEXT_NAMES
            )
        except ConfigError as exc:
            self._problems += exc.problems
            return Settings(region="us-east-1")

    def repositories(self, settings: Settings) -> dict[str, tuple[str, ...]]:
        """`[<registry host>/]<repository prefix>` entries; without a host: the function's own registry."""
        hosts = {spec.host for spec in settings.served_registries if spec.role_arn is None}
        found: dict[str, list[str]] = {}
        for entry in self.names("repositories"):
            host, _, prefix = entry.partition("/") if ".dkr.ecr." in entry.partition("/")[0] else ("", "", entry)
            if host and host not in hosts:
                self.problem(
                    "repositories",
                    f"{entry!r}: {host} is not among the registries pulled with the function's own role "
                    "(registries without =roleArn)",
                )
            elif not REPOSITORY_PREFIX.match(prefix):
                self.problem("repositories", f"{entry!r}: use [<registry host>/]<repository name prefix>, e.g. team-a/")
            else:
                found.setdefault(host, []).append(prefix)
        if "" in found and not settings.include_own_registry:
            self.problem("repositories", "prefixes without a host are for the function's own registry, which is off")
        return {host: tuple(prefixes) for host, prefixes in found.items()}

    def declared(self, declared: Declared) -> Any:
        """A deployment key as its declaration reads it (the default when absent; reported when wrong)."""
        key = str(declared.context)
        value = self._get(key)
        if isinstance(value, list) and declared.kind is not Kind.LIST:
            # setting() would join a list into text: `"memorySize": ["512"]` is a slip, not 512.
            self.problem(key, f"{value!r} is a list; give one value")
            return declared.default
        text = self.setting(key)
        if text is None or text == "":
            return declared.default
        try:
            return declared.read(text)
        except ValueError as exc:
            self._problems += [Problem(key, fault) for fault in exc.args]
            return declared.default

    def matching(self, key: str, pattern: re.Pattern[str], what: str) -> str | None:
        value = self._get(key)
        if value is None or value == "":
            return None
        if not isinstance(value, str) or not pattern.match(value):
            self.problem(key, f"{value!r} is not {what}")
            return None
        return value

    def kubernetes_group(self, default: str) -> str:
        group = self.matching("kubernetesGroup", KUBERNETES_GROUP, "a Kubernetes group name (letters, digits, :._-)")
        if group and group.startswith("system:"):
            self.problem(
                "kubernetesGroup", f"{group!r} starts with system:, which Kubernetes reserves; use e.g. {default}"
            )
        return group or default

    def service_account(self, default: str) -> tuple[str, str]:
        """`kube-system/<default>` unless given: named by the stack, like the group, so that two stacks
        serving one cluster never share an identity, nor delete each other's with `kubectl delete -f`."""
        account = self.matching("kubernetesServiceAccount", SERVICE_ACCOUNT, "<namespace>/<name> of a service account")
        namespace, _, name = (account or f"kube-system/{default}").partition("/")
        # Whoever may impersonate service accounts in its namespace acts as the function cluster-wide
        # (`impersonate` on serviceaccounts is in the built-in edit and admin roles): a tenant's namespace
        # would hand every tenant admin the other teams' pull secrets.
        if account and namespace != "kube-system":
            self.problem(
                "kubernetesServiceAccount",
                f"{account!r} is outside kube-system: the admins of {namespace!r} could impersonate it and act as the "
                f"function in every target namespace; use kube-system/{name}",
            )
        return namespace, name


# The deployment's own keys, declared on DeploymentConfig's fields, by field.
DEPLOYMENT_KEYS = {declared.field: declared for declared in declarations(DeploymentConfig)}
# Every context key the app reads: the function's settings, the deployment's, and those read by hand (the
# clusters, and what defaults to or depends on other keys).
KNOWN_KEYS = frozenset(
    {
        *SETTING_KEYS,
        *(str(declared.context) for declared in DEPLOYMENT_KEYS.values()),
        "clusterName",
        "clusters",
        "existingAccessEntries",
        "repositories",
        "kubernetesGroup",
        "kubernetesServiceAccount",
    }
)
