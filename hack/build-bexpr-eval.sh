#!/usr/bin/env bash
# Builds hack/bexpr-eval (go-bexpr at the version pinned in hack/bexpr-eval/go.mod, the one the Go
# kfp-operator used), which the artifact filter tests compare the Python filters with.
#
# The binary is cached in a user-level directory keyed by the go-bexpr version and by a hash of
# the sources, the module files and the Go version, so a fresh clone on the same machine (CI)
# reuses it. The script is idempotent: when the cached binary is there it only prints its
# directory.
#
# Usage: hack/build-bexpr-eval.sh            -> prints the directory holding bexpr-eval
# Environment:
#   KFP_OPERATOR_CACHE   cache root (default ${XDG_CACHE_HOME:-~/.cache}/kfp-operator)
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
src="$here/bexpr-eval"

export GOWORK=off GOTOOLCHAIN=local CGO_ENABLED=0 GOFLAGS=-mod=readonly
cache_root="${KFP_OPERATOR_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/kfp-operator}"
# Go's module and build caches live beside the binaries, whatever the caller's GOPATH is.
export GOMODCACHE="${GOMODCACHE:-$cache_root/gomod}"
export GOCACHE="${GOCACHE:-$cache_root/gobuild}"

version="$(awk '$1 == "require" && $2 == "github.com/hashicorp/go-bexpr" { print $3 }' "$src/go.mod")"
[ -n "$version" ] || { echo "[build-bexpr-eval] no go-bexpr version in $src/go.mod" >&2; exit 1; }
key="$(cat "$src/go.mod" "$src/go.sum" "$src/main.go" <(go env GOVERSION) | sha256sum | cut -c1-12)"
out="$cache_root/bin/bexpr-eval-$version-$key"

if [ -x "$out/bexpr-eval" ]; then
  echo "$out"
  exit 0
fi

mkdir -p "$cache_root/bin"
tmp="$(mktemp -d "$cache_root/bin/.build-XXXXXX")"
chmod 755 "$tmp"
trap 'rm -rf "$tmp"' EXIT
log() { echo "[build-bexpr-eval] $*" >&2; }
start=$SECONDS

log "building bexpr-eval with go-bexpr $version"
(cd "$src" && go mod download && go build -trimpath -ldflags "-s -w" -o "$tmp/bexpr-eval" .)
# Another build may have installed the same binary meanwhile; either copy will do.
if ! mv -T "$tmp" "$out" 2>/dev/null; then
  [ -x "$out/bexpr-eval" ] || { log "could not install $out"; exit 1; }
fi
trap - EXIT
rm -rf "$tmp"
log "done in $((SECONDS - start))s: $out"
echo "$out"
