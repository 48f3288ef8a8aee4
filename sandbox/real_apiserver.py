"""A real kube-apiserver + etcd (built by apiserver/build.sh) on loopback, with TLS, RBAC, a static
admin token and the EKS-style token webhook: the ground truth the local API server is held to."""

from __future__ import annotations

import os
import random
import re
import shutil
import socket
import ssl
import subprocess
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import IO

import trustme
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from localkube.eks_auth import EksTokenAuthenticator
from localkube.token_webhook import TokenWebhook

ROOT = Path(__file__).resolve().parent.parent
# Which kube-apiserver to run: a k8s.io/kubernetes version that apiserver/build.sh builds (go.mod's, or one
# of apiserver/versions/); unset, go.mod's. `make test-compat` runs the tier once per version.
VERSION_VARIABLE = "KUBE_APISERVER_VERSION"
ADMIN_TOKEN = "real-admin-token"  # noqa: S105 - the local test cluster's admin
NOBODY_TOKEN = "real-nobody-token"  # noqa: S105


def version() -> str:
    """The kube-apiserver version this process runs."""
    return os.environ.get(VERSION_VARIABLE) or default_version()


def default_version() -> str:
    """apiserver/go.mod's: the one `make test` runs."""
    found = re.search(r"^\tk8s\.io/kubernetes (v[0-9.]+)$", (ROOT / "apiserver" / "go.mod").read_text(), re.MULTILINE)
    assert found is not None, "apiserver/go.mod requires k8s.io/kubernetes"  # noqa: S101 - our own file
    return found[1]


def binaries() -> Path:
    return ROOT / ".cache" / "apiserver" / version()


def build() -> Path:
    """Build (or reuse) the binaries; raises CalledProcessError with Go's output when that fails."""
    subprocess.run(["bash", str(ROOT / "apiserver" / "build.sh"), version()], check=True)  # noqa: S603, S607
    return binaries()


def free_port() -> int:
    """A port free now, below the kernel's ephemeral range: a port the kernel hands out (bind to 0) may be
    taken by an outgoing connection (kube-apiserver's own, to etcd) before the server binds it."""
    low = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    while True:
        port = random.randrange(10000, low)  # noqa: S311 - not a secret
        with socket.socket() as probe:
            try:
                probe.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port


class RealKube:
    """`with RealKube(authenticator) as kube:` — kube.url, kube.ca_pem, ADMIN_TOKEN for the admin."""

    def __init__(self, authenticator: EksTokenAuthenticator | None = None) -> None:
        self.authenticator = authenticator
        self._folder = Path(tempfile.mkdtemp(prefix="realkube-"))
        self._webhook = TokenWebhook(authenticator) if authenticator is not None else None
        self._processes: list[subprocess.Popen[bytes]] = []
        self._logs: list[IO[bytes]] = []
        self._ca = trustme.CA()
        self._client_ca = trustme.CA()  # signs client certificates (`client_certificate`)
        self.port = free_port()
        self.startup_seconds = 0.0

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    @property
    def ca_pem(self) -> bytes:
        return bytes(self._ca.cert_pem.bytes())

    def client_certificate(self, user: str, group: str) -> tuple[bytes, bytes]:
        """(certificate, key) in PEM that kube-apiserver authenticates as `user` in `group` (CN, O)."""
        leaf = self._client_ca.issue_cert("client.invalid", common_name=user, organization_name=group)
        return leaf.cert_chain_pems[0].bytes(), leaf.private_key_pem.bytes()

    @property
    def reviews(self) -> list[tuple[bool, str]]:
        return self._webhook.reviews if self._webhook else []

    def __enter__(self) -> RealKube:
        started = time.monotonic()
        try:
            self._start()
        except BaseException:
            self.__exit__()
            raise
        self.startup_seconds = time.monotonic() - started
        return self

    def _start(self) -> None:
        folder = self._folder
        serving = self._ca.issue_cert("127.0.0.1", "localhost")
        serving.cert_chain_pems[0].write_to_path(str(folder / "serving.crt"))
        serving.private_key_pem.write_to_path(str(folder / "serving.key"))
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        (folder / "sa.key").write_bytes(
            key.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
            )
        )
        (folder / "sa.pub").write_bytes(
            key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        )
        # The admin, and a user bound to nothing (for 403 answers).
        tokens = [f'{ADMIN_TOKEN},admin,admin,"system:masters"', f"{NOBODY_TOKEN},nobody,nobody"]
        (folder / "tokens.csv").write_text("\n".join(tokens) + "\n")
        self._client_ca.cert_pem.write_to_path(str(folder / "client-ca.crt"))
        etcd_port, etcd_peer = free_port(), free_port()
        self._spawn(
            [
                str(binaries() / "etcd"),
                "--data-dir",
                str(folder / "etcd"),
                "--listen-client-url",
                f"http://127.0.0.1:{etcd_port}",
                "--listen-peer-url",
                f"http://127.0.0.1:{etcd_peer}",
            ],
            "etcd.log",
        )
        arguments = [
            str(binaries() / "kube-apiserver"),
            f"--etcd-servers=http://127.0.0.1:{etcd_port}",
            "--bind-address=127.0.0.1",
            f"--secure-port={self.port}",
            f"--tls-cert-file={folder / 'serving.crt'}",
            f"--tls-private-key-file={folder / 'serving.key'}",
            "--authorization-mode=RBAC",
            "--anonymous-auth=false",
            f"--token-auth-file={folder / 'tokens.csv'}",
            f"--client-ca-file={folder / 'client-ca.crt'}",
            f"--service-account-key-file={folder / 'sa.pub'}",
            f"--service-account-signing-key-file={folder / 'sa.key'}",
            "--service-account-issuer=https://kubernetes.default.svc",
            "--service-cluster-ip-range=10.96.0.0/24",
            "--enable-priority-and-fairness=false",
            "--v=0",
        ]
        if self._webhook is not None:
            self._webhook.__enter__()
            webhook_config = self._webhook.write_kubeconfig(folder / "webhook.kubeconfig")
            arguments.append(f"--authentication-token-webhook-config-file={webhook_config}")
        self._spawn(arguments, "apiserver.log")
        self._wait_ready()

    def _spawn(self, argv: list[str], log_name: str) -> None:
        log = (self._folder / log_name).open("wb")
        self._logs.append(log)
        self._processes.append(subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT))  # noqa: S603

    def _wait_ready(self, timeout: float = 90.0) -> None:
        context = ssl.create_default_context(cadata=self.ca_pem.decode())
        request = urllib.request.Request(f"{self.url}/readyz", headers={"Authorization": f"Bearer {ADMIN_TOKEN}"})  # noqa: S310
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for process in self._processes:
                if process.poll() is not None:
                    raise RuntimeError(f"{process.args!r} exited: {self.log_tail()}")
            try:
                with urllib.request.urlopen(request, context=context, timeout=2) as answer:  # noqa: S310
                    if answer.status == 200:
                        return
            except OSError:
                pass
            time.sleep(0.3)
        raise TimeoutError(f"kube-apiserver not ready after {timeout}s: {self.log_tail()}")

    def log_tail(self) -> str:
        return "\n".join(
            f"--- {log.name}\n" + log.read_text(errors="replace")[-1500:] for log in sorted(self._folder.glob("*.log"))
        )

    def __exit__(self, *_: object) -> None:
        for process in reversed(self._processes):
            process.terminate()
        for process in self._processes:
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
        if self._webhook is not None:
            self._webhook.__exit__()
        for log in self._logs:
            log.close()
        shutil.rmtree(self._folder, ignore_errors=True)
