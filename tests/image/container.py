"""Running the operator image as the chart's Deployment runs its pod, with ``buildah run``.

The container gets the pod's user, its volumes (a ConfigMap as a read-only directory, an emptyDir
as an empty writable one), its environment and its arguments, and, when the securityContext says
``readOnlyRootFilesystem``, a read-only root. The container shares the host's network (chroot
isolation makes no network namespace), so the local stack's loopback URLs work unchanged.

buildah has no read-only root itself: in a mount namespace of its own, the working container's
root is bind-mounted onto itself read-only before ``buildah run``, whose bind of it for the
container inherits the flag. buildah bind-mounts a few files of its own (``/etc/hosts``...) and
creates mount points, which a read-only root cannot take, so they are made beforehand, as a
container runtime makes them before a pod starts. When the container's command ends, buildah
removes what it placed in the root; so once the command runs, the root is made writable again in
buildah's namespace (the container's own mount of it stays read-only).
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import yaml

from kfp_devstack.waiting import wait_until
from tests.chart.chartlib import Rendered
from tests.image.build import BuiltImage, ImageUnavailable
from tests.lifecycle.harness import TIMEOUT, OperatorProcess

# Files buildah (chroot isolation) bind-mounts over the root on every run.
BUILDAH_MOUNT_POINTS = ("etc/hosts", "etc/hostname", "etc/resolv.conf", "run/.containerenv")
CONTAINER_PREFIX = "kfp-operator-test-"
KUBECONFIG_DIR = "/etc/kfp-operator-test"  # where the tests' kubeconfig is mounted (not a chart path)
# Makes the root read-only for the buildah run it then becomes: $1 is the root, the rest buildah's.
READ_ONLY_RUN = 'mount --bind "$1" "$1" && mount -o remount,bind,ro "$1" && shift && exec buildah run "$@"'


@dataclass(frozen=True)
class VolumeMount:
    name: str
    path: str
    read_only: bool
    kind: str  # "configMap" or "emptyDir": what the chart's pod mounts
    items: Mapping[str, str] = field(default_factory=dict)  # a ConfigMap's files


@dataclass(frozen=True)
class PodShape:
    """What a container run takes of the chart's pod: user, root filesystem, volumes, command."""

    user: int
    group: int
    read_only_root: bool
    mounts: tuple[VolumeMount, ...]
    args: tuple[str, ...]
    env: Mapping[str, str]

    @classmethod
    def of(cls, rendered: Rendered, namespace: str) -> PodShape:
        """The shape of the rendered Deployment's pod in ``namespace``; fails on anything in the
        pod spec it cannot reproduce, so a chart change that matters here is noticed."""
        pod, container = rendered.pod_spec, rendered.container
        security = {**pod.get("securityContext", {}), **container.get("securityContext", {})}
        mounts = []
        for mount in container.get("volumeMounts", []):
            volume = rendered.volume(mount["name"])
            assert volume is not None, mount
            if "configMap" in volume:
                data = rendered.one("ConfigMap", volume["configMap"]["name"])["data"]
                mounts.append(VolumeMount(mount["name"], mount["mountPath"], True, "configMap", data))
            elif "emptyDir" in volume:
                mounts.append(VolumeMount(mount["name"], mount["mountPath"], False, "emptyDir"))
            else:
                raise AssertionError(f"volume {volume} is not one the image tests can mount")
            assert mount.get("readOnly", False) == mounts[-1].read_only, mount
        return cls(
            user=int(security["runAsUser"]),
            group=int(security.get("runAsGroup", security["runAsUser"])),
            read_only_root=bool(security.get("readOnlyRootFilesystem", False)),
            mounts=tuple(mounts),
            args=tuple(container.get("args", ())),
            env=_environment(container.get("env", []), namespace),
        )


def _environment(env: Sequence[Mapping[str, Any]], namespace: str) -> dict[str, str]:
    """A container's env as the kubelet resolves it: the pod's namespace from the downward API,
    and ``$(NAME)`` references to the variables before."""
    resolved: dict[str, str] = {}
    for variable in env:
        if "value" in variable:
            value = str(variable["value"])
            for name, earlier in resolved.items():
                value = value.replace(f"$({name})", earlier)
        else:
            field_path = variable["valueFrom"]["fieldRef"]["fieldPath"]
            assert field_path == "metadata.namespace", variable
            value = namespace
        resolved[variable["name"]] = value
    return resolved


class ContainerRun:
    """One working container of the image and one ``buildah run`` of it, as the pod's container:
    ``command`` is appended to the image's entrypoint."""

    def __init__(
        self,
        image: BuiltImage,
        pod: PodShape,
        work_dir: Path,
        *,
        files: Mapping[str, Mapping[str, str]] | None = None,
        extra_mounts: Sequence[tuple[Path, str]] = (),
        env: Mapping[str, str] | None = None,
    ) -> None:
        """``files`` replaces the files of a ConfigMap volume (by volume name); ``extra_mounts`` are
        host directories mounted read-only (host path, container path)."""
        self.image = image
        self.buildah = image.buildah
        self.pod = pod
        self.name = f"{CONTAINER_PREFIX}{os.getpid()}-{uuid.uuid4().hex[:8]}"
        self.volumes_dir = work_dir / self.name
        self.files = dict(files or {})
        self.extra_mounts = list(extra_mounts)
        self.env = {**pod.env, **(env or {})}
        self.process: subprocess.Popen[bytes] | None = None
        self.container: str | None = None
        self._rootfs: Path | None = None  # read-only in buildah's namespace until release_root()

    def start(
        self,
        command: Sequence[str] = (),
        *,
        entrypoint: Sequence[str] | None = None,
        stdout: IO[bytes] | int | None = None,
        stdin: int | None = subprocess.DEVNULL,
        release_root: bool = True,
    ) -> subprocess.Popen[bytes]:
        """Starts the container in a session of its own, and returns its buildah process. It runs
        the image's entrypoint with the pod's arguments and ``command``, or ``entrypoint`` with
        ``command`` alone. With ``release_root=False`` a read-only root stays read-only in
        buildah's namespace too until :meth:`release_root` (call it before the command ends)."""
        if self.container is None:
            self.container = self.buildah("from", "--name", self.name, self.image.reference)
        rootfs = Path(self.buildah("mount", self.container))
        run_args = ["--user", f"{self.pod.user}:{self.pod.group}"]
        for host, path, read_only in [*self._volumes(), *((h, p, True) for h, p in self.extra_mounts)]:
            run_args += ["--volume", f"{host}:{path}:{'ro' if read_only else 'rw'}"]
            _make_mount_point(rootfs, path, directory=host.is_dir())
        for name, value in self.env.items():
            run_args += ["--env", f"{name}={value}"]
        if entrypoint is None:
            entrypoint = [*(self.image.config().get("Entrypoint") or []), *self.pod.args]
        run_args += [self.container, "--", *entrypoint, *command]
        if self.pod.read_only_root:
            for path in BUILDAH_MOUNT_POINTS:
                _make_mount_point(rootfs, "/" + path, directory=False)
            argv = ["unshare", "--mount", "--propagation", "private", "sh", "-c", READ_ONLY_RUN, "sh"]
            argv += [str(rootfs), *run_args]
        else:
            argv = ["buildah", "run", *run_args]
        self.process = subprocess.Popen(
            argv,
            stdout=stdout,
            stderr=subprocess.STDOUT if stdout is not None else None,
            stdin=stdin,
            env=self.buildah.env(),
            start_new_session=True,  # its process group holds buildah and the container
        )
        if self.pod.read_only_root:
            wait_until(self._started, timeout=TIMEOUT, message="the container's command to start")
            self._rootfs = rootfs
            if release_root:
                self.release_root()
        return self.process

    def release_root(self) -> None:
        """Makes the read-only root writable again in buildah's namespace, so that buildah can
        remove what it placed there once the command ends; the container's own mount stays
        read-only (see the module's doc). A container whose command checks its root's mode
        starts with ``release_root=False`` and calls this once the check is done, so the check
        cannot race the remount."""
        if self._rootfs is None:
            return
        assert self.process is not None
        rootfs, self._rootfs = self._rootfs, None
        subprocess.run(
            [
                "nsenter",
                f"--target={self.process.pid}",
                "--mount",
                "mount",
                "-o",
                "remount,bind,rw",
                str(rootfs),
            ],
            check=True,
            timeout=30,
        )

    def _volumes(self) -> list[tuple[Path, str, bool]]:
        """(host directory, container path, read-only) of the pod's volumes, made afresh."""
        volumes = []
        for mount in self.pod.mounts:
            host = self.volumes_dir / mount.name
            host.mkdir(parents=True, exist_ok=True)
            if mount.kind == "configMap":
                for name, text in self.files.get(mount.name, mount.items).items():
                    (host / name).write_text(text)
            else:
                host.chmod(0o777)  # as the kubelet makes an emptyDir
            volumes.append((host, mount.path, mount.read_only))
        return volumes

    def _started(self) -> bool:
        assert self.process is not None
        if self.process.poll() is not None:
            raise ImageUnavailable(
                f"buildah run exited with {self.process.returncode} before the command ran"
            )
        return self.entrypoint_pid() is not None

    def entrypoint_pid(self) -> int | None:
        """The container's first process: the first of buildah's session that is no part of
        buildah (its helpers run from memfd files) and runs chrooted in the container."""
        assert self.process is not None
        found = []
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                stat = (entry / "stat").read_text()
                exe = str((entry / "exe").readlink())
                root = str((entry / "root").readlink())
            except OSError:
                continue
            fields = stat.rpartition(")")[2].split()
            session, start_time = int(fields[3]), int(fields[19])
            if session == self.process.pid and root != "/" and not exe.startswith("/memfd:"):
                found.append((start_time, int(entry.name)))
        return min(found)[1] if found else None

    def terminate(self, timeout: float = TIMEOUT) -> int:
        """SIGTERM to the container's command, as Kubernetes stops a pod; returns buildah's exit
        status, which is the command's (buildah itself would kill the command on SIGTERM)."""
        assert self.process is not None
        pid = self.entrypoint_pid()
        if pid is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)
        return self.process.wait(timeout=timeout)

    def kill(self) -> None:
        """SIGKILL to buildah and the container, as a crash or an OOM kill."""
        if self.process is not None and self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=TIMEOUT)

    def remove(self) -> None:
        """Kills what still runs and removes the working container."""
        self.kill()
        if self.container is not None:
            with contextlib.suppress(ImageUnavailable):
                self.buildah("rm", self.container)
            self.container = None


def _make_mount_point(rootfs: Path, path: str, *, directory: bool) -> None:
    """Creates a mount point in the container's root (as root on the host), refusing any path
    that leaves the root through a symbolic link."""
    target = rootfs / path.lstrip("/")
    assert target.parent.resolve().is_relative_to(rootfs.resolve()), f"{path} leaves the container's root"
    if target.exists() or target.is_symlink():
        return
    if directory:
        target.mkdir(parents=True)
    else:
        target.parent.mkdir(parents=True, exist_ok=True)
        target.touch()


def remove_stale_containers(image: BuiltImage) -> None:
    """Removes working containers that test sessions no longer running left behind."""
    listed = image.buildah("containers", "--noheading", "--format", "{{.ContainerName}}")
    for name in listed.splitlines():
        pid = name.removeprefix(CONTAINER_PREFIX).partition("-")[0]
        if name.startswith(CONTAINER_PREFIX) and pid.isdigit() and not Path(f"/proc/{pid}").exists():
            with contextlib.suppress(ImageUnavailable):
                image.buildah("rm", name)


class ImageOperator(OperatorProcess):
    """The operator as the lifecycle tests run it (an :class:`OperatorProcess`, with its metrics and
    health endpoints), but from the image, in the chart's pod shape: the configuration is the
    ConfigMap volume's ``config.yaml``, the kubeconfig is mounted read-only beside it."""

    def __init__(
        self,
        image: BuiltImage,
        pod: PodShape,
        config: Mapping[str, Any],
        kubeconfig: Path,
        work_dir: Path,
        *,
        env: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(config, kubeconfig, work_dir, env=env)
        (config_volume,) = [m for m in pod.mounts if m.kind == "configMap"]
        kube_dir = work_dir / f"kube-{uuid.uuid4().hex[:6]}"
        kube_dir.mkdir()
        (kube_dir / "kubeconfig").write_text(kubeconfig.read_text())
        self.container = ContainerRun(
            image,
            pod,
            work_dir,
            files={config_volume.name: {"config.yaml": yaml.safe_dump(self.config)}},
            extra_mounts=[(kube_dir, KUBECONFIG_DIR)],
            env=env,
        )

    def start(self) -> ImageOperator:
        with self.log.open("ab") as out:
            self.process = self.container.start([f"--kubeconfig={KUBECONFIG_DIR}/kubeconfig"], stdout=out)
        wait_until(
            self._leading, timeout=TIMEOUT, message=lambda: f"the operator to lead; log:\n{self.tail()}"
        )
        return self

    def stop(self) -> int:
        return self.container.terminate()

    def kill(self) -> None:
        self.container.kill()

    def remove(self) -> None:
        self.container.remove()
