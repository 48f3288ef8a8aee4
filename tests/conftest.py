"""Every test starts from an environment without the refresher's settings and with Powertools quiet."""

from __future__ import annotations

import pytest

from lambda_fn.config import ENV_NAMES

SETTING_VARIABLES = [*ENV_NAMES.values(), "AWS_DEFAULT_REGION", "AWS_ENDPOINT_URL", "AWS_PROFILE", "KUBECONFIG"]


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in SETTING_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("POWERTOOLS_TRACE_DISABLED", "true")
    monkeypatch.setenv("POWERTOOLS_DEV", "false")
