"""The figure of docs/performance.md: seconds per run against namespaces, one line per contestant and run kind."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # files only, no display
import matplotlib.pyplot as plt

STYLES: dict[str, dict[str, Any]] = {
    "kubectl delete+create": {"color": "#c0392b", "marker": "s"},
    "refresher, first run": {"color": "#2471a3", "marker": "o"},
    "refresher, refresh (--force)": {"color": "#7d3c98", "marker": "^"},
    "refresher, fresh run": {"color": "#229954", "marker": "D"},
}


def plot(rows: Sequence[dict[str, Any]], path: Path, *, machine: str) -> Path:
    """Wall seconds per run (log) against N (log), at each latency; written as a PNG."""
    lines: dict[tuple[str, int], list[tuple[int, float]]] = defaultdict(list)
    for row in rows:
        lines[row["contestant"], row["latency_ms"]].append((row["namespaces"], row["wall_s"]))
    figure, axes = plt.subplots(figsize=(8, 5), dpi=110)
    for (contestant, latency), points in sorted(lines.items(), key=lambda item: (item[0][1], item[0][0])):
        sizes, seconds = zip(*sorted(points), strict=True)
        style = STYLES.get(contestant, {})
        axes.plot(
            sizes,
            seconds,
            linestyle="-" if latency else ":",
            label=f"{contestant}, {latency} ms",
            color=style.get("color"),
            marker=style.get("marker"),
        )
    axes.set_xscale("log")
    axes.set_yscale("log")
    axes.set_xlabel("namespaces")
    axes.set_ylabel("seconds per run (wall, process start included)")
    axes.set_title("ecr-token-refresher vs the kubectl cron recipe (make bench)")
    axes.grid(True, which="both", alpha=0.3)
    axes.legend(fontsize=7, loc="upper left")
    figure.text(0.99, 0.01, machine, ha="right", fontsize=6, color="grey")
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path)
    plt.close(figure)
    return path
