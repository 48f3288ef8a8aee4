"""Registry credentials: one ECR token per (region, role), validated before anything is written."""

from __future__ import annotations

import base64
import binascii
from collections import defaultdict
from dataclasses import dataclass, field
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
    for spec in settings.served_registries:
        scopes[TokenScope(spec.region, spec.role_arn)].append(spec.host)
    return dict(sorted(scopes.items(), key=lambda item: (item[0].region, item[0].role_arn or "")))


@dataclass(frozen=True)
class FetchedCredentials:
    """One run's credentials, and the extra registries whose token could not be had (host → why)."""

    credentials: list[RegistryCredential]
    unavailable: dict[str, str] = field(default_factory=dict)


def fetch_registry_credentials(source: RegistryTokenSource, settings: Settings, *, now: datetime) -> FetchedCredentials:
    """Fetch one token per scope, validate each, and return one credential per registry host.

    An extra registry whose token fails is reported unavailable, so the others are still written; the
    run fails for it. Raises CredentialError, before anything is written, when the own registry's token
    fails (its host is only known from its token) or no token at all could be had.
    """
    credentials: dict[str, RegistryCredential] = {}
    unavailable: dict[str, str] = {}
    for scope, hosts in token_scopes(settings).items():
        try:
            fetched = scope_credentials(source, scope, hosts, now=now)
        except CredentialError as exc:
            if None in hosts:
                raise CredentialError(f"{exc}; nothing was written") from exc
            unavailable.update({host: str(exc) for host in hosts if host is not None})
            continue
        credentials.update({credential.host: credential for credential in fetched})
    # A host served by another scope too (the own registry, listed again with a role) is not unavailable.
    unavailable = {host: reason for host, reason in unavailable.items() if host not in credentials}
    if not credentials:
        reasons = "; ".join(sorted(set(unavailable.values())))
        raise CredentialError(f"no registry token could be had ({reasons}); nothing was written")
    return FetchedCredentials([credentials[host] for host in sorted(credentials)], unavailable)


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
        raise CredentialError(f"{where} is not base64 text") from exc
    username, separator, password = decoded.partition(":")
    if username != "AWS" or not separator or not password:
        raise CredentialError(f"{where} does not decode to AWS:<password>")
    if token.expires_at <= now:
        raise CredentialError(f"{where} expired at {token.expires_at.isoformat()} (now {now.isoformat()})")
    return password
