#!/usr/bin/env bash
# Builds kube-apiserver and etcd from their Go modules (go.mod) into .cache/apiserver/ at the repo
# root (git-ignored). Reuses the binaries when go.mod/go.sum and the sources are unchanged; Go's own
# module and build caches make a rebuild after a fresh clone mostly a link.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
out="$here/../.cache/apiserver"
stamp="$out/.built-from"
want="$(cat "$here/go.mod" "$here/go.sum" "$here"/cmd/*/main.go "$0" | sha256sum | cut -d' ' -f1)"
if [[ -x "$out/kube-apiserver" && -x "$out/etcd" && "$(cat "$stamp" 2>/dev/null)" == "$want" ]]; then
  echo "apiserver: reusing $out (kube-apiserver $("$out/kube-apiserver" --version 2>/dev/null | cut -d' ' -f2))"
  exit 0
fi
command -v go >/dev/null || { echo "apiserver: go not found; cannot build kube-apiserver" >&2; exit 3; }
mkdir -p "$out"
started=$(date +%s)
cd "$here"
go build -trimpath -o "$out/etcd" ./cmd/etcd
version="$(sed -n 's|^\tk8s.io/kubernetes \(v[0-9.]*\)$|\1|p' go.mod)"
minor="$(echo "$version" | cut -d. -f2)"
go build -trimpath -o "$out/kube-apiserver" \
  -ldflags "-X k8s.io/component-base/version.gitVersion=$version -X k8s.io/component-base/version.gitMajor=1 -X k8s.io/component-base/version.gitMinor=$minor" \
  ./cmd/kube-apiserver
echo "$want" > "$stamp"
echo "apiserver: built $("$out/kube-apiserver" --version) and etcd into $out in $(( $(date +%s) - started ))s"
