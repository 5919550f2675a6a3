"""Run inside the operator image by the image tests (standard library only): prints, as one JSON
line, what the tests check of the image from within, then waits for its standard input to close,
so that the test decides when the container ends."""

from __future__ import annotations

import importlib.metadata
import importlib.util
import json
import os
import platform
import subprocess
import sys
import tempfile
from pathlib import Path

VENV = Path(sys.prefix)
# Every directory the user could write to were the root writable, the ConfigMap volume and /tmp.
WRITE_PROBES = ("/", "/etc", "/opt/kfp-operator", "/var/tmp", "/run/lock", "/etc/kfp-operator", "/tmp")
MODULES = ("kfp_operator", "controller", "reconcilers", "kfp_devstack", "kubernetes.aio", "pytest")


def writable(directory: str) -> bool:
    try:
        with tempfile.NamedTemporaryFile(dir=directory):
            return True
    except OSError:
        return False


def command(*argv: str) -> str:
    return subprocess.run(argv, capture_output=True, text=True, check=True, timeout=60).stdout


def main() -> None:
    report = {
        "uid": os.getuid(),
        "gid": os.getgid(),
        "python": platform.python_version(),
        "prefix": str(VENV),
        "distributions": {
            dist.metadata["Name"]: {"version": dist.version, "requires": dist.requires or []}
            for dist in importlib.metadata.distributions(path=sys.path)
        },
        "modules": {name: importlib.util.find_spec(name) is not None for name in MODULES},
        "writable": {directory: writable(directory) for directory in WRITE_PROBES},
        "scripts": sorted(p.name for p in (VENV / "bin").iterdir()),
        "venv_bytes": sum(p.stat().st_size for p in VENV.rglob("*") if p.is_file() and not p.is_symlink()),
        "version": command("kfp-operator", "--version").strip(),
        "help": command("kfp-operator", "--help"),
    }
    print(json.dumps(report), flush=True)
    sys.stdin.read()


if __name__ == "__main__":
    main()
