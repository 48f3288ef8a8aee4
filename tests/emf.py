"""The EMF metric documents a run prints (Powertools Metrics), read back as CloudWatch would."""

from __future__ import annotations

import json


def emf_values(printed: str, metric: str) -> list[float]:
    """Every value of `metric` in the EMF documents printed so far, in order."""
    values = []
    for line in printed.splitlines():
        if line.startswith('{"_aws"'):
            values += json.loads(line).get(metric, [])
    return values
