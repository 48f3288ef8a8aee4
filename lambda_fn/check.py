"""`check`: the read-only preflight, a sibling of `refresh` on the same settings, clusters and adapters.

Every prerequisite gets one finding, ok or failed (unknown when it cannot be told), and every failed
one the exact fix. Nothing is written: tokens are fetched and validated, not stored; permissions are
asked with SelfSubjectAccessReview, which any authenticated user may create and which changes nothing.
"""

from __future__ import annotations

import base64
import ipaddress
import re
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

import boto3

from lambda_fn.aws import (
    AccessEntryMissing,
    ConfigSource,
    EcrTokenSource,
    EksClusterFacts,
    access_entry_groups,
    caller_arn,
    deadline_configs,
    describe_eks_cluster,
    function_vpc,
)
from lambda_fn.config import Settings
from lambda_fn.credentials import FetchedCredentials, scope_credentials, token_scopes
from lambda_fn.decisions import Action, RefreshPlan, Registries, decide, desired_secret, recorded_expiry
from lambda_fn.errors import (
    AlreadyExists,
    ClusterLookupError,
    ConfigError,
    Conflict,
    CredentialError,
    Forbidden,
    Invalid,
    KubernetesError,
    NamespaceTerminating,
    NotFound,
    Unauthorized,
    explain,
)
from lambda_fn.k8s import KubernetesCluster, connect
from lambda_fn.models import (
    DOCKERCONFIGJSON_KEY,
    DOCKERCONFIGJSON_TYPE,
    LEASE_GROUP,
    LEASE_NAMESPACE,
    MANAGED_BY_LABEL,
    MANAGED_BY_VALUE,
    NAME_RULE,
    Outcome,
    SecretState,
)
from lambda_fn.runner import Cluster, EksCluster, KubeconfigSecretCluster, connection_for, request_budget, utc_now
from lambda_fn.targets import Target, narrow_targets, resolve_targets

ADMISSION_POLICY = re.compile(r"ValidatingAdmissionPolicy '([^']+)'")
PROBE_SECRET = "ecr-token-refresher-probe"  # noqa: S105 - a Kubernetes object name
# RBAC's wording for a refusal; any other 403 comes from admission (a policy with reason Forbidden, a
# webhook, a quota) and is a refusal of the write itself.
RBAC_DENIAL = re.compile(r'cannot [a-z]+ resource "secrets"')
# The shipped policy's name rule, as kube-apiserver words the denial (the secret's name may be cut off by
# the 300 characters an error keeps).
SHIPPED_RULE = "denied request: " + NAME_RULE.format("")
POLICY_FIX = (
    "as the function: apply the rendered manifest on Kubernetes 1.30 or later (it holds the policy; "
    "admissionPolicy=false leaves it out)"
)
EMPTY_DOCKERCONFIG = base64.b64encode(b'{"auths":{}}').decode()
RBAC_FIX = 'apply the manifest this configuration renders: `make apply CONTEXT="..."` (cdk.out/rbac.yaml after a synth)'
SHOWN = 10  # namespaces named in a finding; the rest are counted


class Status(StrEnum):
    OK = "ok"
    FAILED = "failed"
    UNKNOWN = "unknown"


@dataclass(frozen=True)
class Finding:
    name: str
    status: Status
    detail: str
    fix: str = ""

    def to_dict(self) -> dict[str, str]:
        return {"check": self.name, "status": self.status.value, "detail": self.detail} | (
            {"fix": self.fix} if self.fix else {}
        )


@dataclass(frozen=True)
class NamespaceState:
    """A target namespace and its secret as it stands: missing, managed, adoptable, foreign, ..."""

    namespace: str
    state: str
    detail: str = ""


@dataclass
class CheckReport:
    cluster: str
    findings: list[Finding] = field(default_factory=list)
    namespaces: list[NamespaceState] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(finding.status is not Status.FAILED for finding in self.findings)

    def add(self, name: str, status: Status, detail: str, fix: str = "") -> None:
        self.findings.append(Finding(name, status, detail, fix))

    def to_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "cluster": self.cluster,
            "checks": [finding.to_dict() for finding in self.findings],
            "namespaces": [{"namespace": n.namespace, "state": n.state, "detail": n.detail} for n in self.namespaces],
        }


def run_check(
    settings: Settings,
    cluster: Cluster,
    *,
    session: boto3.Session | None = None,
    remaining_seconds: Callable[[], float | None] = lambda: None,
    function_name: str | None = None,
) -> CheckReport:
    """Every prerequisite of `refresh` for this configuration, in the order a run meets them.
    `function_name`: the Lambda running it, whose own network decides whether a private endpoint is
    reachable (None from a laptop)."""
    session = session or boto3.Session(region_name=settings.region)
    name = cluster.secret_id if isinstance(cluster, KubeconfigSecretCluster) else getattr(cluster, "name", None)
    preflight = _Preflight(
        CheckReport(name or "kubeconfig"),
        session,
        settings,
        deadline_configs(request_budget(remaining_seconds)),
        function_name,
    )
    arn = preflight.aws_identity()
    credentials = preflight.registry_tokens(identified=arn is not None)
    if isinstance(cluster, EksCluster):
        preflight.eks_cluster(cluster.name, arn)
    report = preflight.report
    try:
        connection = connection_for(cluster, session, settings, aws_configs=preflight.aws_configs)
    except (ClusterLookupError, ConfigError, CredentialError) as exc:
        report.add("cluster", Status.FAILED, str(exc))
        return report
    report.cluster = connection.name
    report.add("cluster", Status.OK, connection.description)
    with connect(connection, time_left=request_budget(remaining_seconds)) as api:
        if preflight.kubernetes_identity(api):
            targets = preflight.targets(api)
            preflight.permissions(api, targets)
            preflight.lease(api)
            absent = preflight.admission(api, targets)
            preflight.secrets(api, targets, credentials, absent)
    return report


@dataclass
class _Preflight:
    report: CheckReport
    session: boto3.Session
    settings: Settings
    aws_configs: ConfigSource  # botocore Configs, with timeouts that fit the run
    function_name: str | None = None  # the Lambda this runs in; None from a laptop

    def aws_identity(self) -> str | None:
        try:
            arn = caller_arn(self.session, configs=self.aws_configs)
        except CredentialError as exc:
            self.report.add(
                "AWS identity",
                Status.FAILED,
                str(exc),
                "give the function its execution role (the stack does)"
                if self.function_name
                else "give this shell AWS credentials: AWS_PROFILE, `aws sso login`, an instance role or IAM Roles "
                "Anywhere",
            )
            return None
        self.report.add("AWS identity", Status.OK, arn)
        return arn

    def registry_tokens(self, *, identified: bool) -> FetchedCredentials:
        """Each (region, role) token fetched and validated, not written, and the extra registries whose
        token failed (judged below as refresh judges them); `identified`: whether AWS accepted the
        credentials at all (if not, that is the fix for every token)."""
        source, found = EcrTokenSource(self.session, configs=self.aws_configs), FetchedCredentials([])
        for scope, hosts in token_scopes(self.settings).items():
            name = f"ECR token, {scope.region}" + (f", as {scope.role_arn}" if scope.role_arn else "")
            try:
                credentials = scope_credentials(source, scope, hosts, now=utc_now())
            except CredentialError as exc:
                if not identified:
                    fix = "no token without AWS credentials: fix the AWS identity above first"
                elif scope.role_arn:
                    fix = "let this role assume it: the registry role's trust policy must name this role"
                else:
                    fix = "the role needs ecr:GetAuthorizationToken (the stack grants it)"
                self.report.add(name, Status.FAILED, str(exc), fix)
                found.unavailable.update({host: str(exc) for host in hosts if host is not None})
                continue
            expiry = min(c.expires_at for c in credentials).isoformat(timespec="minutes")
            self.report.add(name, Status.OK, f"valid until {expiry}; serves {', '.join(c.host for c in credentials)}")
            found.credentials.extend(credentials)
        return found

    def eks_cluster(self, name: str, arn: str | None) -> None:
        report = self.report
        try:
            facts = describe_eks_cluster(
                self.session, cluster_name=name, region=self.settings.region, configs=self.aws_configs
            )
        except ClusterLookupError as exc:
            report.add("EKS cluster", Status.FAILED, str(exc))
            return
        active = facts.status == "ACTIVE"
        report.add(
            "EKS cluster",
            Status.OK if active else Status.FAILED,
            f"{name} is {facts.status} at {facts.endpoint or 'no endpoint yet'}",
            "" if active else "wait until the cluster is ACTIVE",
        )
        access_entries = facts.authentication_mode in ("API", "API_AND_CONFIG_MAP")
        report.add(
            "EKS authentication mode",
            Status.OK if access_entries else Status.FAILED,
            f"{facts.authentication_mode}: access entries {'work' if access_entries else 'are ignored'}",
            ""
            if access_entries
            else f"aws eks update-cluster-config --name {name} --access-config authenticationMode=API_AND_CONFIG_MAP "
            "(one way: it cannot be switched back)",
        )
        self.endpoint(facts)
        if arn is not None:
            self.access_entry(name, arn)

    def endpoint(self, facts: EksClusterFacts) -> None:
        """Whether the endpoint is open to the function: a public one to all, else judged against the VPC
        the function runs in (its own configuration, in the Lambda; from a laptop it cannot be told)."""
        name = "EKS endpoint"
        open_to_all = any(ipaddress.ip_network(cidr, strict=False).prefixlen == 0 for cidr in facts.public_access_cidrs)
        if facts.public_endpoint and open_to_all:
            self.report.add(name, Status.OK, "public")
            return
        cidrs = ", ".join(facts.public_access_cidrs)
        access = "private only" if not facts.public_endpoint else f"public, open to {cidrs} only"
        in_vpc_fix = "deploy with vpcSubnetIds and vpcSecurityGroupIds in the cluster's VPC (docs/deploy.md: VPC mode)"
        nat_fix = "a NAT gateway whose address publicAccessCidrs allows"
        fix = in_vpc_fix if not facts.public_endpoint else f"{in_vpc_fix}, with private access on or {nat_fix}"
        if self.function_name is None:
            self.report.add(
                name,
                Status.UNKNOWN,
                f"{access}: the function must reach it from the cluster's VPC ({facts.vpc_id or 'unknown'})"
                + ("" if not facts.public_endpoint else f" or through {nat_fix}")
                + '; run `check` in the Lambda ({"check": true}) to have it judged',
                fix,
            )
            return
        try:
            vpc = function_vpc(
                self.session, function_name=self.function_name, region=self.settings.region, configs=self.aws_configs
            )
        except ClusterLookupError as exc:
            self.report.add(name, Status.UNKNOWN, f"{access}; {exc}", "in VPC mode, give the subnets a Lambda endpoint")
            return
        if vpc is None:
            detail = f"{access}, and the function runs outside any VPC, with no fixed address: it cannot reach it"
            self.report.add(name, Status.FAILED, detail, fix)
        elif vpc == facts.vpc_id and facts.private_endpoint:
            detail = f"{access}; the function runs in the cluster's VPC ({vpc}) and reaches the private endpoint"
            self.report.add(name, Status.OK, detail + ": the cluster's security group must allow 443 from it")
        elif vpc == facts.vpc_id:
            detail = f"{access}, private access off; the function runs in the cluster's VPC ({vpc})"
            self.report.add(name, Status.UNKNOWN, f"{detail}: it reaches the endpoint only through {nat_fix}", fix)
        else:
            detail = f"{access}; the function runs in {vpc}, the cluster in {facts.vpc_id or 'an unknown VPC'}"
            self.report.add(
                name, Status.UNKNOWN, f"{detail}: reachable only through peering, a transit gateway or {nat_fix}", fix
            )

    def access_entry(self, name: str, arn: str) -> None:
        try:
            groups = access_entry_groups(
                self.session,
                cluster_name=name,
                principal_arn=arn,
                region=self.settings.region,
                configs=self.aws_configs,
            )
        except AccessEntryMissing as exc:
            self.report.add(
                "EKS access entry",
                Status.FAILED,
                str(exc),
                "deploy the stack (it creates the entry); where entries are managed elsewhere (existingAccessEntries): "
                f"aws eks create-access-entry --cluster-name {name} --principal-arn {arn} --kubernetes-groups <group>",
            )
            return
        except ClusterLookupError as exc:
            self.report.add("EKS access entry", Status.UNKNOWN, f"{exc}; the Kubernetes authentication below tells")
            return
        self.report.add("EKS access entry", Status.OK, f"{arn} -> groups {', '.join(groups) or 'none'}")

    def kubernetes_identity(self, api: KubernetesCluster) -> bool:
        try:
            user, groups = api.whoami()
        except Unauthorized as exc:
            self.report.add("Kubernetes authentication", Status.FAILED, str(exc), explain(exc).removeprefix(f"{exc}: "))
            return False
        except KubernetesError as exc:
            self.report.add(
                "Kubernetes API",
                Status.FAILED,
                str(exc),
                "is the endpoint reachable from where this runs (a private endpoint needs the function in its VPC)?",
            )
            return False
        self.report.add("Kubernetes authentication", Status.OK, f"as {user} (groups {', '.join(groups) or 'none'})")
        return True

    def targets(self, api: KubernetesCluster) -> list[Target]:
        try:
            targets = resolve_targets(api, self.settings.targets)
            if self.settings.narrowing is not None:
                targets = narrow_targets(api, targets, self.settings.narrowing)
        except KubernetesError as exc:
            self.report.add("target namespaces", Status.FAILED, f"could not list namespaces: {exc}", RBAC_FIX)
            return [Target(name, named=True) for name in sorted(set(self.settings.targets.names))]
        names = [target.name for target in targets]
        self.report.add("target namespaces", Status.OK, f"{len(names)}: {_shown(names)}" if names else "none match")
        return targets

    def permissions(self, api: KubernetesCluster, targets: Sequence[Target]) -> None:
        """Each permission the configuration needs: cluster-wide if so granted, else in each target namespace."""
        namespaces = [target.name for target in targets if not target.terminating]
        secret = self.settings.secret_name
        needed: list[tuple[str, str, str | None, bool]] = []  # verb, resource, name, asked per namespace
        if self.settings.targets.discovers:
            needed += [("list", "namespaces", None, False), ("list", "secrets", secret, False)]
        needed += [("get", "secrets", secret, True), ("create", "secrets", None, True)]
        needed += [("update", "secrets", secret, True)]
        for account in self.settings.service_accounts:
            if self.settings.targets.discovers:
                needed += [("list", "serviceaccounts", account, False)]
            needed += [("get", "serviceaccounts", account, True), ("patch", "serviceaccounts", account, True)]
        if not self.settings.targets.discovers:
            self._no_wider_grant(api, secret)
        with ThreadPoolExecutor(max_workers=self.settings.max_concurrency) as pool:
            for verb, resource, name, per_namespace in needed:
                self._permission(
                    api, pool, namespaces, verb=verb, resource=resource, name=name, per_namespace=per_namespace
                )

    def _no_wider_grant(self, api: KubernetesCluster, secret: str) -> None:
        """Names only need a Role per namespace: a grant on the secret in every namespace is left over
        from an earlier configuration (globs, a selector) and lets a stolen token read it everywhere."""
        label = "grants no wider than the configuration"
        try:
            wider = api.may("get", "secrets", name=secret)
            # Any other secret too: an administrator's identity (check run from a laptop), not the manifest's.
            anything = wider and api.may("get", "secrets", name=PROBE_SECRET)
        except KubernetesError as exc:
            self.report.add(label, Status.UNKNOWN, f"could not ask: {exc}")
            return
        if anything:
            self.report.add(
                label,
                Status.UNKNOWN,
                "this identity may read every secret (an administrator?): run check as the function to judge it",
            )
        elif wider:
            self.report.add(
                label,
                Status.FAILED,
                f"this identity may read {secret!r} in every namespace, though only named namespaces are configured",
                'remove what this configuration no longer renders: `make apply CONTEXT="..."`',
            )
        else:
            self.report.add(label, Status.OK, "only in the named namespaces")

    def _permission(
        self,
        api: KubernetesCluster,
        pool: ThreadPoolExecutor,
        namespaces: Sequence[str],
        *,
        verb: str,
        resource: str,
        name: str | None,
        per_namespace: bool,
    ) -> None:
        label = f"may {verb} {resource}" + (f" {name!r}" if name else "")
        try:
            if api.may(verb, resource, name=name):
                self.report.add(label, Status.OK, "cluster-wide")
                return
            if not per_namespace:
                self.report.add(label, Status.FAILED, "not granted cluster-wide", RBAC_FIX)
                return
            allowed = list(pool.map(lambda ns: api.may(verb, resource, namespace=ns, name=name), namespaces))
        except KubernetesError as exc:
            self.report.add(label, Status.FAILED, f"could not ask: {exc}")
            return
        missing = [ns for ns, ok in zip(namespaces, allowed, strict=True) if not ok]
        if missing:
            self.report.add(label, Status.FAILED, f"not granted in {_shown(missing)}", RBAC_FIX)
        else:
            self.report.add(label, Status.OK, f"in all {len(namespaces)} target namespaces")

    def lease(self, api: KubernetesCluster) -> None:
        """The run's Lease, when runs take turns on one: it must exist (the manifest creates it; the
        identity may not) and be this identity's to update, or every run fails."""
        name = self.settings.run_lease
        if name is None:
            return
        label = f"the run's Lease {LEASE_NAMESPACE}/{name}"
        try:
            found = api.read_lease(LEASE_NAMESPACE, name)
            updatable = api.may("update", "leases", namespace=LEASE_NAMESPACE, name=name, group=LEASE_GROUP)
        except KubernetesError as exc:
            self.report.add(label, Status.FAILED, f"could not read it: {exc}", RBAC_FIX)
            return
        if found is None:
            self.report.add(label, Status.FAILED, "does not exist, and this identity may not create it", RBAC_FIX)
        elif not updatable:
            self.report.add(label, Status.FAILED, "this identity may not update it", RBAC_FIX)
        else:
            held = f"held by {found.holder}" if found.holder else "free"
            self.report.add(label, Status.OK, f"{held}; overlapping runs take turns on it")

    def admission(self, api: KubernetesCluster, targets: Sequence[Target]) -> set[str]:
        """Whether the shipped admission policy confines this identity, and admits its secret in every
        target namespace. Dry-run creates: judged by RBAC and admission, never stored. Returns the
        target namespaces the API server says do not exist."""
        namespaces = [target.name for target in targets if not target.terminating]
        if not namespaces:
            return set()
        self._confinement(api, namespaces[0])
        return self._admitted(api, namespaces)

    def _confinement(self, api: KubernetesCluster, namespace: str) -> None:
        """A secret under another name: the shipped policy refuses it with its own rule."""
        name = "admission policy"
        try:
            api.dry_run_create(self._secret(PROBE_SECRET, namespace))
        except (Invalid, Forbidden) as exc:
            if isinstance(exc, Forbidden) and RBAC_DENIAL.search(str(exc)):
                return  # RBAC refused the create: reported above
            policy = ADMISSION_POLICY.search(str(exc))
            if policy and SHIPPED_RULE in str(exc):
                detail = f"{policy[1]!r} confines this identity (a dry-run create of {PROBE_SECRET!r} was refused)"
                self.report.add(name, Status.OK, detail)
            else:
                detail = f"the probe was refused, but not by the shipped policy's rule ({SHIPPED_RULE!r}): {exc}"
                self.report.add(name, Status.UNKNOWN, detail, POLICY_FIX)
            return
        except KubernetesError as exc:
            self.report.add(name, Status.UNKNOWN, f"could not probe: {exc}")
            return
        self.report.add(
            name,
            Status.UNKNOWN,
            f"none confines this identity: a dry-run create of a secret named {PROBE_SECRET!r} in {namespace} "
            "was allowed, so its token could create any secret wherever it may create one",
            POLICY_FIX + ". From your own kubeconfig this is expected: the policy binds only the function's identity",
        )

    def _admitted(self, api: KubernetesCluster, namespaces: Sequence[str]) -> set[str]:
        """The secret itself, in each target namespace: a stale policy (rendered before a namespace,
        glob or selector was added), another policy or a webhook refuses it there, and every run would fail
        in those namespaces."""
        name = f"admission of {self.settings.secret_name!r}"
        secret = self.settings.secret_name
        with ThreadPoolExecutor(max_workers=self.settings.max_concurrency) as pool:
            found = pool.map(lambda ns: _admission(api, self._secret(secret, ns)), namespaces)
            answers = dict(zip(namespaces, found, strict=True))
        refused = {ns: answer for ns, answer in answers.items() if answer not in (ADMITTED, UNASKED, ABSENT)}
        unasked = [ns for ns, answer in answers.items() if answer in (UNASKED, ABSENT)]
        if refused:
            self.report.add(
                name,
                Status.FAILED,
                f"refused in {_shown(refused)}; first: {next(iter(refused.values()))}",
                "re-apply the manifest rendered for this configuration (its admission policy names the target "
                'namespaces): `make apply CONTEXT="..."`; a refusal by another policy or a '
                "webhook is for its owner to lift",
            )
        elif unasked:
            self.report.add(
                name,
                Status.UNKNOWN,
                f"admitted in {len(namespaces) - len(unasked)} of {len(namespaces)}; not asked in {_shown(unasked)} "
                "(RBAC refused the create, or the namespace does not exist: see above)",
            )
        else:
            self.report.add(name, Status.OK, f"a dry-run create is admitted in all {len(namespaces)} target namespaces")
        return {ns for ns, answer in answers.items() if answer == ABSENT}

    @staticmethod
    def _secret(name: str, namespace: str) -> SecretState:
        return SecretState(
            name=name,
            namespace=namespace,
            type=DOCKERCONFIGJSON_TYPE,
            labels={MANAGED_BY_LABEL: MANAGED_BY_VALUE},
            data={DOCKERCONFIGJSON_KEY: EMPTY_DOCKERCONFIG},
        )

    def secrets(
        self,
        api: KubernetesCluster,
        targets: Sequence[Target],
        fetched: FetchedCredentials,
        absent: set[str],
    ) -> None:
        """Each target namespace's secret as it stands, judged by the same decision `refresh` makes."""
        plan = RefreshPlan.from_settings(self.settings)
        registries = Registries(tuple(fetched.credentials), fetched.unavailable)
        listed: dict[str, SecretState] | None = None
        if plan.targets.discovers:
            try:
                listed = {s.namespace: s for s in api.list_secret_metadata(plan.secret_name)}
            except KubernetesError:
                listed = None  # reported above as a missing permission: read them one by one instead

        def state_of(target: Target) -> NamespaceState:
            if target.terminating:
                return NamespaceState(target.name, "terminating", "skipped: the namespace is being deleted")
            if target.name in absent:
                return NamespaceState(target.name, "absent", "no such namespace: every run fails here")
            try:
                state = (
                    listed.get(target.name) if listed is not None else api.read_secret(target.name, plan.secret_name)
                )
                return _judged(target.name, state, api, plan, registries, now=utc_now())
            except KubernetesError as exc:
                return NamespaceState(target.name, "unreadable", str(exc))

        with ThreadPoolExecutor(max_workers=self.settings.max_concurrency) as pool:
            self.report.namespaces = list(pool.map(state_of, targets))
        # Namespaces in these states fail `check`: every run would fail there, or leave them without a token.
        failing = {
            "absent": (
                "named namespaces exist",
                "{count} namespace(s) named in the configuration do not exist ({shown}): every run fails there",
                "create them, or remove them from the configured namespaces",
            ),
            "refused": (
                "adoption",
                "admission refuses adopting the kubectl recipe's secret in {shown}: every run would fail there",
                "render the manifest with the deploy's AWS credentials (so that it knows the function's own "
                'registry) and the current registries, and re-apply it: `make apply CONTEXT="..."`',
            ),
            "suspect": (
                "secrets written by others",
                "{count} managed secret(s) were changed by another writer since this tool's last write ({shown}): "
                "pulls there may fail until the next run rewrites them",
                "find the writer in the secret's managedFields (`kubectl get secret -o yaml --show-managed-fields`) "
                "and stop it; the next run repairs the secret",
            ),
            "foreign": (
                "foreign secrets",
                f"{{count}} namespace(s) hold a {plan.secret_name!r} secret this tool does not manage ({{shown}}): "
                "refresh skips them, and pods there get no fresh token from it",
                "rename or delete those secrets, or deploy with another secretName",
            ),
        }
        for state, (name, detail, fix) in failing.items():
            found = [n.namespace for n in self.report.namespaces if n.state == state]
            if found:
                self.report.add(name, Status.FAILED, detail.format(count=len(found), shown=_shown(found)), fix)


def _judged(
    namespace: str,
    state: SecretState | None,
    api: KubernetesCluster,
    plan: RefreshPlan,
    registries: Registries,
    *,
    now: datetime,
) -> NamespaceState:
    if state is None:
        return NamespaceState(namespace, "missing", "created on the next run")
    if not registries.credentials:  # no token to judge freshness with: what the annotations say
        expiry = recorded_expiry(state)
        return NamespaceState(namespace, "managed" if expiry else "unknown", f"expires {expiry}" if expiry else "")
    verdict = decide(state, registries, plan, now=now)
    if verdict.action is Action.READ:
        state = api.read_secret(namespace, plan.secret_name)
        verdict = decide(state, registries, plan, now=now)
    expiry = recorded_expiry(state)
    until = f"expires {expiry.isoformat(timespec='minutes')}" if expiry else ""
    described = {
        Action.CREATE: ("missing", "created on the next run"),
        Action.UPDATE: ("managed", f"{until}; renewed on the next run"),
        Action.ADOPT: ("adoptable", "the kubectl recipe's secret: adopted on the next run"),
    }
    if verdict.action is Action.ADOPT:
        # The policy admits adoptions for the hosts the manifest was rendered with: a manifest rendered
        # without the function's own registry, or before a registry was added, refuses this update.
        desired = desired_secret(state, registries, namespace=namespace, secret_name=plan.secret_name, now=now)
        answer = _admission(api, desired)
        if answer not in (ADMITTED, UNASKED):
            return NamespaceState(
                namespace, "refused", f"the kubectl recipe's secret; admission refuses adopting it: {answer}"
            )
    if verdict.outcome is Outcome.REPAIRED:
        return NamespaceState(namespace, "suspect", f"{verdict.reason}; rewritten on the next run")
    if verdict.action in described:
        return NamespaceState(namespace, *described[verdict.action])
    if verdict.foreign:
        return NamespaceState(namespace, "foreign", "skipped: " + verdict.reason)
    if verdict.kept:
        return NamespaceState(namespace, "managed", f"{until}; {verdict.reason}")
    if verdict.outcome is not None and verdict.outcome.value == "failed":
        return NamespaceState(namespace, "broken", verdict.reason)
    return NamespaceState(namespace, "managed", f"{until}; fresh")


def _shown(names: Iterable[str]) -> str:
    listed = list(names)
    return ", ".join(listed[:SHOWN]) + (f" (+{len(listed) - SHOWN} more)" if len(listed) > SHOWN else "")


ADMITTED, UNASKED, ABSENT = "admitted", "unasked", "absent"


def _admission(api: KubernetesCluster, secret: SecretState) -> str:
    """ADMITTED, UNASKED (RBAC decided), ABSENT (no such namespace), or the refusal: a dry-run create,
    or for a secret that exists already (409: validating admission runs before the existence check) a
    dry-run replace of it as an update would write it."""
    try:
        if secret.resource_version:
            api.dry_run_replace(secret)
        else:
            api.dry_run_create(secret)
    except (AlreadyExists, Conflict):
        return ADMITTED
    except NotFound:
        return ABSENT
    except NamespaceTerminating:
        return UNASKED
    except Forbidden as exc:
        return UNASKED if RBAC_DENIAL.search(str(exc)) else str(exc)
    except KubernetesError as exc:
        return str(exc)
    return ADMITTED
