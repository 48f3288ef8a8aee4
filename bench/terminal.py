"""Run a process with stdout and stderr on a pseudo-terminal, as a person at a terminal would: what the
CLI's progress line costs is measured this way (it is drawn only when both are terminals)."""

from __future__ import annotations

import os
import pty
import subprocess
import time
from collections.abc import Mapping, Sequence


def run_on_terminal(argv: Sequence[str], *, env: Mapping[str, str]) -> tuple[int, float, str]:
    """The exit code, the wall seconds and everything the process wrote to its terminal."""
    controller, terminal = pty.openpty()
    started = time.monotonic()
    process = subprocess.Popen(argv, stdout=terminal, stderr=terminal, env=dict(env))  # noqa: S603 - our CLI
    os.close(terminal)
    written = bytearray()
    while True:
        try:
            chunk = os.read(controller, 65536)
        except OSError:  # EIO: the terminal's last writer has gone
            break
        if not chunk:
            break
        written += chunk
    code = process.wait()
    wall = time.monotonic() - started
    os.close(controller)
    return code, wall, written.decode(errors="replace")
