"""Settings from the environment: defaults, parsing, and every problem reported at once."""

from __future__ import annotations

import re
from datetime import timedelta

import botocore.loaders
import pytest

from lambda_fn.config import REGION, RegistrySpec, Settings, is_valid_selector, partition
from lambda_fn.errors import ConfigError
from lambda_fn.runner import KubeconfigSecretCluster, configured_cluster

BASE = {"AWS_REGION": "eu-west-1", "CLUSTER_NAME": "prod"}


def test_defaults_serve_the_default_namespace_with_regcred() -> None:
    settings = Settings.from_env(BASE, require_cluster=True)
    assert settings.secret_name == "regcred"
    assert settings.namespaces == ("default",)
    assert settings.namespace_selector is None
    assert settings.include_own_registry is True
    assert settings.refresh_threshold == timedelta(hours=6)
    assert settings.max_concurrency == 16
    assert settings.dry_run is False


def test_every_variable_is_parsed() -> None:
    settings = Settings.from_env(
        BASE
        | {
            "SECRET_NAME": "ecr-pull",
            "NAMESPACES": " team-a, team-* ,",
            "NAMESPACE_SELECTOR": "ecr in (yes,true),tier!=legacy",
            "EXCLUDE_NAMESPACES": "team-sandbox",
            "REGISTRIES": "210987654321.dkr.ecr.us-east-1.amazonaws.com=arn:aws:iam::210987654321:role/puller",
            "INCLUDE_OWN_REGISTRY": "false",
            "SERVICE_ACCOUNTS": "default,builder",
            "REFRESH_THRESHOLD_MINUTES": "90",
            "MAX_CONCURRENCY": "4",
            "DEADLINE_MARGIN_SECONDS": "30",
            "DRY_RUN": "yes",
        },
        require_cluster=True,
    )
    assert settings.secret_name == "ecr-pull"
    assert settings.namespaces == ("team-a", "team-*")
    assert settings.namespace_selector == "ecr in (yes,true),tier!=legacy"
    assert settings.exclude_namespaces == ("team-sandbox",)
    assert settings.registries == (
        RegistrySpec(
            host="210987654321.dkr.ecr.us-east-1.amazonaws.com",
            account="210987654321",
            region="us-east-1",
            role_arn="arn:aws:iam::210987654321:role/puller",
        ),
    )
    assert settings.include_own_registry is False
    assert settings.service_accounts == ("default", "builder")
    assert settings.refresh_threshold == timedelta(minutes=90)
    assert settings.max_concurrency == 4
    assert settings.deadline_margin == timedelta(seconds=30)
    assert settings.dry_run is True


def test_a_selector_alone_does_not_add_the_default_namespace() -> None:
    settings = Settings.from_env(BASE | {"NAMESPACE_SELECTOR": "team=a"}, require_cluster=True)
    assert settings.namespaces == ()


def test_every_problem_is_reported_at_once_with_its_variable_and_fix() -> None:
    with pytest.raises(ConfigError) as caught:
        Settings.from_env(
            {
                "NAMESPACES": "Team_A,ok,../etc",
                "NAMESPACE_SELECTOR": "a in (b",
                "SECRET_NAME": "Reg Cred",
                "REGISTRIES": "docker.io",
                "MAX_CONCURRENCY": "many",
                "REFRESH_THRESHOLD_MINUTES": "720",
                "DRY_RUN": "maybe",
            },
            require_cluster=True,
        )
    fields = [problem.field for problem in caught.value.problems]
    assert sorted(fields) == sorted(
        [
            "AWS_REGION",
            "CLUSTER_NAME",
            "NAMESPACES",
            "NAMESPACES",
            "NAMESPACE_SELECTOR",
            "SECRET_NAME",
            "REGISTRIES",
            "MAX_CONCURRENCY",
            "REFRESH_THRESHOLD_MINUTES",
            "DRY_RUN",
        ]
    )
    message = str(caught.value)
    assert "'Team_A' is not a namespace name" in message
    assert "<account>.dkr.ecr.<region>.amazonaws.com" in message
    assert "'many' is not a whole number from 1 to 64" in message


@pytest.mark.parametrize(
    "value",
    ["a" * 64, "-a", "a-", "UPPER", "a.b", "a/b", "a\nb", ""],
)
def test_namespace_names_must_be_rfc1123_labels(value: str) -> None:
    with pytest.raises(ConfigError, match="NAMESPACES"):
        Settings.from_env(BASE, require_cluster=True).replace(
            {"namespaces": "NAMESPACES"}, source="t", namespaces=(value,)
        )


@pytest.mark.parametrize("pattern", ["team-*", "t?am", "team-[ab]", "*", "app[0-9a-f]-*", "[!k]*", "x[a-a]"])
def test_globs_are_accepted(pattern: str) -> None:
    settings = Settings.from_env(BASE | {"NAMESPACES": pattern}, require_cluster=True)
    assert settings.namespaces == (pattern,)


@pytest.mark.parametrize(
    "pattern",
    # classes fnmatch reads in its own way, which the admission policy's RE2 regex could not mirror
    ["team-[!]", "team-[]a]", "team-[z-a]", "team-[]", "team-[a", "team-*]", "team-[a-]", "team-[a-c-e]", "!team*"],
)
def test_globs_with_classes_that_cannot_mean_the_same_everywhere_are_refused(pattern: str) -> None:
    with pytest.raises(ConfigError, match=r"NAMESPACES: .* is not a namespace glob; .*ascending ranges"):
        Settings.from_env(BASE | {"NAMESPACES": pattern}, require_cluster=True)


@pytest.mark.parametrize(
    ("selector", "valid"),
    [
        ("team=a", True),
        ("team==a,env!=prod", True),
        ("env in (dev, prod)", True),
        ("env notin (prod)", True),
        ("example.com/team", True),
        ("!legacy", True),
        ("team=", True),
        # as kube-apiserver v1.34 parses them (tests/contract checks the same list on both servers)
        ("team in(a)", True),
        ("x>5", True),
        ("x < 5", True),
        ("! legacy", True),
        ("x in (a,)", True),
        ("x > -5", False),
        ("x>09223372036854775807", True),
        ("x>9223372036854775808", False),
        ("x<1_0", False),
        (f"x>{'0' * 62}5", True),
        (f"x>{'0' * 63}5", False),  # a label value: 63 characters at most
        ("x>a", False),
        # kube-apiserver reads an empty set as "the empty value"; refused here as a likely slip
        ("x in ()", False),
        ("x notin ( )", False),
        ("team=a,", False),
        ("env in (dev", False),
        ("=a", False),
        ("team=a b", False),
        ("", False),
    ],
)
def test_selector_syntax(selector: str, valid: bool) -> None:
    assert is_valid_selector(selector) is valid


@pytest.mark.parametrize(
    "entry",
    [
        "public.ecr.aws",
        "123.dkr.ecr.us-east-1.amazonaws.com",
        "123456789012.dkr.ecr.us-east-1.amazonaws.com=role/puller",
    ],
)
def test_registry_entries_must_be_ecr_hosts_and_role_arns(entry: str) -> None:
    with pytest.raises(ValueError, match="use"):
        RegistrySpec.parse(entry)


@pytest.mark.parametrize(
    ("host", "region"),
    [
        ("123456789012.dkr.ecr.cn-north-1.amazonaws.com", "cn-north-1"),
        ("123456789012.dkr.ecr.eu-west-1.amazonaws.com.cn", "eu-west-1"),
    ],
)
def test_a_registry_host_that_cannot_exist_is_refused(host: str, region: str) -> None:
    with pytest.raises(ValueError, match=f"cannot exist: a registry in {region} ends in"):
        RegistrySpec.parse(host)


def test_the_partition_table_agrees_with_botocore_for_every_region_it_knows() -> None:
    endpoints = botocore.loaders.create_loader().load_data("endpoints")
    known = {region: entry["partition"] for entry in endpoints["partitions"] for region in entry["regions"]}
    # Regions the configuration accepts at all (REGION: two letters first; eusc-de-east-1 is not one).
    judged = {region: name for region, name in known.items() if REGION.match(region)}
    assert {region: partition(region) for region in judged} == judged
    assert len(set(judged.values())) >= 6


def test_cluster_name_is_optional_for_the_cli_but_required_for_the_lambda() -> None:
    settings = Settings.from_env({"AWS_REGION": "eu-west-1"}, require_cluster=False)
    assert settings.cluster_name is None
    with pytest.raises(ConfigError, match="CLUSTER_NAME: required"):
        Settings.from_env({"AWS_REGION": "eu-west-1"}, require_cluster=True)
    with pytest.raises(ConfigError, match="CLUSTER_NAME: required"):
        configured_cluster(settings)


def test_a_kubeconfig_secret_reaches_any_cluster_and_makes_the_name_optional() -> None:
    secret = "arn:aws:secretsmanager:eu-west-1:111122223333:secret:onprem-AbCdEf"
    settings = Settings.from_env(
        {"AWS_REGION": "eu-west-1", "KUBECONFIG_SECRET": secret, "KUBECONFIG_CONTEXT": "ops"}, require_cluster=True
    )
    assert configured_cluster(settings) == KubeconfigSecretCluster(secret, "ops")


@pytest.mark.parametrize(
    ("environment", "message"),
    [
        (
            {"KUBECONFIG_SECRET": "arn:aws:s3:::bucket"},
            "KUBECONFIG_SECRET: 'arn:aws:s3:::bucket' is not a Secrets Manager",
        ),
        (
            {"KUBECONFIG_CONTEXT": "ops"},
            "KUBECONFIG_CONTEXT: only goes with a kubeconfig secret: set KUBECONFIG_SECRET",
        ),
    ],
)
def test_kubeconfig_secret_settings_are_checked(environment: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError, match=re.escape(message)):
        Settings.from_env(BASE | environment, require_cluster=True)


PASTED_KUBECONFIG = "apiVersion: v1\nusers:\n- name: ops\n  user:\n    token: eyJhbGciOiJSUzI1NiJ9.c2VjcmV0\n"


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("KUBECONFIG_SECRET", PASTED_KUBECONFIG),
        ("REGISTRIES", "123456789012.dkr.ecr.eu-west-1.amazonaws.com=hunter2 hunter2"),
        ("KUBECONFIG_CONTEXT", PASTED_KUBECONFIG),
    ],
)
def test_a_secret_pasted_into_a_setting_is_described_not_echoed(variable: str, value: str) -> None:
    environment = BASE | {variable: value}
    if variable == "KUBECONFIG_CONTEXT":
        environment["KUBECONFIG_SECRET"] = "ops-kubeconfig"
    with pytest.raises(ConfigError) as raised:
        Settings.from_env(environment, require_cluster=True)
    message = str(raised.value)
    assert f"{variable}: a value of" in message
    assert "(not shown)" in message
    assert "eyJhbGci" not in message
    assert "hunter2" not in message


def test_nothing_to_serve_is_rejected() -> None:
    with pytest.raises(ConfigError, match="no registry to serve"):
        Settings.from_env(BASE | {"INCLUDE_OWN_REGISTRY": "false"}, require_cluster=True)


def test_a_number_too_large_for_its_unit_is_named_not_raised() -> None:
    """The bounds are checked before the duration is built: no OverflowError reaches the caller."""
    with pytest.raises(ConfigError) as refused:
        Settings.from_env(
            {"AWS_REGION": "eu-west-1", "REFRESH_THRESHOLD_MINUTES": "9" * 20, "DEADLINE_MARGIN_SECONDS": "9" * 20},
            require_cluster=False,
        )
    assert [problem.field for problem in refused.value.problems] == [
        "REFRESH_THRESHOLD_MINUTES",
        "DEADLINE_MARGIN_SECONDS",
    ]


def test_a_variable_that_cannot_be_read_is_reported_once() -> None:
    """A bad REGISTRIES entry is the problem; the empty list its default leaves is not another one."""
    with pytest.raises(ConfigError) as refused:
        Settings.from_env(
            {"AWS_REGION": "eu-west-1", "REGISTRIES": "docker.io", "INCLUDE_OWN_REGISTRY": "false"},
            require_cluster=False,
        )
    assert [problem.field for problem in refused.value.problems] == ["REGISTRIES"]
