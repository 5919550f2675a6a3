"""The real KFP SDK in a virtualenv of its own, cached per version.

The SDK pins a protobuf that conflicts with ml-metadata's in the project environment (see
``hack/compile-pipelines.sh``), so it gets its own virtualenv, made once per SDK and Python
version under ``${KFP_OPERATOR_CACHE:-~/.cache/kfp-operator}`` and reused after: building it the
first time needs PyPI and takes a minute or two; finding it takes nothing.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

KFP_SDK_VERSION = "2.17.3"


def cache_root() -> Path:
    configured = os.environ.get("KFP_OPERATOR_CACHE")
    if configured:
        return Path(configured)
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "kfp-operator"


def kfp_sdk_python(version: str = KFP_SDK_VERSION) -> Path:
    """The Python of a virtualenv with ``kfp==version``, made on first use (several processes may ask)."""
    python_version = f"py{sys.version_info.major}{sys.version_info.minor}"
    target = cache_root() / f"kfp-sdk-{version}-{python_version}"
    python = target / "bin" / "python"
    if (target / ".complete").exists():
        return python
    target.parent.mkdir(parents=True, exist_ok=True)
    with (target.parent / f".{target.name}.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if (target / ".complete").exists():
            return python
        building = Path(tempfile.mkdtemp(prefix=f".{target.name}-", dir=target.parent))
        try:
            subprocess.run([sys.executable, "-m", "venv", str(building)], check=True)
            subprocess.run(
                [
                    str(building / "bin" / "python"),
                    "-m",
                    "pip",
                    "install",
                    "--quiet",
                    "--disable-pip-version-check",
                    f"kfp=={version}",
                ],
                check=True,
            )
            (building / ".complete").write_text(version + "\n")
            shutil.rmtree(target, ignore_errors=True)
            building.rename(target)
        finally:
            shutil.rmtree(building, ignore_errors=True)
    return python
