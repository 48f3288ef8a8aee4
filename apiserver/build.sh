#!/usr/bin/env bash
# build.sh [VERSION]: builds kube-apiserver and etcd from their Go modules into
# .cache/apiserver/<VERSION>/ at the repo root (git-ignored). VERSION is a k8s.io/kubernetes version:
# none, or go.mod's, builds from go.mod (the version `make test` runs); another builds the same cmd/
# sources from versions/<VERSION>.mod and .sum with `go build -modfile`. Reuses the binaries when the
# module file, its sums and the sources are unchanged; Go's own module and build caches make a
# rebuild after a fresh clone mostly a link.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
default="$(sed -n 's|^\tk8s.io/kubernetes \(v[0-9.]*\)$|\1|p' "$here/go.mod")"
version="${1:-$default}"
modfile="$here/go.mod"
if [[ "$version" != "$default" ]]; then
  modfile="$here/versions/$version.mod"
  [[ -f "$modfile" ]] || { echo "apiserver: no $modfile; versions: $default $(ls "$here/versions" | sed -n 's/\.mod$//p' | tr '\n' ' ')" >&2; exit 2; }
fi
sums="${modfile%.mod}.sum"
out="$here/../.cache/apiserver/$version"
stamp="$out/.built-from"
want="$(cat "$modfile" "$sums" "$here"/cmd/*/main.go "$0" | sha256sum | cut -d' ' -f1)"
if [[ -x "$out/kube-apiserver" && -x "$out/etcd" && "$(cat "$stamp" 2>/dev/null)" == "$want" ]]; then
  echo "apiserver: reusing $out (kube-apiserver $("$out/kube-apiserver" --version 2>/dev/null | cut -d' ' -f2))"
  exit 0
fi
command -v go >/dev/null || { echo "apiserver: go not found; cannot build kube-apiserver" >&2; exit 3; }
mkdir -p "$out"
started=$(date +%s)
cd "$here"
go build -modfile="$modfile" -trimpath -o "$out/etcd" ./cmd/etcd
minor="$(echo "$version" | cut -d. -f2)"
go build -modfile="$modfile" -trimpath -o "$out/kube-apiserver" \
  -ldflags "-X k8s.io/component-base/version.gitVersion=$version -X k8s.io/component-base/version.gitMajor=1 -X k8s.io/component-base/version.gitMinor=$minor" \
  ./cmd/kube-apiserver
echo "$want" > "$stamp"
echo "apiserver: built $("$out/kube-apiserver" --version) and etcd into $out in $(( $(date +%s) - started ))s"
