"""The regex over base64 text agrees with the byte-level language it stands for, on every sample."""

from __future__ import annotations

import base64
import json
import random
import re

import pytest

from infra.base64_pattern import base64_fragments, recipe_secret_pattern
from lambda_fn.dockerconfig import recipe_host
from lambda_fn.secret_contract import recipe_keys

HOSTS = ["123456789012.dkr.ecr.us-east-1.amazonaws.com", "210987654321.dkr.ecr.eu-west-1.amazonaws.com"]
# What `kubectl create secret docker-registry regcred --docker-server=<host> ...` writes.
KUBECTL = base64.b64encode(
    b'{"auths":{"123456789012.dkr.ecr.us-east-1.amazonaws.com":{"username":"AWS","password":"xyz",'
    b'"auth":"QVdTOnh5eg=="}}}'
).decode()


def language(hosts: list[str]) -> re.Pattern[bytes]:
    alternatives = b"|".join(re.escape(host.encode()) for host in hosts)
    return re.compile(rb'^\{"auths":\{"(?:' + alternatives + rb')":\{[^{}]*\}\}\}$', re.DOTALL)


def samples(hosts: list[str]) -> list[bytes]:
    rng = random.Random(7)
    found: list[bytes] = []
    for host in [*hosts, "ghcr.io", "123456789012.dkr.ecr.us-east-1.amazonaws.co"]:
        for _ in range(1500):
            body = bytes(rng.choice(b'abc"{}:,\\ \x00\xff}') for _ in range(rng.randrange(40)))
            found += [b'{"auths":{"' + host.encode() + b'":{' + body + b"}}}", b'{"auths":{"' + host.encode() + body]
        document = {"auths": {host: {"username": "AWS", "password": "p}w", "auth": "QVdTOnB9dw=="}}}
        found += [json.dumps(document, separators=(",", ":")).encode(), json.dumps(document).encode()]
        found.append(json.dumps(document, indent="\t").encode())  # docker login's config.json, as a secret
        found.append(json.dumps({"auths": {host: {"auth": "x"}, "ghcr.io": {"auth": "y"}}}).encode())
    found.append(json.dumps({"auths": {host: {"auth": "x"} for host in hosts}}, separators=(",", ":")).encode())
    return found + [bytes(rng.randrange(256) for _ in range(rng.randrange(12))) for _ in range(5000)]


@pytest.mark.parametrize("hosts", [HOSTS[:1], HOSTS])
def test_the_pattern_matches_exactly_the_encodings_of_the_language(hosts: list[str]) -> None:
    pattern, expected = re.compile(recipe_secret_pattern(hosts)), language(hosts)
    samples_ = samples(hosts)
    disagreements = [
        raw for raw in samples_ if bool(pattern.match(base64.b64encode(raw).decode())) != bool(expected.match(raw))
    ]
    assert disagreements == []
    assert sum(bool(expected.match(raw)) for raw in samples_) > 100  # both verdicts were exercised


@pytest.mark.parametrize("hosts", [HOSTS[:1], HOSTS])
def test_the_function_adopts_exactly_the_valid_json_the_policy_admits(hosts: list[str]) -> None:
    """lambda_fn's adoption decision (recipe_host) and the admission policy's regex agree: the function
    never decides on an adoption the policy would refuse, nor skips one it would admit, for every spelling
    of the key the recipe may have been given (https://, a trailing /) and for near misses."""
    keys = [key for host in hosts for key in recipe_keys(host)]
    pattern = re.compile(recipe_secret_pattern(keys))
    near_misses = [
        spelling for host in hosts for spelling in (f"http://{host}", f"https://https://{host}", f"{host}//")
    ]
    verdicts = []
    for raw in samples(keys + near_misses):
        encoded = base64.b64encode(raw).decode()
        adopted, admitted = recipe_host(encoded) in hosts, bool(pattern.match(encoded))
        assert not adopted or admitted, raw
        if _is_json(raw):
            assert adopted == admitted, raw
        verdicts.append(adopted)
    assert 0 < sum(verdicts) < len(verdicts)


def _is_json(raw: bytes) -> bool:
    try:
        json.loads(raw)
    except ValueError:
        return False
    return True


def test_the_recipe_given_a_url_is_read_as_its_host() -> None:
    for key in recipe_keys(HOSTS[0]):
        payload = json.dumps({"auths": {key: {"username": "AWS", "password": "x", "auth": "QVdTOng="}}})
        assert recipe_host(base64.b64encode(payload.replace(" ", "").encode()).decode()) == HOSTS[0], key
    assert recipe_keys(HOSTS[0])[1:] == [f"{HOSTS[0]}/", f"https://{HOSTS[0]}", f"https://{HOSTS[0]}/"]


def test_kubectls_own_secret_matches_and_another_registry_does_not() -> None:
    assert re.match(recipe_secret_pattern(HOSTS[:1]), KUBECTL)
    assert not re.match(recipe_secret_pattern(HOSTS[1:]), KUBECTL)


@pytest.mark.parametrize("before", range(7))
def test_a_hosts_fragments_find_it_at_any_position_and_nothing_else(before: int) -> None:
    host = b"222222222222.dkr.ecr.eu-west-1.amazonaws.com"
    fragments = base64_fragments(host)
    for after in range(4):
        payload = base64.b64encode(b"x" * before + host + b"y" * after).decode()
        assert any(fragment in payload for fragment in fragments)
    other = base64.b64encode(b"x" * before + host.replace(b"2", b"3") + b"}").decode()
    assert not any(fragment in other for fragment in fragments)
