"""Run a contestant's process and measure its own peak memory.

A process started straight from the bench inherits the bench's high-water mark (Linux carries
ru_maxrss across fork and exec: a child of a 400 MB parent reports 413 MB), so every contestant runs
under GNU time, whose own child starts from time's few megabytes: `%M` is the contestant's own peak.
"""

from __future__ import annotations

import subprocess
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

GNU_TIME = "/usr/bin/time"


@dataclass(frozen=True)
class Measured:
    returncode: int
    stdout: str
    stderr: str
    peak_mb: float


def run_measured(argv: Sequence[str], *, stdin: str = "", env: Mapping[str, str] | None = None) -> Measured:
    if not Path(GNU_TIME).exists():
        raise SystemExit(f"{GNU_TIME} is needed to measure each contestant's own memory: apt-get install time")
    with tempfile.NamedTemporaryFile("r") as peak:
        completed = subprocess.run(  # noqa: S603 - GNU time and our contestants
            [GNU_TIME, "-f", "%M", "-o", peak.name, *argv],
            input=stdin,
            capture_output=True,
            text=True,
            env=dict(env) if env is not None else None,
            check=False,
        )
        kilobytes = int(peak.read().strip().splitlines()[-1])
    return Measured(completed.returncode, completed.stdout, completed.stderr, round(kilobytes / 1024, 1))
