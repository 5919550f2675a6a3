#!/usr/bin/env bash
# Installs Debian packages that some tests need (e.g. buildah and mmdebstrap for the image test)
# when they are missing, so that `make test` needs no manual step on a fresh Debian machine.
# The only place the project uses apt: apt-get as root, through sudo otherwise.
#
# Usage: hack/ensure-debian-packages.sh PACKAGE...
# Exits 0 when every package is installed (at once when they already were), non-zero with a
# one-line reason otherwise.
set -euo pipefail

(($#)) || { echo "usage: $0 PACKAGE..." >&2; exit 2; }

installed() { [ "$(dpkg-query -W -f='${Status}' "$1" 2>/dev/null)" = "install ok installed" ]; }

missing=()
for package in "$@"; do
  installed "$package" || missing+=("$package")
done
((${#missing[@]})) || exit 0

if ! command -v apt-get >/dev/null; then
  echo "missing Debian packages ${missing[*]}, and no apt-get to install them: install them by hand" >&2
  exit 1
fi
if [ "$(id -u)" = 0 ]; then
  as_root=()
elif command -v sudo >/dev/null && sudo -n true 2>/dev/null; then
  as_root=(sudo -n)
else
  echo "missing Debian packages ${missing[*]}: run as root or with passwordless sudo, or install them by hand" >&2
  exit 1
fi

echo "installing Debian packages: ${missing[*]}" >&2
apt_get=("${as_root[@]}" env DEBIAN_FRONTEND=noninteractive apt-get -q -o DPkg::Lock::Timeout=600)
# A stale or empty package index is the common reason for an install to fail on a fresh
# machine, so the index is refreshed first; a source that cannot be reached need not stop the
# install from the others.
"${apt_get[@]}" update >&2 || echo "apt-get update failed; installing from the package lists there are" >&2
"${apt_get[@]}" install -y --no-install-recommends "${missing[@]}" >&2
