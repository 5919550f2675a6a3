"""Finding the binaries the local stack and the tests run.

Two groups, each built from upstream Go modules by its own script and cached per
version in a user-level directory:

- ``hack/build-k8s-bins.sh``: kube-apiserver, etcd, kubectl, helm;
- ``hack/build-tools.sh``: nats-server, promtool.

The scripts are idempotent and print their directory, so calling them is cheap once
the binaries exist. ``KFP_DEVSTACK_BIN_DIR`` points at one directory holding all the
binaries instead (for example in a container image, where the repository's ``hack/``
is absent).
"""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass
from functools import cache
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent
K8S_BUILD_SCRIPT = PROJECT_ROOT / "hack" / "build-k8s-bins.sh"
TOOLS_BUILD_SCRIPT = PROJECT_ROOT / "hack" / "build-tools.sh"
BIN_DIR_ENV = "KFP_DEVSTACK_BIN_DIR"


class BinariesUnavailable(RuntimeError):
    """The binaries could not be found or built."""


@dataclass(frozen=True)
class Binaries:
    directory: Path
    """kube-apiserver, etcd, kubectl and helm."""
    tools_directory: Path
    """nats-server and promtool."""

    @property
    def kube_apiserver(self) -> Path:
        return self.directory / "kube-apiserver"

    @property
    def etcd(self) -> Path:
        return self.directory / "etcd"

    @property
    def kubectl(self) -> Path:
        return self.directory / "kubectl"

    @property
    def helm(self) -> Path:
        return self.directory / "helm"

    @property
    def nats_server(self) -> Path:
        return self.tools_directory / "nats-server"

    @property
    def promtool(self) -> Path:
        return self.tools_directory / "promtool"


@cache
def locate() -> Binaries:
    """Returns the binaries, building them first if needed (minutes when cold, instant when cached)."""
    override = os.environ.get(BIN_DIR_ENV)
    if override:
        return Binaries(Path(override), Path(override))
    return Binaries(_build(K8S_BUILD_SCRIPT), _build(TOOLS_BUILD_SCRIPT))


def _build(script: Path) -> Path:
    """Runs a build script (its progress goes to stderr) and returns the directory it prints."""
    if not script.exists():
        raise BinariesUnavailable(f"set {BIN_DIR_ENV}: {script} is not available to build them")
    result = subprocess.run(["bash", str(script)], stdout=subprocess.PIPE, text=True, check=False)
    if result.returncode != 0:
        raise BinariesUnavailable(f"{script} failed with exit code {result.returncode}")
    return Path(result.stdout.strip().splitlines()[-1])
