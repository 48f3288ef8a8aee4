"""The garbage collector set for the work a run does, by the front doors (the Lambda's init, the CLI).

A run parses list pages of up to 1,000 objects that hold no reference cycles: at 20,000 namespaces some
30 MB of JSON, millions of containers that reference counting alone frees. At CPython's default
threshold (a collection per 700 new containers) the collector runs thousands of times during a run,
and each full collection walks every object alive, the pages parsed so far included. Measured on
kube-apiserver at 20,000 namespaces (`make bench-apiserver`), a steady-state run's own CPU fell from
2.2-2.9 s to 1.4-1.7 s with the settings below, and a 1,000-secret page decodes in 0.2 s instead of 0.5.
"""

from __future__ import annotations

import gc

# New containers between collections of the youngest generation (CPython's default: 700).
YOUNG_THRESHOLD = 10_000


def tune_for_large_lists() -> None:
    """Collect less often, and never walk what exists now (imports: modules, classes, constants), which
    lives as long as the process anyway."""
    gc.freeze()
    _, middle, old = gc.get_threshold()
    gc.set_threshold(YOUNG_THRESHOLD, middle, old)
