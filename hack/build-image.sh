#!/usr/bin/env bash
# Builds the operator image from the repository's Dockerfile, with docker when a Docker engine
# answers, with buildah (daemonless) otherwise; `make image` runs it.
#
# Usage: hack/build-image.sh [IMAGE]        -> builds IMAGE, then prints it
#   IMAGE           the image to build (default kfp-operator:<project version>, the tag the
#                   chart's appVersion deploys)
# Environment:
#   IMAGE           the same, when no argument is given
#   PYTHON_IMAGE    the base image (default the Dockerfile's: the official Python slim image)
#   CONTAINER_TOOL  docker or buildah, instead of choosing by what is there
#   buildah reads its own settings too, e.g. STORAGE_DRIVER=vfs where the kernel's overlay is not
#   available, CONTAINERS_STORAGE_CONF for another image store, BUILDAH_ISOLATION (chroot when
#   no OCI runtime is installed)
#
# Behind a TLS-intercepting proxy, pip in the build must trust the proxy's CA: the machine's CA
# bundle (PIP_CERT, SSL_CERT_FILE, REQUESTS_CA_BUNDLE or the system's) is passed as the build
# secret `ca-certificates`, which the Dockerfile uses for the downloads only; the image keeps
# nothing of it.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
version="$(sed -n 's/^version = "\([^"]*\)"$/\1/p' "$root/pyproject.toml" | head -n1)"
image="${1:-${IMAGE:-kfp-operator:$version}}"

args=(--build-arg "VERSION=$version" --tag "$image")
if [ -n "${PYTHON_IMAGE:-}" ]; then
  args+=(--build-arg "PYTHON_IMAGE=$PYTHON_IMAGE")
fi
for bundle in "${PIP_CERT:-}" "${SSL_CERT_FILE:-}" "${REQUESTS_CA_BUNDLE:-}" \
  /etc/ssl/certs/ca-certificates.crt /etc/pki/tls/certs/ca-bundle.crt; do
  if [ -n "$bundle" ] && [ -s "$bundle" ]; then
    args+=(--secret "id=ca-certificates,src=$bundle")
    break
  fi
done

tool="${CONTAINER_TOOL:-}"
if [ -z "$tool" ]; then
  # A docker command without an engine behind it (no daemon, no socket) does not count.
  if command -v docker >/dev/null && docker info >/dev/null 2>&1; then
    tool=docker
  elif command -v buildah >/dev/null; then
    tool=buildah
  else
    echo "no image builder: install docker (with a running engine) or buildah (Debian: apt-get install buildah)" >&2
    exit 1
  fi
fi

# Without an OCI runtime (runc or crun), buildah can still run the build's steps chrooted.
if [ "$tool" = buildah ] && [ -z "${BUILDAH_ISOLATION:-}" ] && ! command -v runc >/dev/null && ! command -v crun >/dev/null; then
  export BUILDAH_ISOLATION=chroot
fi

case "$tool" in
  # BuildKit: the Dockerfile mounts the CA bundle as a build secret.
  docker) DOCKER_BUILDKIT=1 docker build "${args[@]}" "$root" >&2 ;;
  buildah) buildah build "${args[@]}" "$root" >&2 ;;
  *) echo "CONTAINER_TOOL must be docker or buildah, not $tool" >&2; exit 2 ;;
esac
echo "$image"
