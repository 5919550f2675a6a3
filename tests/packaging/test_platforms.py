"""The operator installs from wheels alone on every platform its users run.

pip resolves the runtime dependencies of pyproject.toml, and everything they need, for CPython
3.11, 3.12 and 3.13 on x86-64 and aarch64 Linux, accepting wheels only (no source build on the
target), as it would for an image of that platform. Nothing is installed: ``--dry-run``.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

PROJECT_ROOT = Path(__file__).resolve().parents[2]
PYTHONS = ("3.11", "3.12", "3.13")
ARCHITECTURES = ("x86_64", "aarch64")


def runtime_dependencies() -> list[str]:
    project = tomllib.loads((PROJECT_ROOT / "pyproject.toml").read_text())["project"]
    return list(project["dependencies"])


@pytest.mark.parametrize("architecture", ARCHITECTURES)
@pytest.mark.parametrize("python", PYTHONS)
def test_the_runtime_dependencies_resolve_from_wheels(python: str, architecture: str, tmp_path: Path) -> None:
    report = tmp_path / "report.json"
    resolved = subprocess.run(
        [
            sys.executable, "-m", "pip", "install", "--dry-run", "--quiet", "--disable-pip-version-check",
            "--ignore-installed", "--only-binary=:all:", "--implementation", "cp",
            "--python-version", python,
            "--platform", f"manylinux_2_28_{architecture}", "--platform", f"manylinux2014_{architecture}",
            "--target", str(tmp_path / "target"), "--report", str(report),
            *runtime_dependencies(),
        ],
        capture_output=True, text=True, timeout=600, check=False,
    )  # fmt: skip

    assert resolved.returncode == 0, resolved.stderr
    installed = {item["metadata"]["name"].lower() for item in json.loads(report.read_text())["install"]}
    assert {"kubernetes", "grpcio", "protobuf", "google-re2"} <= installed
    assert not installed & {"ml-metadata", "kfp-server-api"}  # stack and test tools only
