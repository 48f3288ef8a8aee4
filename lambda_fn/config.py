"""Settings: read from the environment in one place, typed, validated, every problem reported at once.

The handler, the manual event and the CLI all end in one `Settings`; each reports problems under its
own names (`NAMESPACES`, `namespaces`, `--namespace`) through a name map.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from lambda_fn.declaration import Declared, Kind, declarations, names, setting
from lambda_fn.errors import ConfigError, Problem, shown
from lambda_fn.models import TargetSpec, is_glob

DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
# fnmatch's `*`, `?` and classes of letters, digits and ranges (`[a-f0-9]`, `[!ab]`), nothing looser: a
# class fnmatch would read otherwise (`[!]`, `[]a]`, a reversed or empty range) could never be rendered
# into the admission policy's RE2 regex (infra/admission.py) with the same meaning.
GLOB_CLASS = re.compile(r"\[!?((?:[a-z0-9](?:-[a-z0-9])?)+)\]")
NAMESPACE_GLOB = re.compile(rf"^(?:[a-z0-9*?-]|{GLOB_CLASS.pattern})+$")
ECR_HOST = re.compile(
    r"^(?P<account>\d{12})\.dkr\.ecr(-fips)?\.(?P<region>[a-z]{2}(-[a-z]+)+-\d)\.amazonaws\.com(?P<china>\.cn)?$"
)
ROLE_ARN = re.compile(r"^arn:aws(-cn|-us-gov)?:iam::\d{12}:role/[\w+=,.@/-]{1,512}$")
REGION = re.compile(r"^[a-z]{2}(-[a-z]+)+-\d$")
# Region-name prefixes of the partitions other than `aws`, as botocore's endpoints.json regionRegex
# gives them: written here because the core never imports botocore; tests/unit/test_config.py holds the
# table to botocore's data for every region it knows.
PARTITIONS = [
    ("cn-", "aws-cn"),
    ("us-gov-", "aws-us-gov"),
    ("us-isob-", "aws-iso-b"),
    ("us-isof-", "aws-iso-f"),
    ("us-iso-", "aws-iso"),
    ("eu-isoe-", "aws-iso-e"),
]
CLUSTER_NAME = re.compile(r"^[0-9A-Za-z][A-Za-z0-9_-]{0,99}$")
LABEL_NAME = r"[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?"
LABEL_KEY = rf"([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?{LABEL_NAME}"
# One requirement of a label selector, as kube-apiserver's parser reads it (k8s.io/apimachinery labels):
# `k`, `!k`, `k=v`, `k==v`, `k!=v`, `k in (a,b)`, `k notin (a)`, `k>5`, `k<5`. One difference on purpose:
# kube-apiserver reads `k in ()` as "k has the empty value"; an empty set is refused here as a likely slip.
REQUIREMENTS = [
    re.compile(rf"^(?P<operator>!?)\s*(?P<key>{LABEL_KEY})$"),
    re.compile(rf"^(?P<key>{LABEL_KEY})\s*(?P<operator>==|=|!=)\s*(?P<values>({LABEL_NAME})?)$"),
    re.compile(rf"^(?P<key>{LABEL_KEY})\s*(?P<operator>[<>])\s*(?P<values>[0-9]{{1,63}})$"),
    re.compile(
        rf"^(?P<key>{LABEL_KEY})\s+(?P<operator>in|notin)\s*"
        rf"\((?P<values>\s*(,\s*)*{LABEL_NAME}(\s*,\s*({LABEL_NAME})?)*\s*)\)$"
    ),
]
MAX_NAMESPACE_PATTERNS = 1000
INT64_MAX = 2**63 - 1
TOKEN_LIFETIME = timedelta(hours=12)
CLUSTER_REQUIRED = "required: set it to the EKS cluster's name (or set KUBECONFIG_SECRET for any other cluster)"
# A Secrets Manager secret's ARN or name.
SECRET_ID = re.compile(r"^(arn:aws[a-z-]*:secretsmanager:[a-z0-9-]+:\d{12}:secret:)?[\w/+=.@-]{1,512}$")
CONTEXT_NAME = re.compile(r"^[^\s]{1,253}$")


def partition(region: str) -> str:
    """The AWS partition of a region, by its name (a registry's host suffix depends on it)."""
    return next((name for prefix, name in PARTITIONS if region.startswith(prefix)), "aws")


@dataclass(frozen=True)
class RegistrySpec:
    """An ECR registry host to serve, and the role to assume for its token (None: the caller's own)."""

    host: str
    account: str
    region: str
    role_arn: str | None = None

    @classmethod
    def parse(cls, text: str) -> RegistrySpec:
        """`<acct>.dkr.ecr.<region>.amazonaws.com[=<role arn>]`; raises ValueError with the fix."""
        host, _, role = text.strip().partition("=")
        match = ECR_HOST.match(host.strip())
        if not match:
            raise ValueError(f"{shown(host)} is not an ECR registry host; use <account>.dkr.ecr.<region>.amazonaws.com")
        china = partition(match["region"]) == "aws-cn"
        if bool(match["china"]) != china:
            suffix = "amazonaws.com.cn" if china else "amazonaws.com"
            raise ValueError(f"{shown(host)} cannot exist: a registry in {match['region']} ends in .{suffix}")
        role = role.strip()
        if role and not ROLE_ARN.match(role):
            raise ValueError(f"{shown(role)} is not an IAM role ARN; use arn:aws:iam::<account>:role/<name>")
        return cls(host=host.strip(), account=match["account"], region=match["region"], role_arn=role or None)


TENANT_KEYS = ("name", "namespaces", "namespaceSelector", "registries")
TENANT_SHAPE = (
    'a JSON list of {"name": ..., "namespaces": [names or globs], "namespaceSelector": ..., '
    '"registries": ["<host>[=<role arn>]"]} (namespaces or namespaceSelector or both)'
)


@dataclass(frozen=True)
class Tenant:
    """Registries only some target namespaces receive: a team's own. A target namespace that a tenant's
    names, globs or selector match gets the tenant's registries beside the shared ones; no other does."""

    name: str
    namespaces: tuple[str, ...] = ()
    namespace_selector: str | None = None
    registries: tuple[RegistrySpec, ...] = ()

    @property
    def scope(self) -> TargetSpec:
        return TargetSpec(self.namespaces, self.namespace_selector)

    @property
    def hosts(self) -> frozenset[str]:
        return frozenset(spec.host for spec in self.registries)

    @classmethod
    def parse_all(cls, document: Any) -> tuple[Tenant, ...]:
        """The tenants of a JSON document (see TENANT_SHAPE); ValueError with one message per fault."""
        if not isinstance(document, list) or not all(isinstance(entry, dict) for entry in document):
            raise ValueError(f"must be {TENANT_SHAPE}")
        tenants, faults = [], []
        for number, entry in enumerate(document, 1):
            name = entry.get("name")
            where = f"tenant {name!r}" if isinstance(name, str) and name else f"tenant #{number}"
            unknown = sorted(set(entry) - set(TENANT_KEYS))
            patterns, selector, registries = (entry.get(k) for k in TENANT_KEYS[1:])
            if not isinstance(name, str) or not DNS_LABEL.match(name):
                faults.append(f"{where}: give it a name of lowercase letters, digits and '-'")
            if unknown:
                faults.append(f"{where}: unknown key {', '.join(unknown)}; a tenant has {', '.join(TENANT_KEYS)}")
            if not _strings(patterns) or (selector is not None and not isinstance(selector, str)):
                faults.append(f"{where}: namespaces is a list of names or globs, namespaceSelector a label selector")
            elif not patterns and not selector:
                faults.append(f"{where}: give namespaces or a namespaceSelector (or both)")
            if not _strings(registries) or not registries:
                faults.append(f"{where}: registries is a non-empty list of <host>[=<role arn>]")
                continue
            specs = []
            for text in registries:
                try:
                    specs.append(RegistrySpec.parse(text))
                except ValueError as exc:
                    faults.append(f"{where}: {exc}")
            tenants.append(cls(str(name), tuple(patterns or ()), selector or None, tuple(specs)))
        if faults:
            raise ValueError(*faults)
        return tuple(tenants)


def _strings(value: Any) -> bool:
    return value is None or (isinstance(value, list) and all(isinstance(item, str) for item in value))


@dataclass(frozen=True)
class Settings:
    """Everything one run needs to know; build with `from_env`, change with `replace`. Each setting is
    declared on its field (lambda_fn/declaration.py): its names, how its text reads, bounds, help."""

    region: str = setting(
        env="AWS_REGION", flag="--region", help="AWS region (default: AWS_REGION or the AWS profile's)"
    )
    cluster_name: str | None = setting(
        None,
        env="CLUSTER_NAME",
        context="clusterName",
        per_cluster=True,
        flag="--cluster",
        event="cluster_name",
        help="EKS cluster name",
    )
    secret_name: str = setting(
        "regcred",
        env="SECRET_NAME",
        context="secretName",
        flag="--secret-name",
        event="secret_name",
        help="the secret written in each namespace",
    )
    namespaces: tuple[str, ...] = setting(
        ("default",),
        env="NAMESPACES",
        kind=Kind.NAMES,
        context="namespaces",
        flag="--namespace",
        event="namespaces",
        metavar="NAME_OR_GLOB",
        help="a namespace or glob",
    )
    namespace_selector: str | None = setting(
        None,
        env="NAMESPACE_SELECTOR",
        context="namespaceSelector",
        flag="--selector",
        event="selector",
        help="namespace label selector, e.g. team=a",
    )
    exclude_namespaces: tuple[str, ...] = setting(
        (),
        env="EXCLUDE_NAMESPACES",
        kind=Kind.NAMES,
        context="excludeNamespaces",
        flag="--exclude",
        event="exclude_namespaces",
        metavar="NAME_OR_GLOB",
        help="a namespace or glob left out of glob and selector matches",
    )
    registries: tuple[RegistrySpec, ...] = setting(
        (),
        env="REGISTRIES",
        kind=Kind.LIST,
        parse=RegistrySpec.parse,
        context="registries",
        flag="--registry",
        metavar="HOST[=ROLE_ARN]",
        help="an extra registry, beside those of REGISTRIES",
    )
    tenants: tuple[Tenant, ...] = setting(
        (),
        env="TENANTS",
        kind=Kind.JSON,
        parse=Tenant.parse_all,
        context="tenants",
        flag="--tenants",
        metavar="JSON",
        help="registries only some namespaces receive (docs/configuration.md#tenants)",
    )
    include_own_registry: bool = setting(
        True,
        env="INCLUDE_OWN_REGISTRY",
        kind=Kind.FLAG,
        context="includeOwnRegistry",
        help="serve the function's own account and region",
    )
    service_accounts: tuple[str, ...] = setting(
        (),
        env="SERVICE_ACCOUNTS",
        kind=Kind.NAMES,
        context="serviceAccounts",
        flag="--service-account",
        event="service_accounts",
        metavar="NAME",
        help="a service account to add the secret to",
    )
    refresh_threshold: timedelta = setting(
        timedelta(hours=6),
        env="REFRESH_THRESHOLD_MINUTES",
        kind=Kind.NUMBER,
        unit=timedelta(minutes=1),
        bounds=(0, 690),
        context="refreshThresholdMinutes",
        help="rewrite a secret when its token has less than this left (tokens live 12 hours)",
    )
    max_concurrency: int = setting(
        16,
        env="MAX_CONCURRENCY",
        kind=Kind.NUMBER,
        bounds=(1, 64),
        context="maxConcurrency",
        flag="--concurrency",
        help="parallel writes",
    )
    deadline_margin: timedelta = setting(
        timedelta(seconds=10),
        env="DEADLINE_MARGIN_SECONDS",
        kind=Kind.NUMBER,
        unit=timedelta(seconds=1),
        bounds=(0, 300),
        help="stop starting namespaces when the Lambda has less left",
    )
    dry_run: bool = setting(
        False,
        env="DRY_RUN",
        kind=Kind.FLAG,
        flag="--dry-run",
        event="dry_run",
        help="report what would change, write nothing",
    )
    # Rewrite even fresh secrets (a manual run after a rotation); never set from the environment.
    force: bool = setting(
        False, kind=Kind.FLAG, flag="--force", event="force", help="rewrite secrets even when still fresh"
    )
    # Renew and label the kubectl recipe's same-named secrets (only ECR hosts this configuration serves).
    adopt_existing: bool = setting(
        True,
        env="ADOPT_EXISTING",
        kind=Kind.FLAG,
        context="adoptExisting",
        help="adopt the kubectl recipe's same-named secrets",
    )
    # A manual event's choice among the configured targets (it may narrow them, never widen them).
    narrowing: TargetSpec | None = None
    # Any cluster, not only EKS: a Secrets Manager secret holding a kubeconfig, and its context.
    kubeconfig_secret: str | None = setting(
        None,
        env="KUBECONFIG_SECRET",
        context="clusters",
        per_cluster=True,
        flag="--kubeconfig-secret",
        metavar="ARN_OR_NAME",
        help="a kubeconfig held in Secrets Manager",
    )
    kubeconfig_context: str | None = setting(
        None, env="KUBECONFIG_CONTEXT", flag="--context", help="the kubeconfig's context (default: its current context)"
    )
    # The name of the Lease in kube-system that this deployment's runs hold while writing, so that
    # overlapping runs take turns (lambda_fn/lease.py); None: no coordination.
    run_lease: str | None = setting(None, env="RUN_LEASE", help="the Lease this deployment's runs take turns on")

    @classmethod
    def from_env(
        cls,
        environ: Mapping[str, str],
        *,
        require_cluster: bool,
        names: Mapping[str, str] | None = None,
        source: str = "environment",
    ) -> Settings:
        """Parse the environment; raise one ConfigError naming every bad setting as `names` call it
        (the variables by default; the CDK app passes its context keys)."""
        names = ENV_NAMES if names is None else names
        values: dict[str, Any] = {}
        problems, unread = [], set()
        for declared in DECLARED:
            raw = environ.get(declared.env or "", "").strip()
            if declared.field == "region":
                raw = raw or environ.get("AWS_DEFAULT_REGION", "").strip()
            if not raw:
                continue
            try:
                values[declared.field] = declared.read(raw)
            except ValueError as exc:  # its default stands in; the field is reported once, here
                problems += [Problem(names.get(declared.field, declared.env or ""), fault) for fault in exc.args]
                unread.add(declared.field)
        if not values.get("namespaces"):
            # With neither names nor a selector, serve the `default` namespace.
            values.pop("namespaces", None)
            if values.get("namespace_selector"):
                values["namespaces"] = ()
        settings = cls(**{"region": "", **values})
        problems += settings.problems(names, unread=unread)
        if require_cluster and not settings.cluster_name and not settings.kubeconfig_secret:
            problems.append(Problem(names.get("cluster_name", "CLUSTER_NAME"), CLUSTER_REQUIRED))
        if problems:
            raise ConfigError(problems, source=source)
        return settings

    def replace(self, names: Mapping[str, str], *, source: str, **changes: object) -> Settings:
        """A copy with `changes`, validated; problems are reported under `names` (e.g. CLI flags)."""
        updated = dataclasses.replace(self, **changes)  # type: ignore[arg-type]
        problems = updated.problems(names)
        if problems:
            raise ConfigError(problems, source=source)
        return updated

    @property
    def served_registries(self) -> tuple[RegistrySpec, ...]:
        """The shared registries, then each tenant's, every host once (a token is fetched for each)."""
        served: dict[str, RegistrySpec] = {}
        for spec in (*self.registries, *(spec for tenant in self.tenants for spec in tenant.registries)):
            served.setdefault(spec.host, spec)
        return tuple(served.values())

    @property
    def targets(self) -> TargetSpec:
        return TargetSpec(self.namespaces, self.namespace_selector, self.exclude_namespaces)

    def problems(self, names: Mapping[str, str], *, unread: Collection[str] = ()) -> list[Problem]:
        """Every invalid field, named as the caller's source names it; none about the fields in `unread`
        (their text could not be read, which is reported already; their default stands in)."""
        found: list[tuple[str, str]] = []
        if not REGION.match(self.region):
            found.append(("region", "required: an AWS region such as eu-west-1"))
        if self.cluster_name is not None and not CLUSTER_NAME.match(self.cluster_name):
            found.append(("cluster_name", f"{self.cluster_name!r} is not a valid EKS cluster name"))
        found += self._kubeconfig_problems(names)
        if not _is_subdomain(self.secret_name):
            found.append(("secret_name", _subdomain_fix(self.secret_name)))
        if self.run_lease is not None and not _is_subdomain(self.run_lease):
            found.append(("run_lease", _subdomain_fix(self.run_lease)))
        if not self.namespaces and not self.namespace_selector:
            found.append(("namespaces", "name at least one namespace or glob, or set a selector"))
        if len(self.namespaces) > MAX_NAMESPACE_PATTERNS:
            found.append(("namespaces", f"at most {MAX_NAMESPACE_PATTERNS} entries; use globs or a selector"))
        found += [("namespaces", fix) for fix in map(_namespace_pattern_fix, self.namespaces) if fix]
        found += [("exclude_namespaces", fix) for fix in map(_namespace_pattern_fix, self.exclude_namespaces) if fix]
        if self.namespace_selector is not None and not is_valid_selector(self.namespace_selector):
            found.append(("namespace_selector", _selector_fix(self.namespace_selector)))
        found += [("service_accounts", _subdomain_fix(sa)) for sa in self.service_accounts if not _is_subdomain(sa)]
        if self.narrowing is not None:
            # Named as the targeting it narrows (a manual event's `namespaces`, `selector`, ...).
            found += [("namespaces", fix) for fix in map(_namespace_pattern_fix, self.narrowing.patterns) if fix]
            found += [
                ("exclude_namespaces", fix) for fix in map(_namespace_pattern_fix, self.narrowing.exclusions) if fix
            ]
            if self.narrowing.selector is not None and not is_valid_selector(self.narrowing.selector):
                found.append(("namespace_selector", _selector_fix(self.narrowing.selector)))
        found += [("tenants", fix) for fix in self._tenant_problems()]
        if not self.registries and not self.include_own_registry and not self.tenants:
            found.append(
                (
                    "registries",
                    f"no registry to serve: list hosts, or set {names.get('include_own_registry', 'it')} to true",
                )
            )
        found += [
            (declared.field, fix)
            for declared in DECLARED
            if (fix := declared.out_of_bounds(getattr(self, declared.field)))
        ]
        return [Problem(names.get(field, field), message) for field, message in found if field not in unread]

    def _tenant_problems(self) -> list[str]:
        """A tenant's registries must reach its namespaces only. An ECR token is the principal's, valid for
        every registry it may pull in its region, so a tenant's password must come from a role of its own:
        one without a role is the function's own token (every namespace holds it), and a role another
        tenant or a shared registry uses puts the same password in their namespaces too."""
        found = []
        shared = {spec.host for spec in self.registries}
        shared_roles = {spec.role_arn for spec in self.registries}
        tenants_of: dict[str, set[str]] = {}  # role or host → the tenants pulling with it, or listing it
        names = [tenant.name for tenant in self.tenants]
        found += [f"tenant {name!r} is listed twice" for name in sorted(set(names)) if names.count(name) > 1]
        for tenant in self.tenants:
            where = f"tenant {tenant.name!r}"
            found += [f"{where}: {fix}" for fix in map(_namespace_pattern_fix, tenant.namespaces) if fix]
            if tenant.namespace_selector is not None and not is_valid_selector(tenant.namespace_selector):
                found.append(f"{where}: {_selector_fix(tenant.namespace_selector)}")
            found += [
                f"{where}: {host} is in registries too, which every namespace receives: list it in one place"
                for host in sorted(tenant.hosts & shared)
            ]
            for spec in tenant.registries:
                if spec.role_arn is None:
                    found.append(
                        f"{where}: {spec.host} needs a role of its own ({spec.host}=<role arn>): without one its "
                        "password is the function's own token, which every namespace holds"
                    )
                elif spec.role_arn in shared_roles:
                    found.append(f"{where}: {spec.role_arn} pulls a shared registry too: give the tenant its own role")
                else:
                    tenants_of.setdefault(spec.role_arn, set()).add(tenant.name)
                tenants_of.setdefault(spec.host, set()).add(tenant.name)
        found += [
            f"{key} is listed by tenants {', '.join(sorted(tenants))}: each tenant's password must be its own (a "
            "role and its registries per tenant); share a registry through registries instead"
            for key, tenants in sorted(tenants_of.items())
            if len(tenants) > 1
        ]
        return found

    def _kubeconfig_problems(self, names: Mapping[str, str]) -> list[tuple[str, str]]:
        found = []
        if self.kubeconfig_secret is not None and not SECRET_ID.match(self.kubeconfig_secret):
            found.append(
                (
                    "kubeconfig_secret",
                    f"{shown(self.kubeconfig_secret)} is not a Secrets Manager secret's ARN or name: give the "
                    "secret's ARN, not the kubeconfig itself",
                )
            )
        if self.kubeconfig_context is not None and not CONTEXT_NAME.match(self.kubeconfig_context):
            found.append(("kubeconfig_context", f"{shown(self.kubeconfig_context)} is not a kubeconfig context name"))
        if self.kubeconfig_context is not None and self.kubeconfig_secret is None:
            secret = names.get("kubeconfig_secret", "kubeconfig_secret")
            found.append(("kubeconfig_context", f"only goes with a kubeconfig secret: set {secret} too"))
        return found


@dataclass(frozen=True)
class Requirement:
    """One requirement of a label selector: `operator` is "" (exists), "!", "=", "!=", "in", "notin",
    "<" or ">" ("==" reads as "=")."""

    key: str
    operator: str
    values: tuple[str, ...] = ()


def parse_selector(selector: str) -> tuple[Requirement, ...] | None:
    """A label selector's requirements, or None if it is not one (the API server does the matching)."""
    requirements = []
    for clause in _split_outside_parentheses(selector):
        match = next(filter(None, (pattern.match(clause.strip()) for pattern in REQUIREMENTS)), None)
        if match is None:
            return None
        found = match.groupdict()
        values = tuple(value.strip() for value in found.get("values", "").split(",")) if "values" in found else ()
        if found["operator"] in ("<", ">") and int(values[0]) > INT64_MAX:
            return None  # kube-apiserver parses the value as an int64
        requirements.append(Requirement(found["key"], found["operator"].replace("==", "="), values))
    return tuple(requirements)


def is_valid_selector(selector: str) -> bool:
    return parse_selector(selector) is not None


def _split_outside_parentheses(text: str) -> list[str]:
    clauses, depth, start = [], 0, 0
    for index, char in enumerate(text):
        depth += {"(": 1, ")": -1}.get(char, 0)
        if char == "," and depth == 0:
            clauses.append(text[start:index])
            start = index + 1
    clauses.append(text[start:])
    return clauses


def _selector_fix(selector: str) -> str:
    return f"{selector!r} is not a label selector; use e.g. team=a,env in (dev,prod)"


def _is_subdomain(name: str) -> bool:
    return len(name) <= 253 and bool(DNS_SUBDOMAIN.match(name))


def _subdomain_fix(name: str) -> str:
    return f"{name!r} is not a valid Kubernetes name; use lowercase letters, digits, '-' and '.'"


def _namespace_pattern_fix(pattern: str) -> str | None:
    """None when `pattern` is a valid namespace name (RFC 1123 label) or glob; else the fix."""
    if is_glob(pattern):
        ranges = [r for inside in GLOB_CLASS.findall(pattern) for r in re.findall(r"(.)-(.)", inside)]
        if len(pattern) <= 63 and NAMESPACE_GLOB.match(pattern) and all(low <= high for low, high in ranges):
            return None
        return (
            f"{pattern!r} is not a namespace glob; use lowercase letters, digits, '-', '*', '?' and classes of "
            "letters, digits and ascending ranges such as [a-f0-9] or [!ab]"
        )
    if len(pattern) <= 63 and DNS_LABEL.match(pattern):
        return None
    return f"{pattern!r} is not a namespace name; use at most 63 lowercase letters, digits and '-'"


# The declarations, read from the fields once (from_env and problems() go through them on every call).
DECLARED: tuple[Declared, ...] = declarations(Settings)
# Each setting's name in the environment, for error messages (and the tests' clean environment).
ENV_NAMES = names(Settings, "env")
