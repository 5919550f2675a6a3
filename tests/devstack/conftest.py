"""Running ``kfp-devstack`` as a user does, in a state directory of the test's own."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def devstack() -> Callable[..., str]:
    """``devstack(root, *args)``: runs ``kfp-devstack --dir=root args``, asserts it succeeded, returns
    its output."""

    def run(root: Path, *args: str) -> str:
        result = subprocess.run(
            [sys.executable, "-m", "kfp_devstack.cli", f"--dir={root}", *args],
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        assert result.returncode == 0, result.stderr
        return result.stdout

    return run
