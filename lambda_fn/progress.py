"""A progress line for people at a terminal: namespaces done out of the total, and the outcomes so far.

The standard library is enough for one line rewritten with a carriage return. It is shown only when
stderr is a terminal and the output is the table: never in --output json, never redirected, never in
the Lambda (whose handler never asks for it).
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from typing import TextIO

from lambda_fn.models import NamespaceResult

REDRAW_SECONDS = 0.1  # at most ten redraws a second, whatever the pace of the run


class ProgressLine:
    def __init__(self, stream: TextIO) -> None:
        self._stream = stream
        self._counts: Counter[str] = Counter()
        self._lock = threading.Lock()
        self._drawn_at = 0.0
        self._width = 0

    def __call__(self, result: NamespaceResult, done: int, total: int) -> None:
        with self._lock:
            self._counts[result.outcome.value] += 1
            if done < total and time.monotonic() - self._drawn_at < REDRAW_SECONDS:
                return
            self._drawn_at = time.monotonic()
            counts = " ".join(f"{name} {count}" for name, count in sorted(self._counts.items()))
            line = f"{done}/{total} namespaces  {counts}"
            self._stream.write("\r" + line.ljust(self._width))
            self._width = len(line)
            if done == total:
                self._erase()
            self._stream.flush()

    def clear(self) -> None:
        """Erase the line (an interrupted run prints its table next)."""
        with self._lock:
            self._erase()
            self._stream.flush()

    def _erase(self) -> None:
        self._stream.write("\r" + " " * self._width + "\r")  # leave the terminal as it was
