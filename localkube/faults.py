"""Fault rules for tests: answer with a status (and Retry-After), add delay, or drop the connection."""

from __future__ import annotations

import re
import threading
from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass
class FaultRule:
    """Applies to requests whose method and path match; `times` None means every time."""

    method: str | None = None
    path: str | None = None  # a regular expression searched in the path
    status: int | None = None
    retry_after: int | None = None
    delay: float = 0.0
    drop: bool = False
    times: int | None = None
    before: Callable[[], None] | None = None  # runs first, e.g. to delete what the request is about
    # A careless server or proxy: the status's reason and message repeat the request's Authorization header.
    echo_authorization: bool = False

    hits: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def claim(self, method: str, path: str) -> bool:
        """True if this rule applies to the request (and counts it)."""
        if self.method is not None and self.method != method:
            return False
        if self.path is not None and not re.search(self.path, path):
            return False
        with self._lock:
            if self.times is not None and self.hits >= self.times:
                return False
            self.hits += 1
            return True
