"""The AWS side of `check`: the identity, the registry tokens, and (for EKS) the cluster, its endpoint
as the function would reach it, and the access entry."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

import boto3

from lambda_fn.aws import (
    AccessEntryMissing,
    ConfigSource,
    EcrTokenSource,
    EksClusterFacts,
    access_entry_groups,
    caller_arn,
    describe_eks_cluster,
    function_vpc,
)
from lambda_fn.check.report import Finding, Status
from lambda_fn.config import Settings
from lambda_fn.credentials import FetchedCredentials, scope_credentials, token_scopes
from lambda_fn.errors import ClusterLookupError, CredentialError
from lambda_fn.runner import utc_now


@dataclass(frozen=True)
class AwsAccess:
    """How the AWS checks reach AWS."""

    session: boto3.Session
    region: str
    configs: ConfigSource  # botocore Configs, with timeouts that fit the run
    function_name: str | None = None  # the Lambda this runs in; None from a laptop


def aws_identity(aws: AwsAccess) -> tuple[str | None, Finding]:
    """The caller's ARN (None when AWS refuses the credentials), and its finding."""
    try:
        arn = caller_arn(aws.session, configs=aws.configs)
    except CredentialError as exc:
        fix = (
            "give the function its execution role (the stack does)"
            if aws.function_name
            else "give this shell AWS credentials: AWS_PROFILE, `aws sso login`, an instance role or IAM Roles Anywhere"
        )
        return None, Finding("AWS identity", Status.FAILED, str(exc), fix)
    return arn, Finding("AWS identity", Status.OK, f"{arn} in {aws.region}")


def registry_tokens(
    aws: AwsAccess, settings: Settings, *, identified: bool
) -> tuple[FetchedCredentials, list[Finding]]:
    """Each (region, role) token fetched and validated, not written, and the extra registries whose
    token failed (judged as refresh judges them); `identified`: whether AWS accepted the credentials at
    all (if not, that is the fix for every token)."""
    source, found, findings = EcrTokenSource(aws.session, configs=aws.configs), FetchedCredentials([]), []
    for scope, hosts in token_scopes(settings).items():
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
            findings.append(Finding(name, Status.FAILED, str(exc), fix))
            found.unavailable.update({host: str(exc) for host in hosts if host is not None})
            continue
        expiry = min(c.expires_at for c in credentials).isoformat(timespec="minutes")
        serves = ", ".join(c.host for c in credentials)
        findings.append(Finding(name, Status.OK, f"valid until {expiry}; serves {serves}"))
        found.credentials.extend(credentials)
    return found, findings


def eks_cluster(aws: AwsAccess, name: str, arn: str | None) -> list[Finding]:
    """The cluster, its authentication mode, its endpoint and (when the caller is known) its access entry."""
    try:
        facts = describe_eks_cluster(aws.session, cluster_name=name, region=aws.region, configs=aws.configs)
    except ClusterLookupError as exc:
        return [Finding("EKS cluster", Status.FAILED, str(exc))]
    active = facts.status == "ACTIVE"
    access_entries = facts.authentication_mode in ("API", "API_AND_CONFIG_MAP")
    findings = [
        Finding(
            "EKS cluster",
            Status.OK if active else Status.FAILED,
            f"{name} is {facts.status} at {facts.endpoint or 'no endpoint yet'}",
            "" if active else "wait until the cluster is ACTIVE",
        ),
        Finding(
            "EKS authentication mode",
            Status.OK if access_entries else Status.FAILED,
            f"{facts.authentication_mode}: access entries {'work' if access_entries else 'are ignored'}",
            ""
            if access_entries
            else f"aws eks update-cluster-config --name {name} --access-config authenticationMode=API_AND_CONFIG_MAP "
            "(one way: it cannot be switched back)",
        ),
        endpoint(aws, facts),
    ]
    if arn is not None:
        findings.append(access_entry(aws, name, arn))
    return findings


def endpoint(aws: AwsAccess, facts: EksClusterFacts) -> Finding:
    """Whether the endpoint is open to the function: a public one to all, else judged against the VPC
    the function runs in (its own configuration, in the Lambda; from a laptop it cannot be told)."""
    name = "EKS endpoint"
    open_to_all = any(ipaddress.ip_network(cidr, strict=False).prefixlen == 0 for cidr in facts.public_access_cidrs)
    if facts.public_endpoint and open_to_all:
        return Finding(name, Status.OK, "public")
    cidrs = ", ".join(facts.public_access_cidrs)
    access = "private only" if not facts.public_endpoint else f"public, open to {cidrs} only"
    in_vpc_fix = "deploy with vpcSubnetIds and vpcSecurityGroupIds in the cluster's VPC (docs/deploy.md: VPC mode)"
    nat_fix = "a NAT gateway whose address publicAccessCidrs allows"
    fix = in_vpc_fix if not facts.public_endpoint else f"{in_vpc_fix}, with private access on or {nat_fix}"
    if aws.function_name is None:
        return Finding(
            name,
            Status.UNKNOWN,
            f"{access}: the function must reach it from the cluster's VPC ({facts.vpc_id or 'unknown'})"
            + ("" if not facts.public_endpoint else f" or through {nat_fix}")
            + '; run `check` in the Lambda ({"check": true}) to have it judged',
            fix,
        )
    try:
        vpc = function_vpc(aws.session, function_name=aws.function_name, region=aws.region, configs=aws.configs)
    except ClusterLookupError as exc:
        return Finding(name, Status.UNKNOWN, f"{access}; {exc}", "in VPC mode, give the subnets a Lambda endpoint")
    if vpc is None:
        detail = f"{access}, and the function runs outside any VPC, with no fixed address: it cannot reach it"
        return Finding(name, Status.FAILED, detail, fix)
    if vpc == facts.vpc_id and facts.private_endpoint:
        detail = f"{access}; the function runs in the cluster's VPC ({vpc}) and reaches the private endpoint"
        return Finding(name, Status.OK, detail + ": the cluster's security group must allow 443 from it")
    if vpc == facts.vpc_id:
        detail = f"{access}, private access off; the function runs in the cluster's VPC ({vpc})"
        return Finding(name, Status.UNKNOWN, f"{detail}: it reaches the endpoint only through {nat_fix}", fix)
    detail = f"{access}; the function runs in {vpc}, the cluster in {facts.vpc_id or 'an unknown VPC'}"
    return Finding(
        name, Status.UNKNOWN, f"{detail}: reachable only through peering, a transit gateway or {nat_fix}", fix
    )


def access_entry(aws: AwsAccess, name: str, arn: str) -> Finding:
    try:
        groups = access_entry_groups(
            aws.session, cluster_name=name, principal_arn=arn, region=aws.region, configs=aws.configs
        )
    except AccessEntryMissing as exc:
        return Finding(
            "EKS access entry",
            Status.FAILED,
            str(exc),
            "deploy the stack (it creates the entry); where entries are managed elsewhere (existingAccessEntries): "
            f"aws eks create-access-entry --cluster-name {name} --principal-arn {arn} --kubernetes-groups <group>",
        )
    except ClusterLookupError as exc:
        return Finding("EKS access entry", Status.UNKNOWN, f"{exc}; the Kubernetes authentication below tells")
    return Finding("EKS access entry", Status.OK, f"{arn} -> groups {', '.join(groups) or 'none'}")
