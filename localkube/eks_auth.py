"""EKS-style authentication of `k8s-aws-v1.` bearer tokens, as aws-iam-authenticator does it.

The token is a presigned STS GetCallerIdentity URL. The server checks its shape, that `x-k8s-aws-id`
is signed, that it has not expired, and (when it knows the signing key, as with moto's test keys)
that the signature covers this cluster's name; then it asks STS who signed it and maps that ARN
through an access-entry table to a Kubernetes user and groups.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
import threading
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qsl, quote, urlsplit
from xml.etree import ElementTree

PREFIX = "k8s-aws-v1."
CLUSTER_HEADER = "x-k8s-aws-id"
TOKEN_LIFETIME = timedelta(minutes=15)
STS_HOST = re.compile(r"^sts\.[a-z]{2}(-[a-z]+)+-\d\.amazonaws\.com(\.cn)?$")
ALLOWED_PARAMETERS = frozenset(
    {
        "action",
        "version",
        "x-amz-algorithm",
        "x-amz-credential",
        "x-amz-date",
        "x-amz-expires",
        "x-amz-security-token",
        "x-amz-signature",
        "x-amz-signedheaders",
    }
)
EMPTY_PAYLOAD_SHA256 = hashlib.sha256(b"").hexdigest()
ASSUMED_ROLE = re.compile(r"^arn:(?P<partition>[^:]+):sts::(?P<account>\d{12}):assumed-role/(?P<role>[^/]+)/.+$")


class TokenRejected(Exception):
    """The token is not acceptable; the message says why (for the server's log, not the client)."""


@dataclass(frozen=True)
class AccessEntry:
    username: str
    groups: tuple[str, ...] = ()


@dataclass
class EksTokenAuthenticator:
    cluster_name: str
    resolve_arn: Callable[[str, str], str]  # (presigned URL, cluster name) -> caller ARN
    access_entries: Mapping[str, AccessEntry] = field(default_factory=dict)
    secret_keys: Mapping[str, str] = field(default_factory=dict)  # access key id -> secret, when known
    now: Callable[[], datetime] = lambda: datetime.now(UTC)
    # Like EKS's authenticator, remember verified tokens until they expire: one STS call per token.
    _verified: dict[str, tuple[AccessEntry, datetime]] = field(default_factory=dict, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def authenticate(self, token: str) -> AccessEntry:
        with self._lock:
            cached = self._verified.get(token)
        if cached is not None and self.now() <= cached[1]:
            return cached[0]
        entry, expires_at = self._verify(token)
        with self._lock:
            self._verified[token] = (entry, expires_at)
        return entry

    def _verify(self, token: str) -> tuple[AccessEntry, datetime]:
        url = self._url(token)
        parts = urlsplit(url)
        if parts.scheme != "https" or not STS_HOST.match(parts.hostname or "") or parts.port:
            raise TokenRejected(f"not a regional STS host: {parts.scheme}://{parts.netloc}")
        if parts.path != "/":
            raise TokenRejected(f"unexpected path {parts.path!r}")
        pairs = parse_qsl(parts.query, keep_blank_values=True)
        query = {key.lower(): value for key, value in pairs}
        if len(query) != len(pairs):
            raise TokenRejected("a query parameter is repeated")
        if not set(query) <= ALLOWED_PARAMETERS:
            raise TokenRejected(f"unexpected query parameters {sorted(set(query) - ALLOWED_PARAMETERS)}")
        if query.get("action") != "GetCallerIdentity":
            raise TokenRejected("action is not GetCallerIdentity")
        if CLUSTER_HEADER not in query.get("x-amz-signedheaders", "").split(";"):
            raise TokenRejected(f"{CLUSTER_HEADER} is not among the signed headers")
        try:
            signed_at = datetime.strptime(query.get("x-amz-date", ""), "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
        except ValueError as exc:
            raise TokenRejected("X-Amz-Date is missing or malformed") from exc
        if self.now() > signed_at + TOKEN_LIFETIME:
            raise TokenRejected("token expired")
        self._check_signature(parts.hostname or "", pairs)
        arn = canonical_principal(self.resolve_arn(url, self.cluster_name))
        entry = self.access_entries.get(arn)
        if entry is None:
            raise TokenRejected(f"no access entry for {arn}")
        return entry, signed_at + TOKEN_LIFETIME

    @staticmethod
    def _url(token: str) -> str:
        if not token.startswith(PREFIX):
            raise TokenRejected("missing k8s-aws-v1. prefix")
        encoded = token[len(PREFIX) :]
        try:
            return base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4)).decode()
        except (binascii.Error, UnicodeDecodeError) as exc:
            raise TokenRejected("not base64url") from exc

    def _check_signature(self, host: str, pairs: list[tuple[str, str]]) -> None:
        """SigV4 with this cluster's name as x-k8s-aws-id, when the signing key is known."""
        query = dict(pairs)
        access_key, _, scope = query.get("X-Amz-Credential", "").partition("/")
        secret = self.secret_keys.get(access_key)
        if secret is None:
            return
        date, region, service, _ = [*scope.split("/"), "", "", "", ""][:4]
        canonical_query = "&".join(
            f"{quote(key, safe='-_.~')}={quote(value, safe='-_.~')}"
            for key, value in sorted(pairs)
            if key != "X-Amz-Signature"
        )
        headers = {"host": host, CLUSTER_HEADER: self.cluster_name}
        signed = query.get("X-Amz-SignedHeaders", "")
        canonical_headers = "".join(f"{name}:{headers.get(name, '')}\n" for name in signed.split(";"))
        key = _hmac(("AWS4" + secret).encode(), date)
        for part in (region, service, "aws4_request"):
            key = _hmac(key, part)
        for payload_hash in (EMPTY_PAYLOAD_SHA256, "UNSIGNED-PAYLOAD"):
            canonical = "\n".join(["GET", "/", canonical_query, canonical_headers, signed, payload_hash])
            to_sign = "\n".join(
                [
                    "AWS4-HMAC-SHA256",
                    query.get("X-Amz-Date", ""),
                    scope,
                    hashlib.sha256(canonical.encode()).hexdigest(),
                ]
            )
            expected = hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()
            if hmac.compare_digest(expected, query.get("X-Amz-Signature", "")):
                return
        raise TokenRejected(f"signature does not match: not signed for cluster {self.cluster_name!r}")


def _hmac(key: bytes, message: str) -> bytes:
    return hmac.new(key, message.encode(), hashlib.sha256).digest()


def canonical_principal(arn: str) -> str:
    """An assumed-role session ARN as the role ARN it came from, as EKS access entries name it."""
    match = ASSUMED_ROLE.match(arn)
    if match:
        return f"arn:{match['partition']}:iam::{match['account']}:role/{match['role']}"
    return arn


@dataclass(frozen=True)
class StsIdentityResolver:
    """Runs the presigned GetCallerIdentity against an STS endpoint (moto's server in tests)."""

    endpoint: str  # e.g. http://127.0.0.1:5000

    def __call__(self, url: str, cluster_name: str) -> str:
        query = urlsplit(url).query
        credential = dict(parse_qsl(query)).get("X-Amz-Credential", "")
        request = urllib.request.Request(  # noqa: S310 - the endpoint is the test's own moto server
            f"{self.endpoint}/?{query}",
            headers={
                CLUSTER_HEADER: cluster_name,
                # moto's server routes a request by the service named in the credential scope.
                "Authorization": f"AWS4-HMAC-SHA256 Credential={credential}",
            },
        )
        try:
            with urllib.request.urlopen(request, timeout=5) as response:  # noqa: S310
                document = ElementTree.fromstring(response.read())  # noqa: S314 - our own moto server
        except OSError as exc:
            raise TokenRejected(f"STS did not confirm the caller: {exc}") from exc
        arn = next((element.text for element in document.iter() if element.tag.endswith("Arn")), None)
        if not arn:
            raise TokenRejected("STS answered without an ARN")
        return arn
