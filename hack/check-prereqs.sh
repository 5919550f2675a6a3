#!/usr/bin/env bash
# Checks the only two things `make dev` and `make test` expect on the machine, and says
# in one line what is missing, so make stops before a long build fails halfway:
#   python  python3, 3.11 or newer, with venv (the project's virtual environment)
#   go      go, at least the newest `go` line of the modules pinned in hack/*/go.mod
#           (it builds every other binary; see hack/build-k8s-bins.sh, hack/build-tools.sh)
#
# Usage: hack/check-prereqs.sh [python] [go]     (both when no argument is given)
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
missing=()

check_python() {
  if ! command -v python3 >/dev/null; then
    missing+=("Python 3.11+ (no python3 on PATH)")
  elif ! python3 -c 'import sys; sys.exit(sys.version_info < (3, 11))'; then
    missing+=("Python 3.11+ (python3 is $(python3 -c 'import platform; print(platform.python_version())'))")
  elif ! python3 -c 'import ensurepip, venv' 2>/dev/null; then
    missing+=("Python's venv module (Debian: python3-venv)")
  fi
}

check_go() {
  # The newest `go` line of the pinned modules: with GOTOOLCHAIN=local, an older Go refuses them.
  local required found
  required="$(sed -n 's/^go \([0-9.]*\)$/\1/p' "$here"/*/go.mod | sort -V | tail -n1)"
  if ! command -v go >/dev/null; then
    missing+=("Go $required+ (no go on PATH)")
    return
  fi
  found="$(GOTOOLCHAIN=local go env GOVERSION)"
  found="${found#go}"
  if [ "$(printf '%s\n%s\n' "$required" "$found" | sort -V | head -n1)" != "$required" ]; then
    missing+=("Go $required+ (go is $found)")
  fi
}

(($#)) || set -- python go
for what in "$@"; do
  case "$what" in
    python) check_python ;;
    go) check_go ;;
    *) echo "usage: $0 [python] [go]" >&2; exit 2 ;;
  esac
done

if ((${#missing[@]})); then
  joined="$(printf '%s; ' "${missing[@]}")"
  if ((${#missing[@]} == 1)); then
    echo "missing prerequisite: ${joined%; }. Install it, then run make again." >&2
  else
    echo "missing prerequisites: ${joined%; }. Install them, then run make again." >&2
  fi
  exit 1
fi
