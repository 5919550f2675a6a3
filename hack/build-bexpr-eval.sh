#!/usr/bin/env bash
# Builds hack/bexpr-eval: a small program over hashicorp/go-bexpr at the version the Go
# kfp-operator pinned (hack/bexpr-eval/go.mod), which the artifact filter tests compare the
# Python filter language with.
#
# Cached and idempotent like hack/build-k8s-bins.sh (see hack/lib-gobins.sh).
#
# Usage: hack/build-bexpr-eval.sh            -> prints the directory holding bexpr-eval
# Environment:
#   KFP_OPERATOR_CACHE   cache root (default ${XDG_CACHE_HOME:-~/.cache}/kfp-operator)
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
BEXPR_VERSION="v0.1.16"

# shellcheck source=hack/lib-gobins.sh
source "$here/lib-gobins.sh"

key="$(cache_key "-s -w" "$here/bexpr-eval/go.mod" "$here/bexpr-eval/go.sum" "$here/bexpr-eval/main.go")"
out="$cache_root/bin/bexpr-eval-$BEXPR_VERSION-$key"

if [ -x "$out/bexpr-eval" ]; then
  echo "$out"
  exit 0
fi

start_build "$out"
log() { echo "[build-bexpr-eval] $*" >&2; }
start=$SECONDS
log "building bexpr-eval with go-bexpr $BEXPR_VERSION"
(cd "$here/bexpr-eval" && go mod download && go build -trimpath -ldflags "-s -w" -o "$tmp/bexpr-eval" .)
finish_build "$out"
log "done in $((SECONDS - start))s: $out"
echo "$out"
