#!/usr/bin/env bash
# Builds the test binaries (kube-apiserver, kubectl, etcd, helm) from upstream Go
# modules pinned in hack/k8s-bins/go.{mod,sum} and hack/helm/go.{mod,sum}.
# hack/build-tools.sh builds the other tools (nats-server, promtool) the same way;
# hack/lib-gobins.sh holds what the two share.
#
# The result is cached in a user-level directory keyed by the versions and by a
# hash of the module files and build flags, so a fresh clone on the same machine
# (CI) reuses it. The script is idempotent: when the cached binaries report the
# expected versions it only prints the directory.
#
# Usage: hack/build-k8s-bins.sh            -> prints the binary directory
# Environment:
#   KFP_OPERATOR_CACHE   cache root (default ${XDG_CACHE_HOME:-~/.cache}/kfp-operator)
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
K8S_VERSION="v1.36.3"
HELM_VERSION="v3.21.4"

# shellcheck source=hack/lib-gobins.sh
source "$here/lib-gobins.sh"

minor="${K8S_VERSION#v1.}"; minor="${minor%%.*}"
k8s_ldflags="-s -w"
for p in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
  k8s_ldflags+=" -X $p.gitVersion=$K8S_VERSION -X $p.gitMajor=1 -X $p.gitMinor=$minor -X $p.gitTreeState=clean"
done
helm_ldflags="-s -w -X helm.sh/helm/v3/internal/version.version=$HELM_VERSION"
for p in helm.sh/helm/v3/pkg/chartutil helm.sh/helm/v3/pkg/lint/rules; do
  helm_ldflags+=" -X $p.k8sVersionMajor=1 -X $p.k8sVersionMinor=$minor"
done

key="$(cache_key "$k8s_ldflags $helm_ldflags" \
  "$here/k8s-bins/go.mod" "$here/k8s-bins/go.sum" "$here/helm/go.mod" "$here/helm/go.sum")"
out="$cache_root/bin/$K8S_VERSION-helm$HELM_VERSION-$key"

have_expected_versions() {
  [ -x "$out/kube-apiserver" ] && [ -x "$out/etcd" ] && [ -x "$out/kubectl" ] && [ -x "$out/helm" ] &&
    REPLY_EXPECTED="Kubernetes $K8S_VERSION" reports "$out/kube-apiserver" --version &&
    REPLY_EXPECTED="$K8S_VERSION" reports "$out/kubectl" version --client &&
    REPLY_EXPECTED="etcd Version: 3." reports "$out/etcd" --version &&
    REPLY_EXPECTED="$HELM_VERSION" reports "$out/helm" version --short
}

if have_expected_versions; then
  echo "$out"
  exit 0
fi

start_build "$out"
log() { echo "[build-k8s-bins] $*" >&2; }
start=$SECONDS

# Download first (network-bound), then build (CPU-bound), so a slow step is visible.
log "downloading modules for Kubernetes $K8S_VERSION"
(cd "$here/k8s-bins" && go mod download)
log "building kube-apiserver and kubectl"
(cd "$here/k8s-bins" && go build -trimpath -ldflags "$k8s_ldflags" -o "$tmp/" \
  k8s.io/kubernetes/cmd/kube-apiserver k8s.io/kubernetes/cmd/kubectl)
log "building etcd (the version Kubernetes $K8S_VERSION requires)"
(cd "$here/k8s-bins" && go build -trimpath -ldflags "-s -w" -o "$tmp/etcd" go.etcd.io/etcd/server/v3)
log "building helm $HELM_VERSION"
(cd "$here/helm" && go mod download && go build -trimpath -ldflags "$helm_ldflags" -o "$tmp/helm" helm.sh/helm/v3/cmd/helm)

finish_build "$out"
have_expected_versions || { log "built binaries do not report the expected versions"; exit 1; }
log "done in $((SECONDS - start))s: $out"
echo "$out"
