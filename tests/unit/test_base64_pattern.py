"""The regex over base64 text agrees with the byte-level language it stands for, on every sample."""

from __future__ import annotations

import base64
import json
import random
import re

import pytest

from infra.base64_pattern import recipe_secret_pattern

HOSTS = ["123456789012.dkr.ecr.us-east-1.amazonaws.com", "210987654321.dkr.ecr.eu-west-1.amazonaws.com"]
# What `kubectl create secret docker-registry regcred --docker-server=<host> ...` writes.
KUBECTL = base64.b64encode(
    b'{"auths":{"123456789012.dkr.ecr.us-east-1.amazonaws.com":{"username":"AWS","password":"xyz",'
    b'"auth":"QVdTOnh5eg=="}}}'
).decode()


def language(hosts: list[str]) -> re.Pattern[bytes]:
    alternatives = b"|".join(re.escape(host.encode()) for host in hosts)
    return re.compile(rb'^\{"auths":\{"(?:' + alternatives + rb')":\{[^{}]*\}\}\}$', re.DOTALL)


@pytest.mark.parametrize("hosts", [HOSTS[:1], HOSTS])
def test_the_pattern_matches_exactly_the_encodings_of_the_language(hosts: list[str]) -> None:
    pattern, expected = re.compile(recipe_secret_pattern(hosts)), language(hosts)
    rng = random.Random(7)
    samples: list[bytes] = []
    for host in [*hosts, "ghcr.io", "123456789012.dkr.ecr.us-east-1.amazonaws.co"]:
        for _ in range(1500):
            body = bytes(rng.choice(b'abc"{}:,\\ \x00\xff}') for _ in range(rng.randrange(40)))
            samples += [b'{"auths":{"' + host.encode() + b'":{' + body + b"}}}", b'{"auths":{"' + host.encode() + body]
        document = {"auths": {host: {"username": "AWS", "password": "p}w", "auth": "QVdTOnB9dw=="}}}
        samples += [json.dumps(document, separators=(",", ":")).encode(), json.dumps(document).encode()]
        samples.append(json.dumps({"auths": {host: {"auth": "x"}, "ghcr.io": {"auth": "y"}}}).encode())
    samples += [bytes(rng.randrange(256) for _ in range(rng.randrange(12))) for _ in range(5000)]
    disagreements = [
        raw for raw in samples if bool(pattern.match(base64.b64encode(raw).decode())) != bool(expected.match(raw))
    ]
    assert disagreements == []
    assert sum(bool(expected.match(raw)) for raw in samples) > 100  # both verdicts were exercised


def test_kubectls_own_secret_matches_and_another_registry_does_not() -> None:
    assert re.match(recipe_secret_pattern(HOSTS[:1]), KUBECTL)
    assert not re.match(recipe_secret_pattern(HOSTS[1:]), KUBECTL)
