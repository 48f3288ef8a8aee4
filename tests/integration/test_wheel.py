"""The CLI as people install it: the wheel, built here, holds lambda_fn only; installed into a fresh
venv, its `ecr-token-refresher` command refreshes a cluster; and the host-timer recipe's systemd units
and cron line run that command as written."""

from __future__ import annotations

import configparser
import json
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from packaging.utils import canonicalize_name

from localkube import LocalKube
from tests.locks import locked

ROOT = Path(__file__).parents[2]
LOCK = ROOT / "lambda_fn" / "requirements.lock"


def run(*argv: str | Path, **options: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(a) for a in argv], capture_output=True, text=True, check=True, timeout=600, **options)  # type: ignore[call-overload,no-any-return]  # noqa: S603


def cron(command: str) -> subprocess.CompletedProcess[str]:
    """As cron runs a line: /bin/sh, a bare PATH, nothing else in the environment."""
    environment = {"PATH": "/usr/bin:/bin"}
    return subprocess.run(["/bin/sh", "-c", command], capture_output=True, text=True, check=False, env=environment)  # noqa: S603


@pytest.fixture(scope="module")
def source(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tracked files only, as a fresh clone has them (setuptools builds in the tree; a stale build/ would leak)."""
    source = tmp_path_factory.mktemp("source")
    for name in run("git", "ls-files", "-co", "--exclude-standard", cwd=ROOT).stdout.split():
        if (ROOT / name).is_file():
            (source / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, source / name)
    return source


@pytest.fixture(scope="module")
def wheel(source: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("dist")
    run(sys.executable, "-m", "pip", "wheel", source, "--no-deps", "--no-build-isolation", "-q", "-w", out)
    (built,) = out.glob("ecr_token_refresher-*.whl")
    return built


@pytest.fixture(scope="module")
def host() -> Iterator[Path]:
    """A folder every user may traverse, as /opt and /usr/local are (pytest's own tmp root is 0700)."""
    folder = Path(tempfile.mkdtemp(prefix="host-"))
    folder.chmod(0o755)
    yield folder
    shutil.rmtree(folder)


@pytest.fixture(scope="module")
def installed(source: Path, host: Path) -> Path:
    """The documented host install (docs/clusters.md), as written: deploy/host/install.sh from a clean tree."""
    environment = dict(os.environ, PREFIX=str(host / "opt"), BINDIR=str(host / "bin"), PYTHON=sys.executable)
    run(source / "deploy" / "host" / "install.sh", env=environment)
    return host / "bin" / "ecr-token-refresher"


def test_the_wheel_holds_lambda_fn_its_version_and_licence_only(wheel: Path) -> None:
    names = zipfile.ZipFile(wheel).namelist()
    top = {name.split("/")[0] for name in names}
    assert top == {"lambda_fn", wheel.name.split("-py3")[0] + ".dist-info"}
    assert not [name for name in names if name.startswith(("tests", "infra", "sandbox", "localkube", "bench", "demo"))]
    assert not [name for name in names if name.endswith((".txt", ".lock")) and name.startswith("lambda_fn/")]
    metadata = zipfile.ZipFile(wheel).read(f"{wheel.name.split('-py3')[0]}.dist-info/METADATA").decode()
    assert "License-Expression: MIT" in metadata
    assert "Requires-Dist: kubernetes==37.0.1" in metadata
    assert "Requires-Dist: aws-cdk-lib" not in metadata and "Requires-Dist: pytest" not in metadata  # noqa: PT018


def test_the_installed_command_prints_its_version(installed: Path) -> None:
    from lambda_fn import __version__  # noqa: PLC0415

    assert run(installed, "--version").stdout.strip() == f"ecr-token-refresher {__version__}"


def test_the_host_install_holds_exactly_the_runtime_lock_and_the_package(installed: Path) -> None:
    """Nothing resolved at install time: every package at its pin, no pip or setuptools left to drift."""
    from lambda_fn import __version__  # noqa: PLC0415

    python = installed.resolve().parent / "python"
    listing = (
        "import json, importlib.metadata as m; print(json.dumps([[d.name, d.version] for d in m.distributions()]))"
    )
    packages = {canonicalize_name(name): version for name, version in json.loads(run(python, "-c", listing).stdout)}
    assert packages == locked(LOCK) | {"ecr-token-refresher": __version__}


def test_the_host_install_is_root_owned_outside_any_home(installed: Path, host: Path) -> None:
    """ProtectHome=yes hides /home, /root and /run/user from the service; its user may not change the code."""
    target = installed.resolve()
    assert not target.is_relative_to(Path.home())
    assert not str(target).startswith(("/home/", "/run/user/"))
    assert target.is_relative_to(host / "opt")
    writable = [p for p in (host / "opt").rglob("*") if p.stat().st_uid != 0 or p.stat().st_mode & 0o022]
    assert writable == [], writable[:3]


def test_the_units_execstart_runs_as_an_unprivileged_user(installed: Path, kube: LocalKube, host: Path) -> None:
    """The unit's own command line, run as nobody (not root, as User= would) with the unit's Environment=,
    against a root-owned install: it refreshes, so nothing it needs sits where the service user cannot read."""
    service = unit("ecr-token-refresher.service")["Service"]
    etc = host / "etc"
    etc.mkdir()
    kube.write_kubeconfig(etc / "kubeconfig", token="admin-token")
    (etc / "kubeconfig").chmod(0o644)
    command = service["ExecStart"].replace("/usr/local/bin/ecr-token-refresher", str(installed))
    command = command.replace("/etc/ecr-token-refresher", str(etc))
    environment = {"PATH": "/usr/bin:/bin", "NAMESPACES": "team-*"} | {
        k: v for k, v in os.environ.items() if k.startswith("AWS_") and k != "AWS_CONFIG_FILE"
    }
    as_nobody = ["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups", "--no-new-privs"]
    ran = subprocess.run([*as_nobody, *command.split()], capture_output=True, text=True, check=False, env=environment)  # noqa: S603
    assert ran.returncode == 0, ran.stderr[-2000:]
    assert json.loads(ran.stdout)["counts"]["created"] == 2


def test_the_installed_command_refreshes_a_cluster(installed: Path, kube: LocalKube, tmp_path: Path) -> None:
    kubeconfig = kube.write_kubeconfig(tmp_path / "kubeconfig", token="admin-token")
    argv: list[str | Path] = [
        installed,
        "refresh",
        "--kubeconfig",
        kubeconfig,
        "--namespace",
        "team-*",
        "--output",
        "json",
    ]
    first = json.loads(run(*argv, env=dict(os.environ)).stdout)
    assert first["counts"]["created"] == 2
    again = json.loads(run(*argv, env=dict(os.environ)).stdout)
    assert again["counts"]["unchanged"] == 2


def unit(name: str) -> configparser.ConfigParser:
    """A unit file as systemd reads its sections and keys (no interpolation; a key may repeat)."""
    parser = configparser.ConfigParser(interpolation=None, strict=False)
    parser.optionxform = str  # type: ignore[assignment,method-assign] # systemd keys are case-sensitive
    parser.read_string((ROOT / "deploy" / "host" / name).read_text())
    return parser


def test_the_systemd_units_say_what_the_readme_promises() -> None:
    """Parsed, where systemd-analyze may be missing: a oneshot service running the installed command as
    its own user with no static keys, and a timer every 5 minutes and after boot that starts it."""
    service, timer = unit("ecr-token-refresher.service"), unit("ecr-token-refresher.timer")
    assert service["Service"]["Type"] == "oneshot"
    assert service["Service"]["ExecStart"].startswith("/usr/local/bin/ecr-token-refresher refresh --kubeconfig ")
    assert service["Service"]["User"] == "ecr-token-refresher"
    assert "AWS_SECRET_ACCESS_KEY" not in (ROOT / "deploy" / "host" / "env.example").read_text()
    assert (timer["Timer"]["OnUnitActiveSec"], timer["Timer"]["OnBootSec"]) == ("5min", "2min")
    assert "Persistent" not in timer["Timer"]  # calendar timers only: it would promise a catch-up it never makes
    assert timer["Install"]["WantedBy"] == "timers.target"


def test_the_systemd_units_verify_against_the_installed_command(installed: Path, tmp_path: Path) -> None:
    if shutil.which("systemd-analyze") is None:
        pytest.skip("systemd-analyze is not installed (the units are parsed by the test above)")
    units = ROOT / "deploy" / "host"
    service = (units / "ecr-token-refresher.service").read_text()
    assert "ExecStart=/usr/local/bin/ecr-token-refresher refresh" in service
    (tmp_path / "ecr-token-refresher.service").write_text(
        service.replace("/usr/local/bin/ecr-token-refresher", str(installed))
    )
    shutil.copy(units / "ecr-token-refresher.timer", tmp_path)
    verified = subprocess.run(  # noqa: S603
        ["systemd-analyze", "verify", *sorted(str(p) for p in tmp_path.glob("ecr-token-refresher.*"))],  # noqa: S607
        capture_output=True,
        text=True,
        check=False,
        cwd=tmp_path,
    )
    assert verified.returncode == 0, verified.stderr


def test_the_cron_line_runs_quietly_when_all_is_well_and_speaks_when_not(
    installed: Path, kube: LocalKube, tmp_path: Path
) -> None:
    """As cron runs it: /bin/sh, the env file read, the JSON printed only when the run fails."""
    etc = tmp_path / "etc"
    etc.mkdir()
    kube.write_kubeconfig(etc / "kubeconfig", token="admin-token")
    (etc / "env").write_text(
        "NAMESPACES=team-*\n" + "".join(f"{k}={v}\n" for k, v in os.environ.items() if k.startswith("AWS_"))
    )
    crontab = (ROOT / "deploy" / "host" / "crontab").read_text().splitlines()
    line = next(entry for entry in crontab if entry.startswith("*/5"))
    command = " ".join(line.split()[5:])
    command = command.replace("/etc/ecr-token-refresher", str(etc)).replace(
        "/usr/local/bin/ecr-token-refresher", str(installed)
    )
    command = command.replace("/tmp/ecr-token-refresher.json", str(tmp_path / "last.json"))  # noqa: S108
    quiet = cron(command)
    assert (quiet.returncode, quiet.stdout, quiet.stderr) == (0, "", "")
    assert kube.store.find("secrets", "team-a", "regcred") is not None
    (etc / "env").write_text((etc / "env").read_text().replace("NAMESPACES=team-*", "NAMESPACES=Bad_Name"))
    loud = cron(command)
    assert "NAMESPACES: 'Bad_Name' is not a namespace name" in loud.stdout
