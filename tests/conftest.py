"""Session-wide test harness: one real control plane per test session, a fresh namespace per test.

The control plane is started through the same code as ``kfp-devstack up``.
Namespaces are never reused: without kube-controller-manager a deleted
namespace stays Terminating forever, and the whole etcd is thrown away at the
end of the session anyway.
"""

from __future__ import annotations

import shutil
import subprocess
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import kubernetes
import pytest

from kfp_devstack import binaries
from kfp_devstack.controlplane import ControlPlane
from tests.support.real_kfp import real_kfp, real_kfp_backend, real_kfp_multi_user

# Session fixtures of the real KFP API server.
__all__ = ["real_kfp", "real_kfp_backend", "real_kfp_multi_user"]

TMPFS = Path("/dev/shm")


@pytest.fixture(scope="session")
def control_plane(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ControlPlane]:
    work_dir = tmp_path_factory.mktemp("control-plane")
    # etcd on tmpfs: its writes are the slowest part of every API call otherwise.
    etcd_dir = TMPFS / f"kfp-test-etcd-{uuid.uuid4().hex[:8]}" if TMPFS.is_dir() else None
    plane = ControlPlane(binaries.locate(), work_dir, etcd_data_dir=etcd_dir)
    try:
        plane.start()
        yield plane
    finally:
        plane.stop()
        if etcd_dir is not None:
            shutil.rmtree(etcd_dir, ignore_errors=True)


@pytest.fixture(scope="session")
def promtool() -> Path:
    """promtool, built and cached like the control-plane binaries, so the tests that check rules
    and metrics with it always run."""
    return binaries.locate().promtool


@pytest.fixture(scope="session")
def api_client(control_plane: ControlPlane) -> kubernetes.client.ApiClient:
    return kubernetes.client.ApiClient(control_plane.admin_configuration())


@pytest.fixture(scope="session")
def make_namespace(api_client: kubernetes.client.ApiClient) -> Callable[..., str]:
    """``make(prefix="t", labels=None)``: creates a uniquely named namespace and returns its name."""
    core = kubernetes.client.CoreV1Api(api_client)

    def make(prefix: str = "t", labels: dict[str, str] | None = None) -> str:
        name = f"{prefix}-{uuid.uuid4().hex[:10]}"
        core.create_namespace(
            kubernetes.client.V1Namespace(metadata=kubernetes.client.V1ObjectMeta(name=name, labels=labels))
        )
        return name

    return make


@pytest.fixture
def namespace(make_namespace: Callable[..., str]) -> str:
    """A fresh namespace for the test."""
    return make_namespace()


@pytest.fixture(scope="session")
def service_account_token(api_client: kubernetes.client.ApiClient) -> Callable[..., str]:
    """Returns ``mint(namespace, name, audiences=None)``: creates the ServiceAccount if needed and
    returns a token for it from the TokenRequest API."""
    core = kubernetes.client.CoreV1Api(api_client)

    def mint(namespace: str, name: str, audiences: list[str] | None = None) -> str:
        try:
            core.create_namespaced_service_account(
                namespace,
                kubernetes.client.V1ServiceAccount(metadata=kubernetes.client.V1ObjectMeta(name=name)),
            )
        except kubernetes.client.ApiException as error:
            if error.status != 409:
                raise
        request = kubernetes.client.AuthenticationV1TokenRequest(
            spec=kubernetes.client.V1TokenRequestSpec(audiences=audiences or [], expiration_seconds=3600)
        )
        return core.create_namespaced_service_account_token(name, namespace, request).status.token

    return mint


@pytest.fixture(scope="session")
def kubectl(control_plane: ControlPlane) -> Callable[..., subprocess.CompletedProcess[str]]:
    """Runs the built kubectl against the test control plane; returns the completed process."""

    def run(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(control_plane.binaries.kubectl), f"--kubeconfig={control_plane.kubeconfig}", *args],
            capture_output=True,
            text=True,
            check=check,
            timeout=60,
        )

    return run
