"""`make test-compat`: the real kube-apiserver tier (`pytest -m apiserver`: the rendered manifest as the only
grant, the admission policy's attacks, the refresher's own runs, `check`, adoption, service accounts, the
API contract) once per kube-apiserver version apiserver/build.sh builds — go.mod's and each of
apiserver/versions/ — then a matrix of tier by version. Exit 1 when any test failed on any version."""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from collections import Counter, defaultdict
from pathlib import Path

from sandbox.real_apiserver import ROOT, VERSION_VARIABLE, default_version

VERSIONS = ROOT / "apiserver" / "versions"


def versions() -> list[str]:
    """go.mod's and each of apiserver/versions/, oldest first."""
    found = {default_version(), *(path.stem for path in VERSIONS.glob("*.mod"))}
    return sorted(found, key=lambda v: tuple(map(int, v[1:].split("."))))


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.compat_matrix", description=__doc__)
    parser.add_argument("versions", nargs="*", help="default: go.mod's and each of apiserver/versions/")
    chosen = parser.parse_args().versions or versions()
    results: dict[str, dict[str, Counter[str]]] = defaultdict(dict)
    timings: dict[str, str] = {}
    with tempfile.TemporaryDirectory() as scratch:
        for kube_version in chosen:
            started = time.monotonic()
            built = subprocess.run(  # noqa: S603 - our own script
                ["bash", str(ROOT / "apiserver" / "build.sh"), kube_version],  # noqa: S607
                capture_output=True,
                text=True,
                check=False,
            )
            print(built.stdout.strip() or built.stderr.strip()[-2000:], flush=True)
            if built.returncode != 0:
                timings[kube_version] = "build failed"
                continue
            reused = "reusing" in built.stdout
            timings[kube_version] = f"{'cached' if reused else 'built'} in {time.monotonic() - started:.0f} s"
            report = Path(scratch) / f"{kube_version}.xml"
            tested = time.monotonic()
            subprocess.run(  # noqa: S603 - pytest, on this repository's tests
                [
                    sys.executable,
                    "-m",
                    "pytest",
                    "-m",
                    "apiserver",
                    "-q",
                    "-p",
                    "no:cacheprovider",
                    f"--junitxml={report}",
                ],
                env=os.environ | {VERSION_VARIABLE: kube_version},
                cwd=ROOT,
                check=False,
            )
            timings[kube_version] += f", tier {time.monotonic() - tested:.0f} s"
            for tier, outcome in outcomes(report):
                results[tier].setdefault(kube_version, Counter())[outcome] += 1
    print_matrix(chosen, results, timings)
    failed = any(counts["failed"] for by_version in results.values() for counts in by_version.values())
    return 1 if failed or "build failed" in timings.values() or not results else 0


def outcomes(report: Path) -> list[tuple[str, str]]:
    """(tier, passed/failed/skipped) for each test case of a JUnit report; the tier is the test module."""
    if not report.exists():
        return []
    found = []
    for case in ET.parse(report).getroot().iter("testcase"):  # noqa: S314 - pytest's own report
        tier = case.get("classname", "?").removeprefix("tests.")  # the module: no test here is in a class
        if case.find("failure") is not None or case.find("error") is not None:
            found.append((tier, "failed"))
        elif case.find("skipped") is not None:
            found.append((tier, "skipped"))
        else:
            found.append((tier, "passed"))
    return found


def print_matrix(chosen: list[str], results: dict[str, dict[str, Counter[str]]], timings: dict[str, str]) -> None:
    print("\n| tier | " + " | ".join(chosen) + " |")
    print("|---|" + "---|" * len(chosen))
    for tier in sorted(results):
        cells = []
        for kube_version in chosen:
            counts = results[tier].get(kube_version)
            if counts is None:
                cells.append("—")
            elif counts["failed"]:
                cells.append(f"**failed** {counts['failed']} of {sum(counts.values())}")
            else:
                cells.append(
                    f"passed {counts['passed']}" + (f" (skipped {counts['skipped']})" if counts["skipped"] else "")
                )
        print(f"| {tier} | " + " | ".join(cells) + " |")
    print("| build, tier time | " + " | ".join(timings.get(v, "—") for v in chosen) + " |")


if __name__ == "__main__":
    raise SystemExit(main())
