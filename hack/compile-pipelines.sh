#!/usr/bin/env bash
# Compiles every pipeline source in examples/pipelines/*.py with the real KFP SDK and
# writes the IR YAML beside it (penguin_pipeline.py -> penguin_pipeline.yaml).
#
# The SDK runs in a throwaway virtualenv because its protobuf pin conflicts with
# ml-metadata's in the project environment. Each source compiles itself when run as
# `python SOURCE OUTPUT.yaml`.
#
# Usage: hack/compile-pipelines.sh
# Environment:
#   KFP_SDK_VERSION   kfp version to install (default 2.17.3)
#   PYTHON            interpreter used to create the virtualenv (default python3)
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
pipelines_dir="$here/../examples/pipelines"
KFP_SDK_VERSION="${KFP_SDK_VERSION:-2.17.3}"

venv="$(mktemp -d "${TMPDIR:-/tmp}/kfp-compile.XXXXXX")"
trap 'rm -rf "$venv"' EXIT

"${PYTHON:-python3}" -m venv "$venv"
"$venv/bin/pip" install --quiet --disable-pip-version-check "kfp==$KFP_SDK_VERSION"

shopt -s nullglob
sources=("$pipelines_dir"/*.py)
if [ "${#sources[@]}" -eq 0 ]; then
  echo "no pipeline sources in $pipelines_dir" >&2
  exit 1
fi
for source in "${sources[@]}"; do
  output="${source%.py}.yaml"
  "$venv/bin/python" "$source" "$output"
  echo "compiled $(basename "$source") -> $(basename "$output")"
done
