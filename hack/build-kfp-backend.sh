#!/usr/bin/env bash
# Builds the Kubeflow Pipelines API server and persistence agent (KFP 2.17.0, commit
# 7b70c7b) from source, for the local stack's real-KFP mode (`kfp-devstack up --kfp real`).
#
# The source comes from, in order:
#   1. $KFP_BACKEND_SOURCE: a directory holding kfp-backend-2.17.0-7b70c7b.tar.gz (or the
#      unpacked tree, or a kubeflow/pipelines checkout at the pinned commit);
#   2. ../shared/vendor/kfp-backend beside the repository, when it is there;
#   3. a shallow fetch of the public kubeflow/pipelines repository at the pinned commit.
# The Go module proxy does not serve github.com/kubeflow/pipelines, hence no `go install`.
#
# The result is cached in a user-level directory keyed by the commit, the go.mod edits, the
# build flags and the Go version, so a fresh clone on the same machine (CI) reuses it. The
# script is idempotent: when the cached build is complete it only prints the directory,
# which holds `apiserver`, `persistence`, the API server's default `config.json` and the two
# CRDs the API server needs (`crds/argo-workflows.yaml`, `crds/scheduled-workflows.yaml`).
#
# Usage: hack/build-kfp-backend.sh        -> prints the binary directory
# Environment:
#   KFP_OPERATOR_CACHE   cache root (default ${XDG_CACHE_HOME:-~/.cache}/kfp-operator)
#   KFP_BACKEND_SOURCE   where the source is (see above)
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
KFP_VERSION="2.17.0"
KFP_COMMIT="7b70c7b95f6832772efd6fd0029a4024491a0f44"
KFP_REPO="https://github.com/kubeflow/pipelines.git"
ARCHIVE="kfp-backend-$KFP_VERSION-${KFP_COMMIT:0:7}.tar.gz"
ARCHIVE_SHA256="f84bd2932a1a32ec0a0caad2825ffc6a7aff047b0a612187bd71beb03e6dd0e7"
# KFP asks for argo-workflows/v4 v4.0.8, which the module proxy does not serve; only the
# Workflow types and clients are linked, and v4.0.5 has the same ones.
ARGO_VERSION="v4.0.5"
# third_party/ml-metadata is a module of the same repository, not served by the proxy either.
MOD_EDITS="-replace github.com/kubeflow/pipelines/third_party/ml-metadata=./third_party/ml-metadata
-replace github.com/argoproj/argo-workflows/v4=github.com/argoproj/argo-workflows/v4@$ARGO_VERSION"
# cgo: the API server's storage code names the SQLite driver's error types, which exist only in
# its cgo build (the stack runs MySQL, but the package must compile). Needs a C compiler.
export GOWORK=off GOTOOLCHAIN=local CGO_ENABLED=1 GOFLAGS="-mod=mod -buildvcs=false"
if ! command -v "$(go env CC)" >/dev/null; then
  # Debian's gcc, installed as the other Debian packages the tests need are.
  bash "$(dirname "$0")/ensure-debian-packages.sh" gcc libc6-dev || {
    echo "[build-kfp-backend] a C compiler ($(go env CC)) is needed: apt-get install gcc" >&2
    exit 1
  }
fi
LDFLAGS="-s -w"

cache_root="${KFP_OPERATOR_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/kfp-operator}"
export GOMODCACHE="${GOMODCACHE:-$cache_root/gomod}"
export GOCACHE="${GOCACHE:-$cache_root/gobuild}"

key="$(printf '%s\n' "$KFP_COMMIT" "$MOD_EDITS" "$LDFLAGS" "$CGO_ENABLED" "$(go env GOVERSION)" |
  sha256sum | cut -c1-12)"
out="$cache_root/bin/kfp-backend-$KFP_VERSION-${KFP_COMMIT:0:7}-$key"
STAMP=".complete"

if [ -f "$out/$STAMP" ] && [ -x "$out/apiserver" ] && [ -x "$out/persistence" ]; then
  echo "$out"
  exit 0
fi

log() { echo "[build-kfp-backend] $*" >&2; }
mkdir -p "$cache_root/bin"
tmp="$(mktemp -d "$cache_root/bin/.build-kfp-XXXXXX")"
trap 'chmod -R u+w "$tmp" 2>/dev/null; rm -rf "$tmp"' EXIT
start=$SECONDS

# --- the source -------------------------------------------------------------------------------
src="$tmp/src"
unpack_archive() {
  local archive="$1"
  local sum
  sum="$(sha256sum "$archive" | cut -d' ' -f1)"
  if [ "$sum" != "$ARCHIVE_SHA256" ]; then
    log "$archive has sha256 $sum, expected $ARCHIVE_SHA256"
    exit 1
  fi
  mkdir -p "$src"
  tar xzf "$archive" -C "$src" --strip-components=1
}
from_directory() {
  local dir="$1"
  if [ -f "$dir/$ARCHIVE" ]; then
    log "unpacking $dir/$ARCHIVE"
    unpack_archive "$dir/$ARCHIVE"
  elif [ -f "$dir/go.mod" ] && [ -d "$dir/backend/src/apiserver" ]; then
    log "copying the source tree $dir"
    mkdir -p "$src"
    cp -a "$dir/." "$src/"
  else
    return 1
  fi
}
vendored="$(cd "$here/.." && pwd)/../shared/vendor/kfp-backend"
if [ -n "${KFP_BACKEND_SOURCE:-}" ]; then
  from_directory "$KFP_BACKEND_SOURCE" || { log "no KFP source in KFP_BACKEND_SOURCE=$KFP_BACKEND_SOURCE"; exit 1; }
elif ! { [ -d "$vendored" ] && from_directory "$vendored"; }; then
  log "fetching $KFP_REPO at $KFP_COMMIT"
  git init --quiet "$src"
  git -C "$src" fetch --quiet --depth 1 "$KFP_REPO" "$KFP_COMMIT"
  git -C "$src" -c advice.detachedHead=false checkout --quiet FETCH_HEAD
fi

# --- the build --------------------------------------------------------------------------------
cd "$src"
# shellcheck disable=SC2086 # MOD_EDITS is a list of flags
go mod edit $MOD_EDITS
log "downloading modules for KFP $KFP_VERSION"
go mod download
log "building apiserver and persistence (about 6 minutes cold on 2 cores)"
bin="$tmp/bin"
mkdir -p "$bin/crds"
go build -trimpath -ldflags "$LDFLAGS" -o "$bin/" ./backend/src/apiserver ./backend/src/agent/persistence

cp backend/src/apiserver/config/config.json "$bin/config.json"
# The archive keeps the ScheduledWorkflow CRD at the top of manifests/; the repository keeps it
# with the kustomize manifests.
swf_crd="$(find manifests -name scheduled-workflow-crd.yaml -o -name kubeflow.org_scheduledworkflows.yaml |
  sort | head -1)"
[ -n "$swf_crd" ] || { log "no ScheduledWorkflow CRD in the source"; exit 1; }
cp "$swf_crd" "$bin/crds/scheduled-workflows.yaml"
argo_dir="$(go list -m -f '{{.Dir}}' github.com/argoproj/argo-workflows/v4)"
cp "$argo_dir/manifests/base/crds/minimal/argoproj.io_workflows.yaml" "$bin/crds/argo-workflows.yaml"
chmod 644 "$bin/crds/"*.yaml "$bin/config.json"
touch "$bin/$STAMP"

rm -rf "$out"
mv "$bin" "$out"
log "done in $((SECONDS - start))s: $out"
echo "$out"
