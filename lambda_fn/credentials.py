"""Registry credentials: one ECR token per (region, role), validated before anything is written."""

from __future__ import annotations

import base64
import binascii
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime
from urllib.parse import urlparse

from lambda_fn.config import Settings
from lambda_fn.errors import CredentialError
from lambda_fn.models import RegistryCredential
from lambda_fn.ports import AuthorizationToken, RegistryTokenSource


@dataclass(frozen=True)
class TokenScope:
    """ECR tokens are per region and per principal: one call serves every registry in the scope."""

    region: str
    role_arn: str | None = None


def token_scopes(settings: Settings) -> dict[TokenScope, list[str | None]]:
    """The registry hosts each token serves; None stands for the caller's own registry."""
    scopes: dict[TokenScope, list[str | None]] = defaultdict(list)
    if settings.include_own_registry:
        scopes[TokenScope(settings.region)].append(None)
    for spec in settings.registries:
        scopes[TokenScope(spec.region, spec.role_arn)].append(spec.host)
    return dict(sorted(scopes.items(), key=lambda item: (item[0].region, item[0].role_arn or "")))


def fetch_registry_credentials(
    source: RegistryTokenSource, settings: Settings, *, now: datetime
) -> list[RegistryCredential]:
    """Fetch one token per scope, validate each, and return one credential per registry host."""
    credentials = {
        credential.host: credential
        for scope, hosts in token_scopes(settings).items()
        for credential in scope_credentials(source, scope, hosts, now=now)
    }
    return [credentials[host] for host in sorted(credentials)]


def scope_credentials(
    source: RegistryTokenSource, scope: TokenScope, hosts: list[str | None], *, now: datetime
) -> list[RegistryCredential]:
    """One GetAuthorizationToken call for `scope`, validated: a credential for each of its hosts."""
    token = source.fetch(region=scope.region, role_arn=scope.role_arn)
    password = validated_password(token, scope=scope, now=now)
    return [
        RegistryCredential(
            host=host or urlparse(token.proxy_endpoint).hostname or token.proxy_endpoint,
            password=password,
            expires_at=token.expires_at,
            role_arn=scope.role_arn,
        )
        for host in hosts
    ]


def validated_password(token: AuthorizationToken, *, scope: TokenScope, now: datetime) -> str:
    """The password inside `token`, or CredentialError if it is malformed or expired."""
    where = f"ECR token for {scope.region}" + (f" as {scope.role_arn}" if scope.role_arn else "")
    try:
        decoded = base64.b64decode(token.token, validate=True).decode()
    except (binascii.Error, UnicodeDecodeError) as exc:
        raise CredentialError(f"{where} is not base64 text; nothing was written") from exc
    username, separator, password = decoded.partition(":")
    if username != "AWS" or not separator or not password:
        raise CredentialError(f"{where} does not decode to AWS:<password>; nothing was written")
    if token.expires_at <= now:
        raise CredentialError(
            f"{where} expired at {token.expires_at.isoformat()} (now {now.isoformat()}); nothing was written"
        )
    return password
