#!/usr/bin/env bash
# Installs the CLI on a host from a clone of this repository, with nothing resolved at install time:
# a root-owned venv ($PREFIX) that holds exactly lambda_fn/requirements.lock (every file checked against
# its hash), then this package, built with the hashed setuptools pin, without dependencies, and the
# command linked into $BINDIR. A service user can run it (nothing under a home directory) and cannot
# change it. Run again to upgrade: the venv is made anew.
set -euo pipefail
prefix=${PREFIX:-/opt/ecr-token-refresher}
bindir=${BINDIR:-/usr/local/bin}
python=${PYTHON:-python3}
root=$(cd "$(dirname "$0")/../.." && pwd)

"$python" -c 'import sys; sys.exit(sys.version_info < (3, 11))' \
  || { echo "install.sh: $python is older than 3.11; give PYTHON=python3.11 (or newer)" >&2; exit 2; }
tools=$(mktemp -d)
trap 'rm -rf "$tools"' EXIT
# uv, at the hashed pin, installed by the interpreter's own pip without resolving anything.
"$python" -m venv "$tools/venv"
"$tools/venv/bin/python" -m pip install --quiet --disable-pip-version-check --no-deps --require-hashes \
  -r "$root/installer.lock"
uv="$tools/venv/bin/uv"
# The wheel is built from the sdist (uv's default), so nothing stale in the clone (build/) can leak in.
"$uv" build --quiet --out-dir "$tools/dist" --build-constraints "$root/build.lock" --require-hashes "$root"
"$python" -m venv --clear --without-pip "$prefix"
"$uv" pip sync --quiet --python "$prefix/bin/python" --require-hashes "$root/lambda_fn/requirements.lock"
"$uv" pip install --quiet --python "$prefix/bin/python" --no-deps "$tools"/dist/ecr_token_refresher-*.whl
# uv leaves a world-writable .lock in the venv; nothing there may be writable but by root.
chmod -R go-w "$prefix"
mkdir -p "$bindir"
ln -sfn "$prefix/bin/ecr-token-refresher" "$bindir/ecr-token-refresher"
echo "installed: $bindir/ecr-token-refresher -> $prefix ($("$bindir/ecr-token-refresher" --version))" >&2
