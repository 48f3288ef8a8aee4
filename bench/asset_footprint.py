"""The Lambda asset's size and the bundled handler's cold import time, with and without trimming
and precompiled bytecode. Bundles for this machine's platform (x86_64) so the runtime's Python from
pyenv can import it; the aarch64 asset `cdk synth` builds has the same files but for its wheels.

    python -m bench.asset_footprint        (make asset)
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

from infra import bundling
from infra.refresher import RUNTIME
from sandbox.eks_cluster import CLUSTER_NAME, local_eks_cluster
from sandbox.moto_aws import moto_aws

PLATFORM = "manylinux2014_x86_64"
COLD_IMPORT = "import time; t = time.perf_counter(); import lambda_fn.handler; print(time.perf_counter() - t)"
RUNS = 7


def size_mb(folder: Path) -> tuple[float, float]:
    """(unzipped, zipped) in MB, zipped as Lambda stores it (deflate)."""
    files = [path for path in folder.rglob("*") if path.is_file()]
    unzipped = sum(path.stat().st_size for path in files)
    archive = folder.with_suffix(".zip")
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as zipped:
        for path in files:
            zipped.write(path, path.relative_to(folder))
    return round(unzipped / 1e6, 1), round(archive.stat().st_size / 1e6, 1)


def cold_import_seconds(interpreter: str, bundle: Path) -> float:
    """Median of RUNS fresh interpreters importing the handler from the bundle alone (-S: no
    site-packages; no bytecode written, as /var/task is read-only)."""
    env = {"PYTHONPATH": str(bundle), "PYTHONDONTWRITEBYTECODE": "1", "POWERTOOLS_TRACE_DISABLED": "1"}
    times = [
        float(
            subprocess.run(  # noqa: S603 - the runtime's interpreter, our bundle
                [interpreter, "-S", "-c", COLD_IMPORT], capture_output=True, text=True, env=env, check=True
            ).stdout
        )
        for _ in range(RUNS)
    ]
    return round(statistics.median(times), 3)


def run_shipped_bundle(interpreter: str, bundle: Path) -> str:
    """The trimmed bundle, under the runtime's Python, refreshes a local EKS cluster end to end:
    proof that nothing it needs was trimmed away."""
    with moto_aws() as aws:
        credentials = aws.assume_refresher_role()
        kube = local_eks_cluster(aws, credentials)
        try:
            kube.store.add_namespace("default")
            env = aws.environment(credentials) | {
                "PYTHONPATH": str(bundle),
                "PYTHONDONTWRITEBYTECODE": "1",
                "POWERTOOLS_TRACE_DISABLED": "1",
            }
            completed = subprocess.run(  # noqa: S603 - the runtime's interpreter, our bundle
                [interpreter, "-S", "-m", "lambda_fn", "refresh", "--cluster", CLUSTER_NAME, "--output", "json"],
                capture_output=True,
                text=True,
                env=env,
                check=False,
                timeout=120,
            )
        finally:
            kube.stop()
    if completed.returncode != 0:
        raise SystemExit(f"the shipped bundle failed:\n{completed.stderr[-2000:]}")
    counts = json.loads(completed.stdout)["counts"]
    return f"ok, {counts}"


def main() -> int:
    version = RUNTIME.name.removeprefix("python")
    interpreter = bundling.runtime_interpreter(version)
    if interpreter is None:
        print(f"no python{version} on this machine (pyenv install {version}); cannot measure", file=sys.stderr)
        return 2
    results: dict[str, dict[str, float]] = {}
    with tempfile.TemporaryDirectory() as scratch:
        root = Path(scratch)
        variants = {
            "untrimmed, no .pyc": {"trim": False, "precompile": False},
            "trimmed, no .pyc": {"trim": True, "precompile": False},
            "trimmed + .pyc (shipped)": {"trim": True, "precompile": True},
        }
        for index, (name, options) in enumerate(variants.items()):
            folder = root / f"variant-{index}"
            bundling.bundle_into(folder, python_version=version, platform=PLATFORM, **options)
            unzipped, zipped = size_mb(folder)
            results[name] = {
                "unzipped_mb": unzipped,
                "zipped_mb": zipped,
                "cold_import_s": cold_import_seconds(interpreter, folder),
            }
        smoke = run_shipped_bundle(interpreter, root / f"variant-{len(variants) - 1}")
    print(f"runtime python{version} ({interpreter}), platform {PLATFORM}, median of {RUNS} cold imports")
    print(f"{'variant':<28} {'unzipped MB':>11} {'zipped MB':>9} {'cold import s':>13}")
    for name, row in results.items():
        print(f"{name:<28} {row['unzipped_mb']:>11} {row['zipped_mb']:>9} {row['cold_import_s']:>13}")
    print(f"shipped bundle, EKS mode against moto + localkube: {smoke}")
    Path("bench/results").mkdir(parents=True, exist_ok=True)
    Path("bench/results/asset_footprint.json").write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
