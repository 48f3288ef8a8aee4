"""Registry credentials: one ECR call per (region, role), validated before anything is written."""

from __future__ import annotations

import base64
from datetime import timedelta

import pytest

from lambda_fn.config import Settings
from lambda_fn.credentials import fetch_registry_credentials
from lambda_fn.errors import CredentialError
from tests.fakes import NOW, FakeTokenSource

ENV = {"AWS_REGION": "eu-west-1", "CLUSTER_NAME": "prod"}


def test_one_call_per_region_and_role_serves_every_host() -> None:
    settings = Settings.from_env(
        ENV
        | {
            "REGISTRIES": ",".join(
                [
                    "210987654321.dkr.ecr.eu-west-1.amazonaws.com",
                    "111111111111.dkr.ecr.eu-west-1.amazonaws.com",
                    "210987654321.dkr.ecr.us-east-1.amazonaws.com",
                    "333333333333.dkr.ecr.us-east-1.amazonaws.com=arn:aws:iam::333333333333:role/puller",
                ]
            )
        },
        require_cluster=True,
    )
    source = FakeTokenSource()
    credentials = fetch_registry_credentials(source, settings, now=NOW).credentials
    assert sorted(source.calls, key=str) == sorted(
        [("eu-west-1", None), ("us-east-1", None), ("us-east-1", "arn:aws:iam::333333333333:role/puller")], key=str
    )
    by_host = {c.host: c.password for c in credentials}
    assert by_host == {
        "123456789012.dkr.ecr.eu-west-1.amazonaws.com": "pw-eu-west-1-123456789012",
        "210987654321.dkr.ecr.eu-west-1.amazonaws.com": "pw-eu-west-1-123456789012",
        "111111111111.dkr.ecr.eu-west-1.amazonaws.com": "pw-eu-west-1-123456789012",
        "210987654321.dkr.ecr.us-east-1.amazonaws.com": "pw-us-east-1-123456789012",
        "333333333333.dkr.ecr.us-east-1.amazonaws.com": "pw-us-east-1-333333333333",
    }


@pytest.mark.parametrize(
    ("token_text", "lifetime", "message"),
    [
        ("AWS:pw", timedelta(seconds=-1), "expired at"),
        ("root:pw", timedelta(hours=12), "does not decode to AWS:<password>"),
        ("AWS:", timedelta(hours=12), "does not decode to AWS:<password>"),
        ("no-colon", timedelta(hours=12), "does not decode to AWS:<password>"),
    ],
)
def test_unusable_tokens_are_refused_without_echoing_them(token_text: str, lifetime: timedelta, message: str) -> None:
    source = FakeTokenSource(token_text=token_text, lifetime=lifetime)
    with pytest.raises(CredentialError, match=message) as caught:
        fetch_registry_credentials(source, Settings.from_env(ENV, require_cluster=True), now=NOW)
    assert "nothing was written" in str(caught.value)
    assert token_text not in str(caught.value) or token_text == "AWS:"


def test_a_token_that_is_not_base64_is_refused() -> None:
    source = FakeTokenSource()
    original = source.fetch

    def garbled(**kwargs: str | None) -> object:
        token = original(**kwargs)  # type: ignore[arg-type]
        return type(token)(token="%%%not-base64", expires_at=token.expires_at, proxy_endpoint=token.proxy_endpoint)

    source.fetch = garbled  # type: ignore[assignment,method-assign]
    with pytest.raises(CredentialError, match="not base64"):
        fetch_registry_credentials(source, Settings.from_env(ENV, require_cluster=True), now=NOW)
    assert base64  # the module is used to build the fake's tokens


PULLER = "arn:aws:iam::333333333333:role/puller"
EXTRA = "333333333333.dkr.ecr.us-east-1.amazonaws.com"


def test_an_extra_registry_whose_token_fails_is_unavailable_and_the_others_are_served() -> None:
    settings = Settings.from_env(ENV | {"REGISTRIES": f"{EXTRA}={PULLER}"}, require_cluster=True)
    fetched = fetch_registry_credentials(FakeTokenSource(refused_roles=(PULLER,)), settings, now=NOW)
    assert [c.host for c in fetched.credentials] == ["123456789012.dkr.ecr.eu-west-1.amazonaws.com"]
    assert list(fetched.unavailable) == [EXTRA]
    assert "could not assume" in fetched.unavailable[EXTRA]
    assert "nothing was written" not in fetched.unavailable[EXTRA]


def test_without_any_token_nothing_is_written() -> None:
    settings = Settings.from_env(
        ENV | {"REGISTRIES": f"{EXTRA}={PULLER}", "INCLUDE_OWN_REGISTRY": "false"}, require_cluster=True
    )
    refused = r"no registry token could be had \(could not assume .*nothing was written"
    with pytest.raises(CredentialError, match=refused):
        fetch_registry_credentials(FakeTokenSource(refused_roles=(PULLER,)), settings, now=NOW)


def test_the_own_registry_listed_again_with_a_failing_role_is_still_served() -> None:
    own = "123456789012.dkr.ecr.eu-west-1.amazonaws.com"
    settings = Settings.from_env(ENV | {"REGISTRIES": f"{own}={PULLER}"}, require_cluster=True)
    fetched = fetch_registry_credentials(FakeTokenSource(refused_roles=(PULLER,)), settings, now=NOW)
    assert [c.host for c in fetched.credentials] == [own]
    assert fetched.unavailable == {}
