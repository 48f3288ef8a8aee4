"""The .dockerconfigjson payload: exactly the served registries' logins."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime

from lambda_fn.dockerconfig import build_auths, build_dockerconfigjson, read_auths
from lambda_fn.models import RegistryCredential

EXPIRES = datetime(2026, 11, 28, 21, 0, tzinfo=UTC)
ECR = RegistryCredential(host="123456789012.dkr.ecr.eu-west-1.amazonaws.com", password="s3cret", expires_at=EXPIRES)


def test_entries_use_bare_hosts_with_username_password_and_auth() -> None:
    assert build_auths([ECR]) == {
        "123456789012.dkr.ecr.eu-west-1.amazonaws.com": {
            "username": "AWS",
            "password": "s3cret",
            "auth": base64.b64encode(b"AWS:s3cret").decode(),
        }
    }


def test_the_payload_holds_exactly_the_served_registries_compactly() -> None:
    other = RegistryCredential(host="210987654321.dkr.ecr.us-east-1.amazonaws.com", password="p", expires_at=EXPIRES)
    payload = base64.b64decode(build_dockerconfigjson([ECR, other]))
    assert json.loads(payload) == {"auths": build_auths([ECR, other])}
    assert b" " not in payload


def test_unreadable_payloads_read_as_none_not_a_crash() -> None:
    for garbage in ("not base64!", base64.b64encode(b"[1,2]").decode(), base64.b64encode(b"{").decode(), None):
        assert read_auths(garbage) is None


def test_the_password_never_shows_in_repr() -> None:
    assert "s3cret" not in repr(ECR)
