"""AWS calls never outlast the run: each call's attempts, timeouts and backoff fit half the time left."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator

import boto3
import pytest

from lambda_fn.aws import BACKOFF_BOUND, EcrTokenSource, boto_config, deadline_configs
from lambda_fn.errors import CredentialError


def limits(seconds_left: float | None) -> tuple[int, float, float]:
    """Attempts, connect and read timeout of boto_config's Config (botocore's stubs leave them untyped)."""
    options = vars(boto_config(seconds_left))
    return options["retries"]["total_max_attempts"], options["connect_timeout"], options["read_timeout"]


def worst_case_seconds(seconds_left: float) -> float:
    attempts, connect_timeout, read_timeout = limits(seconds_left)
    return attempts * (connect_timeout + read_timeout) + BACKOFF_BOUND[attempts]


@pytest.mark.parametrize("seconds_left", [900, 300, 120, 60, 30, 20, 12, 8, 4])
def test_one_call_takes_at_most_half_the_time_left(seconds_left: float) -> None:
    assert worst_case_seconds(seconds_left) <= seconds_left / 2


def test_without_a_deadline_the_defaults_stand() -> None:
    assert limits(None) == (5, 5, 10)


@pytest.fixture
def silent_endpoint() -> Iterator[str]:
    """An endpoint that accepts connections and never answers: a hung AWS API."""
    listener = socket.create_server(("127.0.0.1", 0))
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        listener.settimeout(0.2)
        while not stop.is_set():
            try:
                held.append(listener.accept()[0])
            except TimeoutError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{listener.getsockname()[1]}"
    stop.set()
    thread.join()
    for connection in held:
        connection.close()
    listener.close()


def test_calls_to_a_hung_endpoint_end_before_the_deadline(
    silent_endpoint: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL", silent_endpoint)
    session = boto3.Session(aws_access_key_id="AKIDEXAMPLE", aws_secret_access_key="x", region_name="eu-west-1")
    budget, started = 12.0, time.monotonic()
    source = EcrTokenSource(session, configs=deadline_configs(lambda: budget - (time.monotonic() - started)))
    for region in ("eu-west-1", "us-east-1", "ap-south-1"):  # one run's calls, one after another
        with pytest.raises(CredentialError, match=r"GetAuthorizationToken in .* failed"):
            source.fetch(region=region, role_arn=None)
    assert time.monotonic() - started < budget
