"""The Lambda runtime, locally: AWS's Runtime Interface Emulator running a function's code under
awslambdaric on the runtime's Python, with the environment Lambda gives it.

Built from the Go module (RIE) and PyPI (awslambdaric) into .cache/, once. Invocations are serial
(two at once crash the emulator); a handler's exception and a timeout both answer 200, told apart by
the body.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import time
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from infra.bundling import runtime_interpreter
from sandbox.real_apiserver import free_port

ROOT = Path(__file__).resolve().parent.parent
CACHE = ROOT / ".cache" / "lambda-runtime"
RIE_MODULE = "github.com/aws/aws-lambda-runtime-interface-emulator/cmd/aws-lambda-rie"
RIE_VERSION = "v0.0.0-20261030222936-bef5c4ba774d"
AWSLAMBDARIC = "awslambdaric==4.2.2"
INVOCATIONS = "/2015-03-31/functions/function/invocations"


def emulator() -> Path:
    """The emulator binary, built with `go install` on first use (~1 minute)."""
    binary = CACHE / "bin" / "aws-lambda-rie"
    if not binary.exists():
        subprocess.run(  # noqa: S603 - go from PATH, a pinned module version
            ["go", "install", f"{RIE_MODULE}@{RIE_VERSION}"],  # noqa: S607
            env=os.environ | {"GOBIN": str(binary.parent), "CGO_ENABLED": "0"},
            check=True,
        )
    return binary


def runtime_python(version: str) -> Path:
    """A venv of the runtime's Python with awslambdaric in it, as the Lambda runtime's image has."""
    venv = CACHE / f"python{version}"
    python = venv / "bin" / "python"
    if not python.exists():
        interpreter = runtime_interpreter(version)
        if interpreter is None:
            raise RuntimeError(f"no python{version} here (pyenv install {version}): the runtime cannot be emulated")
        subprocess.run([interpreter, "-m", "venv", str(venv)], check=True)  # noqa: S603
        subprocess.run([str(python), "-m", "pip", "install", "-q", AWSLAMBDARIC], check=True)  # noqa: S603
    return python


@dataclass(frozen=True)
class Invocation:
    status: int
    body: Any  # the handler's JSON result, or the error document ({"errorType", "errorMessage"}) or text
    seconds: float

    @property
    def error_type(self) -> str | None:
        return self.body.get("errorType") if isinstance(self.body, dict) else None

    @property
    def timed_out(self) -> bool:
        return isinstance(self.body, str) and "Task timed out" in self.body


class LambdaRuntime:
    """`with LambdaRuntime(task_root, handler, environment, python_version=...) as runtime:` —
    runtime.invoke(event), one at a time; runtime.output() is everything the runtime printed."""

    def __init__(
        self, task_root: Path, handler: str, environment: Mapping[str, str], *, python_version: str, log: Path
    ) -> None:
        self.task_root = task_root
        self.handler = handler
        self.environment = dict(environment)
        self.python = runtime_python(python_version)
        self.binary = emulator()
        self.log = log
        self.port = free_port()
        self._process: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> LambdaRuntime:
        # Only what Lambda gives: nothing of this process's environment leaks into the function.
        environment = {
            "PATH": "/usr/local/bin:/usr/bin:/bin",
            "LANG": "C.UTF-8",
            "LAMBDA_TASK_ROOT": str(self.task_root),
            "PYTHONPATH": str(self.task_root),
            **self.environment,
        }
        with self.log.open("wb") as output:
            self._process = subprocess.Popen(  # noqa: S603 - the emulator and the runtime's Python
                [
                    str(self.binary),
                    "--runtime-interface-emulator-address",
                    f"127.0.0.1:{self.port}",
                    "--runtime-api-address",
                    f"127.0.0.1:{free_port()}",
                    str(self.python),
                    "-m",
                    "awslambdaric",
                    self.handler,
                ],
                cwd=self.task_root,
                env=environment,
                stdout=output,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), 0.2).close()
            except OSError:
                time.sleep(0.05)
            else:
                return self
        raise RuntimeError(f"the emulator did not listen: {self.output()}")

    def invoke(self, event: Any, *, timeout: float = 120) -> Invocation:
        request = urllib.request.Request(
            f"http://127.0.0.1:{self.port}{INVOCATIONS}", data=json.dumps(event).encode(), method="POST"
        )
        started = time.monotonic()
        with urllib.request.urlopen(request, timeout=timeout) as answer:  # noqa: S310
            status, text = answer.status, answer.read().decode()
        try:
            body: Any = json.loads(text)
        except ValueError:
            body = text
        return Invocation(status, body, time.monotonic() - started)

    def output(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def __exit__(self, *_: object) -> None:
        # SIGTERM: the emulator stops the runtime with it (a SIGKILL would orphan the runtime).
        if self._process is not None:
            self._process.send_signal(signal.SIGTERM)
            try:
                self._process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._process.kill()
