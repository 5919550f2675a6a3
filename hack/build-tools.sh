#!/usr/bin/env bash
# Builds the tools the local stack and the tests run besides Kubernetes, from upstream
# Go modules pinned in hack/nats-server/go.{mod,sum} and hack/promtool/go.{mod,sum}:
#   nats-server  the broker that run-completion events are published to
#   promtool     checks the chart's alerting rules and the operator's metrics
#
# Cached and idempotent like hack/build-k8s-bins.sh (see hack/lib-gobins.sh), in a
# directory of its own, so bumping these tools never rebuilds Kubernetes.
#
# Usage: hack/build-tools.sh            -> prints the binary directory
# Environment:
#   KFP_OPERATOR_CACHE   cache root (default ${XDG_CACHE_HOME:-~/.cache}/kfp-operator)
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
NATS_VERSION="v2.15.3"
# Prometheus 3.x publishes its Go module as v0.3MM.P for release 3.MM.P.
PROMETHEUS_MODULE_VERSION="v0.316.0"

# shellcheck source=hack/lib-gobins.sh
source "$here/lib-gobins.sh"

release="${PROMETHEUS_MODULE_VERSION#v0.}"
PROMETHEUS_VERSION="$((${release%%.*} / 100)).$((${release%%.*} % 100)).${release#*.}"
# What Prometheus' own release build sets, less the build date and host, which would
# make every build different.
promtool_ldflags="-s -w -X github.com/prometheus/common/version.Version=$PROMETHEUS_VERSION"
promtool_ldflags+=" -X github.com/prometheus/common/version.BuildUser=kfp-operator"
# No service-discovery plugins (each a cloud SDK, most of promtool's build): the
# project only runs `promtool check rules` and `promtool check metrics`.
promtool_tags="remove_all_sd"

key="$(cache_key "-s -w; $promtool_ldflags; $promtool_tags" \
  "$here/nats-server/go.mod" "$here/nats-server/go.sum" "$here/promtool/go.mod" "$here/promtool/go.sum")"
out="$cache_root/bin/nats-server-$NATS_VERSION-promtool-v$PROMETHEUS_VERSION-$key"

have_expected_versions() {
  [ -x "$out/nats-server" ] && [ -x "$out/promtool" ] &&
    REPLY_EXPECTED="v${NATS_VERSION#v}" reports "$out/nats-server" --version &&
    REPLY_EXPECTED="promtool, version $PROMETHEUS_VERSION " reports "$out/promtool" --version
}

if have_expected_versions; then
  echo "$out"
  exit 0
fi

start_build "$out"
log() { echo "[build-tools] $*" >&2; }
start=$SECONDS

# nats-server's version is a constant in its source: it needs no ldflags.
log "building nats-server $NATS_VERSION"
(cd "$here/nats-server" && go mod download && go build -trimpath -ldflags "-s -w" -o "$tmp/nats-server" \
  github.com/nats-io/nats-server/v2)
# No `go mod download` here: it would fetch every plugin's SDK; the build fetches
# only the modules it compiles.
log "building promtool $PROMETHEUS_VERSION"
(cd "$here/promtool" && go build -trimpath -tags "$promtool_tags" -ldflags "$promtool_ldflags" -o "$tmp/promtool" \
  github.com/prometheus/prometheus/cmd/promtool)

finish_build "$out"
have_expected_versions || { log "built tools do not report the expected versions"; exit 1; }
log "done in $((SECONDS - start))s: $out"
echo "$out"
