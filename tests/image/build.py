"""Building the operator image for the tests, daemonless, and caching it.

Without a Docker engine, Debian's buildah builds the Dockerfile (``--isolation chroot``, ``vfs``
storage, as root) on a base image made here: a Debian root filesystem with Debian's python3
(bookworm's is 3.11, as in the official ``python:3.11-slim-bookworm`` the Dockerfile defaults to),
made by mmdebstrap from Debian's packages. Both tools are installed on first use by
``hack/ensure-debian-packages.sh``.

Everything is cached under ``${KFP_OPERATOR_CACHE:-~/.cache/kfp-operator}/image``:

- ``debian-<suite>-<snapshot>-<recipe>.tar``: the base root filesystem, per Debian snapshot (the
  date of the suite's Release file on the mirror) and per recipe (packages and options);
- ``storage/``: buildah's image store (its own, so that it never meets a system store configured
  for another driver), holding the base and the built images. A built image is tagged with a hash
  of its build context, Dockerfile, build script and base, so a test session finds it again
  while nothing changed, and builds anew when anything did.

A cold start (packages, mmdebstrap, the build) takes a few minutes; a warm one a second.
"""

from __future__ import annotations

import contextlib
import email.utils
import fcntl
import hashlib
import json
import os
import subprocess
import sys
import tomllib
import urllib.request
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC
from pathlib import Path
from typing import Any

from tests.image import dockerfile

PROJECT_ROOT = dockerfile.PROJECT_ROOT
ENSURE_PACKAGES = PROJECT_ROOT / "hack" / "ensure-debian-packages.sh"
BUILD_SCRIPT = PROJECT_ROOT / "hack" / "build-image.sh"
# buildah builds and runs the image, mmdebstrap makes the base; unshare, nsenter and mount (the
# read-only root of tests/image/container.py) are util-linux and mount, essential on Debian.
DEBIAN_PACKAGES = ("buildah", "mmdebstrap", "util-linux", "mount")

MIRROR = "http://deb.debian.org/debian"
SUITE = "bookworm"
# What the Dockerfile needs of a base (python3 with venv, and CA certificates for pip), and no
# documentation: the base is for building and running the image in tests only.
BASE_PACKAGES = ("python3", "python3-venv", "ca-certificates")
MMDEBSTRAP_OPTIONS = (
    "--variant=minbase",
    "--dpkgopt=path-exclude=/usr/share/doc/*",
    "--dpkgopt=path-exclude=/usr/share/man/*",
    "--dpkgopt=path-exclude=/usr/share/locale/*",
)
BASE_REPOSITORY = "localhost/kfp-operator-test-base"
IMAGE_REPOSITORY = "localhost/kfp-operator-test"
KEEP_IMAGES = 3  # built images kept in the store (worktrees of one machine share it)
KEEP_BASES = 2  # base root filesystems kept in the cache
BUILD_TIMEOUT = 1800.0  # seconds: a cold build on a busy machine with a slow mirror


class ImageUnavailable(RuntimeError):
    """The tools, the base or the image could not be had; the message says which and why."""


def cache_root() -> Path:
    """The project's cache (as hack/lib-gobins.sh has it), where ``image/`` holds this module's."""
    default = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "kfp-operator"
    return Path(os.environ.get("KFP_OPERATOR_CACHE") or default) / "image"


def project_version() -> str:
    return str(tomllib.loads((PROJECT_ROOT / "pyproject.toml").read_text())["project"]["version"])


def ensure_tools() -> None:
    """Installs buildah and mmdebstrap (with apt, as root, or sudo) unless they are there."""
    result = subprocess.run(
        ["bash", str(ENSURE_PACKAGES), *DEBIAN_PACKAGES],
        stdout=sys.stderr,  # apt's progress goes where pytest shows it on failure
        stderr=subprocess.PIPE,
        text=True,
        check=False,
        timeout=BUILD_TIMEOUT,
    )
    if result.returncode != 0:
        raise ImageUnavailable(f"{ENSURE_PACKAGES.name} {' '.join(DEBIAN_PACKAGES)}: {result.stderr.strip()}")


@dataclass(frozen=True)
class Buildah:
    """buildah with the cache's own image store: vfs (it needs no kernel overlay support and no
    fuse) and chroot isolation (no OCI runtime), which work as root on any Linux machine."""

    cache: Path

    @property
    def storage_conf(self) -> Path:
        return self.cache / "storage.conf"

    def env(self) -> dict[str, str]:
        """The environment of every buildah command: the store and the isolation."""
        if not self.storage_conf.exists():
            self.cache.mkdir(parents=True, exist_ok=True)
            self.storage_conf.write_text(
                "[storage]\n"
                'driver = "vfs"\n'
                f'graphroot = "{self.cache / "storage"}"\n'
                f'runroot = "{self.cache / "run"}"\n'
            )
        return {
            **os.environ,
            "CONTAINERS_STORAGE_CONF": str(self.storage_conf),
            "BUILDAH_ISOLATION": "chroot",
        }

    def command(self, *args: str) -> list[str]:
        return ["buildah", *args]

    def __call__(self, *args: str, timeout: float = 300.0) -> str:
        """Runs buildah and returns its output; raises ImageUnavailable with its stderr on failure."""
        result = subprocess.run(
            self.command(*args), env=self.env(), capture_output=True, text=True, check=False, timeout=timeout
        )
        if result.returncode != 0:
            raise ImageUnavailable(f"buildah {' '.join(args)}: {result.stderr.strip()}")
        return result.stdout.strip()

    def has_image(self, reference: str) -> bool:
        try:
            self("inspect", "--type", "image", "--format", "{{.FromImageID}}", reference)
        except ImageUnavailable:
            return False
        return True

    def image_id(self, reference: str) -> str:
        return self("inspect", "--type", "image", "--format", "{{.FromImageID}}", reference)

    def inspect(self, reference: str) -> dict[str, Any]:
        result: dict[str, Any] = json.loads(self("inspect", "--type", "image", reference))
        return result

    def tags(self, repository: str) -> list[tuple[str, int]]:
        """(reference, creation time) of the images tagged in ``repository``, newest first."""
        listed = json.loads(self("images", "--json") or "[]")
        found = [
            (name, int(image.get("created") or 0))
            for image in listed
            for name in image.get("names") or ()
            if name.rpartition(":")[0] == repository
        ]
        return sorted(found, key=lambda item: item[1], reverse=True)

    def prune(self, repository: str, keep: int) -> None:
        """Removes all but the ``keep`` newest images of ``repository``."""
        for reference, _ in self.tags(repository)[keep:]:
            with contextlib.suppress(ImageUnavailable):
                self("rmi", reference)


@contextlib.contextmanager
def locked(cache: Path) -> Iterator[None]:
    """One builder at a time per cache: test sessions of several worktrees may start together."""
    cache.mkdir(parents=True, exist_ok=True)
    with (cache / "lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


# ---- the Debian base -------------------------------------------------------------------------------


def recipe_hash() -> str:
    recipe = {"mirror": MIRROR, "suite": SUITE, "packages": BASE_PACKAGES, "options": MMDEBSTRAP_OPTIONS}
    return hashlib.sha256(json.dumps(recipe, sort_keys=True).encode()).hexdigest()[:8]


def mirror_snapshot(timeout: float = 20.0) -> str | None:
    """The date of the suite's Release on the mirror (it changes with each point release), as
    ``YYYYMMDDTHHMMSSZ``; None when the mirror cannot be reached."""
    request = urllib.request.Request(f"{MIRROR}/dists/{SUITE}/InRelease", headers={"Range": "bytes=0-4095"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            head = response.read(4096).decode(errors="replace")
    except OSError:
        return None
    for line in head.splitlines():
        if line.startswith("Date:"):
            date = email.utils.parsedate_to_datetime(line.removeprefix("Date:").strip())
            return date.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")
    return None


def base_rootfs(cache: Path) -> Path:
    """The base root filesystem (a tarball) of the mirror's current snapshot, made by mmdebstrap
    unless cached; offline, the newest one cached."""
    recipe = recipe_hash()
    pattern = f"debian-{SUITE}-*-{recipe}.tar"
    snapshot = mirror_snapshot()
    if snapshot is None:
        cached = sorted(cache.glob(pattern))
        if not cached:
            raise ImageUnavailable(f"{MIRROR} is unreachable and no Debian base is cached in {cache}")
        return cached[-1]
    tarball = cache / f"debian-{SUITE}-{snapshot}-{recipe}.tar"
    if not tarball.exists():
        partial = tarball.with_suffix(".partial.tar")
        result = subprocess.run(
            [
                "mmdebstrap",
                *MMDEBSTRAP_OPTIONS,
                f"--include={','.join(BASE_PACKAGES)}",
                SUITE,
                str(partial),
                MIRROR,
            ],
            capture_output=True,
            text=True,
            check=False,
            timeout=BUILD_TIMEOUT,
        )
        if result.returncode != 0:
            partial.unlink(missing_ok=True)
            raise ImageUnavailable(f"mmdebstrap {SUITE}: {result.stderr.strip()[-3000:]}")
        partial.rename(tarball)
    for old in sorted(cache.glob(pattern))[:-KEEP_BASES]:
        old.unlink(missing_ok=True)
    return tarball


def base_image(buildah: Buildah, tarball: Path) -> str:
    """The base root filesystem as an image in buildah's store (imported once per tarball)."""
    reference = f"{BASE_REPOSITORY}:{tarball.stem.removeprefix('debian-')}"
    if not buildah.has_image(reference):
        container = buildah("from", "scratch")
        try:
            buildah("add", container, str(tarball), "/", timeout=BUILD_TIMEOUT)
            buildah("commit", "--quiet", container, reference, timeout=BUILD_TIMEOUT)
        finally:
            with contextlib.suppress(ImageUnavailable):
                buildah("rm", container)
        buildah.prune(BASE_REPOSITORY, KEEP_BASES)
    return reference


# ---- the operator image ----------------------------------------------------------------------------


@dataclass(frozen=True)
class BuiltImage:
    buildah: Buildah
    reference: str
    base: str

    def config(self) -> dict[str, Any]:
        """The image's OCI configuration (User, Env, Entrypoint, Labels...)."""
        config: dict[str, Any] = self.buildah.inspect(self.reference)["OCIv1"]["config"]
        return config


def build_image(buildah: Buildah, base: str, *, extra_env: Mapping[str, str] | None = None) -> BuiltImage:
    """The operator image built from the repository on ``base`` with hack/build-image.sh, unless an
    image of the same sources, Dockerfile, build script and base is in the store."""
    key = dockerfile.digest(extra=[BUILD_SCRIPT.read_bytes(), buildah.image_id(base), project_version()])
    reference = f"{IMAGE_REPOSITORY}:{key[:16]}"
    if not buildah.has_image(reference):
        env = {
            **buildah.env(),
            "CONTAINER_TOOL": "buildah",
            "PYTHON_IMAGE": base,
            "IMAGE": reference,
            **(extra_env or {}),
        }
        result = subprocess.run(
            ["bash", str(BUILD_SCRIPT)],
            env=env,
            capture_output=True,
            text=True,
            check=False,
            timeout=BUILD_TIMEOUT,
        )
        if result.returncode != 0:
            raise ImageUnavailable(f"{BUILD_SCRIPT.name}: {result.stderr.strip()[-5000:]}")
        buildah.prune(IMAGE_REPOSITORY, KEEP_IMAGES)
    return BuiltImage(buildah, reference, base)


def operator_image(cache: Path | None = None) -> BuiltImage:
    """The tools, the base and the image, each made only when missing (see the module's doc)."""
    cache = cache or cache_root()
    ensure_tools()
    buildah = Buildah(cache)
    with locked(cache):
        base = base_image(buildah, base_rootfs(cache))
        return build_image(buildah, base)


if __name__ == "__main__":
    # `python -m tests.image.build`: makes (or finds) the test image and prints its reference.
    print(operator_image().reference)
