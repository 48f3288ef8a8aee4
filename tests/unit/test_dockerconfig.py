"""The .dockerconfigjson payload: our entries set, other registries' entries kept."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime

from lambda_fn.dockerconfig import build_auths, merge_dockerconfigjson, read_auths
from lambda_fn.models import RegistryCredential

EXPIRES = datetime(2026, 11, 28, 21, 0, tzinfo=UTC)
ECR = RegistryCredential(host="123456789012.dkr.ecr.eu-west-1.amazonaws.com", password="s3cret", expires_at=EXPIRES)


def decode(encoded: str) -> dict[str, object]:
    document: dict[str, object] = json.loads(base64.b64decode(encoded))
    return document


def test_entries_use_bare_hosts_with_username_password_and_auth() -> None:
    assert build_auths([ECR]) == {
        "123456789012.dkr.ecr.eu-west-1.amazonaws.com": {
            "username": "AWS",
            "password": "s3cret",
            "auth": base64.b64encode(b"AWS:s3cret").decode(),
        }
    }


def test_merge_keeps_other_registries_and_replaces_ours() -> None:
    existing = base64.b64encode(
        json.dumps({"auths": {"ghcr.io": {"auth": "x"}, ECR.host: {"auth": "old"}}}).encode()
    ).decode()
    merged = decode(merge_dockerconfigjson(existing, [ECR]))
    assert merged == {"auths": {"ghcr.io": {"auth": "x"}, ECR.host: build_auths([ECR])[ECR.host]}}


def test_merge_drops_hosts_we_no_longer_serve() -> None:
    existing = merge_dockerconfigjson(None, [ECR])
    other = RegistryCredential(host="210987654321.dkr.ecr.us-east-1.amazonaws.com", password="p", expires_at=EXPIRES)
    merged = decode(merge_dockerconfigjson(existing, [other], retired_hosts=[ECR.host]))
    assert list(merged["auths"]) == [other.host]  # type: ignore[call-overload]


def test_unreadable_payloads_are_replaced_not_crashed_on() -> None:
    for garbage in (
        "not base64!",
        base64.b64encode(b"[1,2]").decode(),
        base64.b64encode(b"{").decode(),
        None,
    ):
        assert read_auths(garbage) is None
        assert list(decode(merge_dockerconfigjson(garbage, [ECR]))["auths"]) == [ECR.host]  # type: ignore[call-overload]


def test_the_password_never_shows_in_repr() -> None:
    assert "s3cret" not in repr(ECR)
