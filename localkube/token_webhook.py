"""A TokenReview webhook for a real kube-apiserver that authenticates `k8s-aws-v1.` tokens the way
EKS does (localkube.eks_auth), so the refresher's EKS path runs against the real API server.

kube-apiserver --authentication-token-webhook-config-file=<write_webhook_kubeconfig(...)>
"""

from __future__ import annotations

import json
import socket
import ssl
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import trustme

from localkube.eks_auth import EksTokenAuthenticator, TokenRejected
from localkube.kubeconfig import write_kubeconfig


class TokenWebhook:
    """HTTPS server answering TokenReview requests; start with `with TokenWebhook(auth) as hook:`."""

    def __init__(self, authenticator: EksTokenAuthenticator) -> None:
        self.authenticator = authenticator
        self.reviews: list[tuple[bool, str]] = []  # (authenticated, username or reason), for tests
        self._ca = trustme.CA()
        webhook = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                """Silent: tests read `reviews`."""

            def do_POST(self) -> None:
                review = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)))
                answer = webhook.review(review)
                payload = json.dumps(answer).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self._ca.issue_cert("127.0.0.1").configure_cert(context)
        self._server.socket = context.wrap_socket(self._server.socket, server_side=True)
        self._server.socket.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._thread = threading.Thread(target=self._server.serve_forever, name="token-webhook", daemon=True)

    def review(self, review: dict[str, Any]) -> dict[str, Any]:
        token = review.get("spec", {}).get("token", "")
        status: dict[str, Any]
        try:
            entry = self.authenticator.authenticate(token)
        except TokenRejected as exc:
            self.reviews.append((False, str(exc)))
            status = {"authenticated": False, "error": "token rejected"}
        else:
            self.reviews.append((True, entry.username))
            status = {"authenticated": True, "user": {"username": entry.username, "groups": list(entry.groups)}}
        return {
            "apiVersion": review.get("apiVersion", "authentication.k8s.io/v1"),
            "kind": "TokenReview",
            "status": status,
        }

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"https://{host!s}:{port}/"

    def write_kubeconfig(self, path: Path) -> Path:
        """The file --authentication-token-webhook-config-file takes: this server and its CA."""
        return write_kubeconfig(path, server=self.url, ca_pem=bytes(self._ca.cert_pem.bytes()), name="webhook")

    def __enter__(self) -> TokenWebhook:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._server.shutdown()
        self._server.server_close()
