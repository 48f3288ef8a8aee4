"""A local EKS cluster: LocalKube authenticating `k8s-aws-v1.` tokens through moto's STS."""

from __future__ import annotations

from collections.abc import Sequence

from localkube import ADMIN, EksTokenAuthenticator, LocalKube, Rule, StsIdentityResolver
from localkube.eks_auth import AccessEntry
from sandbox.moto_aws import ROLE_ARN, AwsCredentials, MotoAws

CLUSTER_NAME = "demo"
KUBERNETES_GROUP = "ecr-token-refresher"


def refresher_rules(*, list_namespaces: bool = True, service_accounts: bool = False) -> tuple[Rule, ...]:
    """What the refresher's RBAC grants (infra/rbac.py renders the real one): secrets, namespaces, SAs."""
    rules = [Rule.of("get,list,create,update,patch", "secrets"), Rule.of("get,create,update", "leases")]
    if list_namespaces:
        rules.append(Rule.of("list", "namespaces"))
    if service_accounts:
        rules.append(Rule.of("get,list,patch", "serviceaccounts"))
    return tuple(rules)


def local_eks_cluster(
    aws: MotoAws,
    credentials: AwsCredentials,
    *,
    rules: Sequence[Rule] | None = None,
    access_entry: bool = True,
    cluster_name: str = CLUSTER_NAME,
    latency: float = 0.0,
) -> LocalKube:
    """Started LocalKube registered in moto as EKS cluster `cluster_name`.

    The function's role maps (access entry) to KUBERNETES_GROUP, which is granted `rules`.
    """
    authenticator = EksTokenAuthenticator(
        cluster_name=cluster_name,
        resolve_arn=StsIdentityResolver(aws.url),
        access_entries={ROLE_ARN: AccessEntry("ecr-token-refresher", (KUBERNETES_GROUP,))} if access_entry else {},
        secret_keys={credentials.access_key_id: credentials.secret_access_key},
    )
    kube = LocalKube(
        users=(ADMIN,),
        group_rules={KUBERNETES_GROUP: tuple(refresher_rules(service_accounts=True) if rules is None else rules)},
        eks=authenticator,
        latency=latency,
    ).start()
    aws.create_eks_cluster(cluster_name, endpoint=kube.url, ca_pem=kube.ca_pem)
    return kube
