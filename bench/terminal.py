"""Run a process with stdout and stderr on a pseudo-terminal, as a person at a terminal would: what the
CLI's progress line costs is measured this way (it is drawn only when both are terminals)."""

from __future__ import annotations

import os
import pty
import subprocess
import time
from collections.abc import Mapping, Sequence

TIMEOUT_SECONDS = 600.0


def run_on_terminal(argv: Sequence[str], *, env: Mapping[str, str]) -> tuple[int, float, str]:
    """The exit code, the wall seconds and everything the process wrote to its terminal."""
    controller, terminal = pty.openpty()
    written = bytearray()
    try:
        started = time.monotonic()
        process = subprocess.Popen(argv, stdout=terminal, stderr=terminal, env=dict(env))  # noqa: S603 - our CLI
        os.close(terminal)
        terminal = -1
        while time.monotonic() - started < TIMEOUT_SECONDS:
            try:
                chunk = os.read(controller, 65536)
            except OSError:  # EIO: the terminal's last writer has gone
                break
            if not chunk:
                break
            written += chunk
        else:
            process.kill()
        code = process.wait(timeout=TIMEOUT_SECONDS)
        return code, time.monotonic() - started, written.decode(errors="replace")
    finally:
        for descriptor in (controller, terminal):
            if descriptor >= 0:
                os.close(descriptor)


def run_redirected(argv: Sequence[str], *, env: Mapping[str, str]) -> tuple[int, float]:
    """The same run with stdout and stderr on pipes: the exit code and the wall seconds."""
    started = time.monotonic()
    done = subprocess.run(argv, capture_output=True, env=dict(env), timeout=TIMEOUT_SECONDS, check=False)  # noqa: S603
    return done.returncode, time.monotonic() - started
