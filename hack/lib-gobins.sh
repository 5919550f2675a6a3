# Sourced by hack/build-k8s-bins.sh and hack/build-tools.sh: one Go environment and one
# cache for every binary the project builds from upstream Go modules.
#
# Environment:
#   KFP_OPERATOR_CACHE   cache root (default ${XDG_CACHE_HOME:-~/.cache}/kfp-operator)
# Layout under the cache root:
#   bin/<versions>-<key>/  one directory of binaries per script, per versions and per key
#   gomod/, gobuild/       Go's module and build caches

# Builds depend on nothing outside the pinned modules: no workspace, no toolchain
# download, no cgo, and go.mod/go.sum exactly as committed.
export GOWORK=off GOTOOLCHAIN=local CGO_ENABLED=0 GOFLAGS=-mod=readonly
cache_root="${KFP_OPERATOR_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/kfp-operator}"
# Keep Go's module and build caches beside the binaries so that a rebuild after a
# version bump is incremental, whatever the caller's GOPATH is.
export GOMODCACHE="${GOMODCACHE:-$cache_root/gomod}"
export GOCACHE="${GOCACHE:-$cache_root/gobuild}"

# cache_key FLAGS FILE...: 12 hex digits of a hash of the module files, the build
# flags and the Go version, so any change to what goes into a build gets a new directory.
cache_key() {
  local flags="$1"
  shift
  cat "$@" <(echo "$flags $(go env GOVERSION)") | sha256sum | cut -c1-12
}

# REPLY_EXPECTED=TEXT reports CMD...: CMD succeeds and its output contains TEXT.
# Captures the output before matching: with pipefail, `cmd | grep -q` fails when grep
# exits early and cmd gets SIGPIPE.
reports() { local out; out="$("$@" 2>/dev/null)" && [[ "$out" == *"$REPLY_EXPECTED"* ]]; }

# start_build DIR: sets $tmp to a fresh directory beside DIR, removed on exit unless
# finish_build moves it into place; building aside means an interrupted build never
# leaves a half-filled DIR behind.
start_build() {
  mkdir -p "$(dirname "$1")"
  tmp="$(mktemp -d "$(dirname "$1")/.build-XXXXXX")"
  chmod 755 "$tmp"
  trap 'rm -rf "$tmp"' EXIT
}

# finish_build DIR: replaces DIR with the finished build.
finish_build() {
  rm -rf "$1"
  mv "$tmp" "$1"
  trap - EXIT
}
