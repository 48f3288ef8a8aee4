"""The function's IAM role for one cluster: what it calls at run time, on its own resources only.

Kept beside nothing else, so that tests/infra/test_iam_sufficiency.py can evaluate the synthesized
policy against every call the function and the Lambda platform make for it.
"""

from __future__ import annotations

from aws_cdk import Aws, Stack, Token
from aws_cdk import aws_iam as iam
from aws_cdk import aws_logs as logs
from constructs import Construct

from infra.config import Cluster, DeploymentConfig
from infra.nag import acknowledge

ECR_PULL_ACTIONS = ["ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer", "ecr:BatchCheckLayerAvailability"]
# What Lambda calls, as the function's role, to attach the function to the VPC's subnets: the
# network-interface actions of AWSLambdaVPCAccessExecutionRole, without its logs:* on every group.
VPC_ACTIONS = [
    "ec2:CreateNetworkInterface",
    "ec2:DescribeNetworkInterfaces",
    "ec2:DescribeSubnets",
    "ec2:DeleteNetworkInterface",
    "ec2:AssignPrivateIpAddresses",
    "ec2:UnassignPrivateIpAddresses",
]


class RefresherRole(Construct):
    """`role`: assumed by Lambda; its policy grants exactly what this cluster's runs need."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: DeploymentConfig,
        cluster: Cluster,
        log_group: logs.ILogGroup,
    ) -> None:
        super().__init__(scope, construct_id)
        self.role = iam.Role(
            self,
            "Role",
            assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
            description=f"ecr-token-refresher for cluster {cluster.name}: ECR tokens, its cluster, its own logs",
        )
        # Its own log group only: Lambda writes the function's output (and the EMF metrics) there.
        log_group.grant_write(self.role)
        self._statement("EcrAuthorizationToken", ["ecr:GetAuthorizationToken"], ["*"])
        acknowledge(
            self.role,
            "AwsSolutions-IAM5[Resource::*]",
            "ecr:GetAuthorizationToken has no resource-level permissions; nor have xray:PutTraceSegments and "
            "xray:PutTelemetryRecords (active tracing), nor the EC2 network-interface calls Lambda makes in a VPC.",
        )
        self._grant_pulls(config)
        if cluster.is_eks:
            self._grant_eks(cluster)
        else:
            self._grant_kubeconfig_secret(cluster)
        roles = sorted({spec.role_arn for spec in config.registries if spec.role_arn})
        if roles:
            self._statement("AssumeRegistryRoles", ["sts:AssumeRole"], roles)
        if config.subnet_ids:
            self._statement("VpcNetworkInterfaces", VPC_ACTIONS, ["*"])

    def _statement(self, sid: str, actions: list[str], resources: list[str]) -> None:
        self.role.add_to_policy(iam.PolicyStatement(sid=sid, actions=actions, resources=resources))

    def _grant_pulls(self, config: DeploymentConfig) -> None:
        """The ECR token carries the role's own rights: pulls on the configured registries' repositories
        (all of them, or the configured name prefixes), and nothing else."""
        registries = [(spec.host, spec.region, spec.account) for spec in config.registries if spec.role_arn is None]
        if config.settings.include_own_registry:
            registries.insert(0, ("", Aws.REGION, Aws.ACCOUNT_ID))
        resources: list[str] = []
        for host, region, account in registries:
            printed_region = "<AWS::Region>" if host == "" else region
            printed_account = "<AWS::AccountId>" if host == "" else account
            for prefix in config.repositories.get(host, ("",)):
                resources.append(f"arn:{Aws.PARTITION}:ecr:{region}:{account}:repository/{prefix}*")
                acknowledge(
                    self.role,
                    f"AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:ecr:{printed_region}:{printed_account}:"
                    f"repository/{prefix}*]",
                    "The pull secret serves the repositories of a configured registry (all, or the configured "
                    "`repositories` prefixes): the kubelet pulls with the function's rights, and no others.",
                )
        if resources:
            self._statement("EcrPull", ECR_PULL_ACTIONS, resources)

    def _grant_kubeconfig_secret(self, cluster: Cluster) -> None:
        """GetSecretValue on the secret, and Decrypt on its own key only through Secrets Manager, for it."""
        arn = str(cluster.kubeconfig_secret_arn)
        # Secrets Manager appends `-` and six random characters to a secret's name in its ARN. Whether an
        # ARN has them cannot be told from its text (`secret:team-onprem` ends like a complete ARN), so
        # both readings are granted: the ARN as given, and as a partial ARN with the six as wildcards (as
        # the CDK does for Secret.fromSecretPartialArn).
        secrets = [arn, f"{arn}-??????"]
        self._statement("KubeconfigSecret", ["secretsmanager:GetSecretValue"], secrets)
        if cluster.kms_key_arn:
            self.role.add_to_policy(
                iam.PolicyStatement(
                    sid="KubeconfigSecretKey",
                    actions=["kms:Decrypt"],
                    resources=[cluster.kms_key_arn],
                    conditions={
                        "StringEquals": {"kms:ViaService": f"secretsmanager.{arn.split(':')[3]}.{Aws.URL_SUFFIX}"},
                        "StringLike": {"kms:EncryptionContext:SecretARN": secrets},
                    },
                )
            )

    def _grant_eks(self, cluster: Cluster) -> None:
        stack = Stack.of(self)
        self._statement(
            "EksDescribeCluster",
            ["eks:DescribeCluster"],
            [stack.format_arn(service="eks", resource="cluster", resource_name=cluster.name)],
        )
        # `check` reads the role's own access entry for the cluster (its Kubernetes groups).
        self._statement(
            "EksOwnAccessEntry",
            ["eks:DescribeAccessEntry"],
            [
                stack.format_arn(
                    service="eks",
                    resource="access-entry",
                    resource_name=f"{cluster.name}/role/{Aws.ACCOUNT_ID}/{self.role.role_name}/*",
                )
            ],
        )
        role_id = stack.get_logical_id(self.role.node.default_child)  # type: ignore[arg-type]
        # cdk-nag names a stack's region and account as they are: literal in a stack pinned to an environment.
        region = "<AWS::Region>" if Token.is_unresolved(stack.region) else stack.region
        account = "<AWS::AccountId>" if Token.is_unresolved(stack.account) else stack.account
        acknowledge(
            self.role,
            f"AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:eks:{region}:{account}:access-entry/"
            f"{cluster.name}/role/<AWS::AccountId>/<{role_id}>/*]",
            "An access entry's ARN ends in an id EKS assigns; this names the role's own entry on its cluster.",
        )
