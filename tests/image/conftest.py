"""Fixtures of the image tests: the operator image, built daemonless once and cached (see
tests/image/build.py), and the lifecycle tests' world to run it against."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator

import pytest

from tests.image.build import BuiltImage, ImageUnavailable, operator_image
from tests.image.container import remove_stale_containers

# The lifecycle tests' world: a fresh KFP emulator per test, NATS, a namespace on the API server.
from tests.lifecycle.conftest import emulator, nats_server, world  # noqa: F401

# A cold start installs buildah and mmdebstrap, makes the Debian base and builds the image.
BUILD_TIMEOUT = 1800


@pytest.fixture(scope="session")
def image() -> Iterator[BuiltImage]:
    if not sys.platform.startswith("linux") or os.geteuid() != 0:
        # buildah's chroot isolation, its vfs store and the read-only root need root.
        pytest.skip("the image tests build and run the image with buildah as root")
    try:
        built = operator_image()
    except ImageUnavailable as error:
        pytest.fail(f"the operator image could not be built: {error}")
    remove_stale_containers(built)
    yield built
