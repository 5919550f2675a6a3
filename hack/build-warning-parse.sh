#!/usr/bin/env bash
# Builds hack/warning-parse: a small program over client-go's parser of the API server's
# Warning headers (k8s.io/apimachinery's util/net, at the Kubernetes version the local control
# plane runs), which tests/controller/test_apiwarnings.py compares controller.apiwarnings with.
#
# Cached and idempotent like hack/build-k8s-bins.sh (see hack/lib-gobins.sh).
#
# Usage: hack/build-warning-parse.sh         -> prints the directory holding warning-parse
# Environment:
#   KFP_OPERATOR_CACHE   cache root (default ${XDG_CACHE_HOME:-~/.cache}/kfp-operator)
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
APIMACHINERY_VERSION="v0.36.3"

# shellcheck source=hack/lib-gobins.sh
source "$here/lib-gobins.sh"

key="$(cache_key "-s -w" "$here/warning-parse/go.mod" "$here/warning-parse/go.sum" "$here/warning-parse/main.go")"
out="$cache_root/bin/warning-parse-$APIMACHINERY_VERSION-$key"

if [ -x "$out/warning-parse" ]; then
  echo "$out"
  exit 0
fi

start_build "$out"
log() { echo "[build-warning-parse] $*" >&2; }
start=$SECONDS
log "building warning-parse with k8s.io/apimachinery $APIMACHINERY_VERSION"
(cd "$here/warning-parse" && go mod download && go build -trimpath -ldflags "-s -w" -o "$tmp/warning-parse" .)
finish_build "$out"
log "done in $((SECONDS - start))s: $out"
echo "$out"
