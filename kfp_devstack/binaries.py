"""Finding the control-plane binaries (kube-apiserver, etcd, kubectl, helm).

They are built from upstream Go modules by ``hack/build-k8s-bins.sh`` and cached
per version in a user-level directory; the script is idempotent and prints the
directory, so calling it is cheap once the binaries exist. ``KFP_DEVSTACK_BIN_DIR``
points at a directory of ready binaries instead (for example in a container
image, where the repository's ``hack/`` is absent).
"""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass
from functools import cache
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent
BUILD_SCRIPT = PROJECT_ROOT / "hack" / "build-k8s-bins.sh"
BIN_DIR_ENV = "KFP_DEVSTACK_BIN_DIR"


class BinariesUnavailable(RuntimeError):
    """The binaries could not be found or built."""


@dataclass(frozen=True)
class Binaries:
    directory: Path

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


@cache
def locate() -> Binaries:
    """Returns the binaries, building them first if needed (minutes when cold, instant when cached)."""
    override = os.environ.get(BIN_DIR_ENV)
    if override:
        return Binaries(Path(override))
    if not BUILD_SCRIPT.exists():
        raise BinariesUnavailable(f"set {BIN_DIR_ENV}: {BUILD_SCRIPT} is not available to build them")
    result = subprocess.run(["bash", str(BUILD_SCRIPT)], stdout=subprocess.PIPE, text=True, check=False)
    if result.returncode != 0:
        raise BinariesUnavailable(f"{BUILD_SCRIPT} failed with exit code {result.returncode}")
    return Binaries(Path(result.stdout.strip().splitlines()[-1]))
