"""How long a new namespace waits for its pull secret: a simulated clock over measured runs.

Runs start every `period` seconds (the schedule). A namespace created at a uniformly random moment
gets its secret from the first run that starts after it, after that run's measured delay before the
namespace's create (process start, listing, the write). A namespace created while a run is under way
waits for the next one. Seeded, so two reports of the same measurements agree.
"""

from __future__ import annotations

import random
import statistics
from collections.abc import Sequence
from dataclasses import dataclass

SAMPLES = 10_000


@dataclass(frozen=True)
class Coverage:
    period_s: float
    p50_s: float
    p99_s: float
    max_s: float
    in_run_delays_s: tuple[float, ...]  # measured: from a run's start to each new namespace's create


def simulate(period_s: float, in_run_delays_s: Sequence[float], *, seed: int = 12) -> Coverage:
    if not in_run_delays_s:
        raise ValueError("no measured delay to simulate with")
    rng = random.Random(seed)  # noqa: S311 - a simulation, not a secret
    waits = sorted(period_s - rng.uniform(0, period_s) + rng.choice(in_run_delays_s) for _ in range(SAMPLES))
    return Coverage(
        period_s=period_s,
        p50_s=round(statistics.median(waits), 1),
        p99_s=round(waits[int(0.99 * len(waits))], 1),
        max_s=round(period_s + max(in_run_delays_s), 1),
        in_run_delays_s=tuple(round(delay, 2) for delay in in_run_delays_s),
    )
