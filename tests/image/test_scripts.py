"""hack/build-image.sh and hack/ensure-debian-packages.sh, with stand-ins for docker, buildah, apt
and their kin on a PATH of their own: which tool each picks and what it asks of it. Fast and
offline; tests/image/test_image.py builds with the real buildah."""

from __future__ import annotations

import os
import shutil
import subprocess
import tomllib
from pathlib import Path

import pytest

PROJECT_ROOT = Path(__file__).resolve().parents[2]
BUILD_IMAGE = PROJECT_ROOT / "hack" / "build-image.sh"
ENSURE_PACKAGES = PROJECT_ROOT / "hack" / "ensure-debian-packages.sh"
VERSION = tomllib.loads((PROJECT_ROOT / "pyproject.toml").read_text())["project"]["version"]
# What the scripts run besides the stand-ins.
UTILITIES = ("bash", "sh", "env", "cat", "dirname", "sed", "head", "basename", "tr")

# A stand-in that records its arguments, and the environment variables named in RECORD_ENV, one
# call a line, and answers as FAKE_<NAME>_EXIT says (default 0).
STAND_IN = """#!/bin/bash
name=$(basename "$0")
{
  printf '%s' "$name"; printf ' %s' "$@"
  for v in $RECORD_ENV; do printf ' %s=%s' "$v" "${!v:-}"; done
  echo
} >> "$CALLS"
var="FAKE_$(echo "$name" | tr a-z- A-Z_)_EXIT"
exit "${!var:-0}"
"""


class Machine:
    """A PATH holding the utilities the scripts need and stand-ins of the tools named."""

    def __init__(self, root: Path, tools: list[str]) -> None:
        self.bin = root / "bin"
        self.bin.mkdir()
        self.calls = root / "calls"
        self.calls.touch()
        for utility in UTILITIES:
            found = shutil.which(utility)
            assert found, utility
            (self.bin / utility).symlink_to(found)
        for tool in tools:
            (self.bin / tool).write_text(STAND_IN)
            (self.bin / tool).chmod(0o755)

    def run(self, script: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
        environment = {"PATH": str(self.bin), "CALLS": str(self.calls), "HOME": str(self.bin.parent), **env}
        return subprocess.run(
            ["bash", str(script), *args],
            env=environment,
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )

    def called(self) -> list[list[str]]:
        return [line.split() for line in self.calls.read_text().splitlines()]


@pytest.fixture
def bundle(tmp_path: Path) -> Path:
    path = tmp_path / "ca.pem"
    path.write_text("-----BEGIN CERTIFICATE-----\n")
    return path


def test_docker_builds_when_its_engine_answers(tmp_path: Path, bundle: Path) -> None:
    machine = Machine(tmp_path, ["docker", "buildah"])

    result = machine.run(BUILD_IMAGE, PIP_CERT=str(bundle), RECORD_ENV="DOCKER_BUILDKIT")

    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"kfp-operator:{VERSION}"
    assert machine.called() == [
        ["docker", "info", "DOCKER_BUILDKIT="],
        [
            "docker", "build", "--build-arg", f"VERSION={VERSION}", "--tag", f"kfp-operator:{VERSION}",
            "--secret", f"id=ca-certificates,src={bundle}", str(PROJECT_ROOT), "DOCKER_BUILDKIT=1",
        ],
    ]  # fmt: skip


def test_buildah_builds_when_docker_has_no_engine_chrooted_without_an_oci_runtime(
    tmp_path: Path, bundle: Path
) -> None:
    machine = Machine(tmp_path, ["docker", "buildah"])

    result = machine.run(
        BUILD_IMAGE,
        "registry.example.com/kfp-operator:1.2.3",
        PIP_CERT=str(bundle),
        PYTHON_IMAGE="localhost/python:3.11",
        FAKE_DOCKER_EXIT="1",
        RECORD_ENV="BUILDAH_ISOLATION",
    )

    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "registry.example.com/kfp-operator:1.2.3"
    assert machine.called()[-1] == [
        "buildah", "build", "--build-arg", f"VERSION={VERSION}",
        "--tag", "registry.example.com/kfp-operator:1.2.3",
        "--build-arg", "PYTHON_IMAGE=localhost/python:3.11", "--secret", f"id=ca-certificates,src={bundle}",
        str(PROJECT_ROOT), "BUILDAH_ISOLATION=chroot",
    ]  # fmt: skip


def test_buildah_keeps_its_isolation_where_an_oci_runtime_is_installed(tmp_path: Path) -> None:
    machine = Machine(tmp_path, ["buildah", "crun"])

    result = machine.run(BUILD_IMAGE, IMAGE="kfp-operator:dev", RECORD_ENV="BUILDAH_ISOLATION")

    assert result.returncode == 0, result.stderr
    build = machine.called()[-1]
    assert build[:2] == ["buildah", "build"] and build[-1] == "BUILDAH_ISOLATION="
    assert "kfp-operator:dev" in build


def test_no_image_builder_is_said_in_one_line(tmp_path: Path) -> None:
    machine = Machine(tmp_path, [])

    result = machine.run(BUILD_IMAGE)

    assert result.returncode == 1
    assert result.stderr.strip().startswith("no image builder: install docker")


def test_packages_already_installed_need_no_apt(tmp_path: Path) -> None:
    machine = Machine(tmp_path, ["dpkg-query", "apt-get", "id"])
    (machine.bin / "dpkg-query").write_text("#!/bin/sh\nprintf 'install ok installed'\n")

    result = machine.run(ENSURE_PACKAGES, "buildah", "mmdebstrap")

    assert result.returncode == 0, result.stderr
    assert machine.called() == []


def missing_packages_machine(tmp_path: Path, uid: int, tools: list[str]) -> Machine:
    machine = Machine(tmp_path, ["dpkg-query", *tools])
    (machine.bin / "id").write_text(f"#!/bin/sh\necho {uid}\n")
    (machine.bin / "id").chmod(0o755)
    return machine


def test_missing_packages_are_installed_with_apt_as_root(tmp_path: Path) -> None:
    machine = missing_packages_machine(tmp_path, 0, ["apt-get"])

    result = machine.run(ENSURE_PACKAGES, "buildah", "mmdebstrap", FAKE_DPKG_QUERY_EXIT="1")

    assert result.returncode == 0, result.stderr
    apt = [call[call.index("apt-get") :] for call in machine.called() if "apt-get" in call]
    assert apt == [
        ["apt-get", "-q", "-o", "DPkg::Lock::Timeout=600", "update"],
        ["apt-get", "-q", "-o", "DPkg::Lock::Timeout=600", "install", "-y", "--no-install-recommends",
         "buildah", "mmdebstrap"],
    ]  # fmt: skip


def test_missing_packages_are_installed_through_sudo_otherwise(tmp_path: Path) -> None:
    machine = missing_packages_machine(tmp_path, 1000, ["apt-get", "sudo"])

    result = machine.run(ENSURE_PACKAGES, "buildah", FAKE_DPKG_QUERY_EXIT="1")

    assert result.returncode == 0, result.stderr
    assert [call[:2] for call in machine.called() if call[0] == "sudo"] == [["sudo", "-n"]] * 3


def test_without_root_or_sudo_the_missing_packages_are_named(tmp_path: Path) -> None:
    machine = missing_packages_machine(tmp_path, 1000, ["apt-get"])

    result = machine.run(ENSURE_PACKAGES, "buildah", "mmdebstrap", FAKE_DPKG_QUERY_EXIT="1")

    assert result.returncode == 1
    assert "missing Debian packages buildah mmdebstrap" in result.stderr
    assert machine.called() == [["dpkg-query", "-W", "-f=${Status}", p] for p in ("buildah", "mmdebstrap")]


def test_the_scripts_are_executable() -> None:
    for script in (BUILD_IMAGE, ENSURE_PACKAGES):
        assert os.access(script, os.X_OK), script
