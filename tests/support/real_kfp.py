"""Session fixtures for the real KFP API server (KFP 2.17.0, built from source).

``real_kfp`` is an :class:`Emulator` standing in front of the real server: its ``url``
serves the KFP API (answered by the real server, counted and faultable by the
emulator), its ``mlmd_host``/``mlmd_port`` the ML Metadata the driven runs write, and
``EmulatorControl(real_kfp.url)`` scripts runs as with the emulator alone. It is started
once per test session, on the session's control plane; tests keep out of each other's
way as with the shared emulator (unique pipeline names, their own experiments).

``real_kfp_multi_user`` is a second real API server, in multi-user mode, on the same
database server and object store (its own database) and the same control plane, which it
asks to review bearer tokens and to authorize each call. Nothing drives its Workflows: its
runs stay PENDING.

Imported by ``tests/conftest.py`` so that every test directory can use it.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import kubernetes
import pytest

from kfp_devstack.controlplane import ControlPlane
from kfp_devstack.emulator import Emulator, EmulatorConfig
from kfp_devstack.realkfp import RealKfpBackend, locate_kfp_binaries
from kfp_devstack.realkfp.kfp_server import KfpApiServer
from kfp_devstack.waiting import wait_until

KFP_AUDIENCE = "pipelines.kubeflow.org"  # of the tokens a multi-user server reviews
KFP_GROUP = "pipelines.kubeflow.org"  # of the resources it authorizes calls on

# What Kubeflow's aggregated kubeflow-pipelines-edit ClusterRole grants on KFP's own resources
# (KFP's manifests: base/installs/multi-user/view-edit-cluster-roles.yaml, the edit rules and the
# view rules aggregated into them). A multi-user server asks for these verbs.
KUBEFLOW_PIPELINES_EDIT_RULES = [
    {
        "apiGroups": [KFP_GROUP],
        "resources": ["pipelines", "pipelines/versions"],
        "verbs": ["create", "delete", "update"],
    },
    {
        "apiGroups": [KFP_GROUP],
        "resources": ["experiments"],
        "verbs": ["archive", "create", "delete", "unarchive"],
    },
    {
        "apiGroups": [KFP_GROUP],
        "resources": ["runs"],
        "verbs": ["archive", "create", "delete", "retry", "terminate", "unarchive"],
    },
    {"apiGroups": [KFP_GROUP], "resources": ["jobs"], "verbs": ["create", "delete", "disable", "enable"]},
    {
        "apiGroups": [KFP_GROUP],
        "resources": ["pipelines", "pipelines/versions", "experiments", "runs", "jobs"],
        "verbs": ["get", "list"],
    },
]

# The run engine's pace with the real server: the agent's report of the phase-less Workflow
# comes within a few hundred milliseconds, and each step is one Workflow patch and one report.
REAL_KFP_TIMINGS = {"pending_seconds": 0.5, "task_seconds": 0.1, "cancel_seconds": 0.5}


@pytest.fixture(scope="session")
def real_kfp_backend(
    control_plane: ControlPlane, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RealKfpBackend]:
    """MariaDB, moto's S3, the KFP API server and persistence agent, on the session's control plane."""
    backend = RealKfpBackend(tmp_path_factory.mktemp("real-kfp"), control_plane.kubeconfig)
    try:
        yield backend.start(control_plane)
    finally:
        backend.stop()


@pytest.fixture(scope="session")
def real_kfp(
    real_kfp_backend: RealKfpBackend, control_plane: ControlPlane, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Emulator]:
    """The real KFP API server behind an emulator that drives its Workflows (docs/emulator.md §15)."""
    config = EmulatorConfig(
        state_dir=tmp_path_factory.mktemp("real-kfp-emulator"),
        real_kfp_url=real_kfp_backend.url,
        kubeconfig=control_plane.kubeconfig,
        **REAL_KFP_TIMINGS,
    )
    with Emulator(config) as running:
        yield running


@pytest.fixture(scope="session")
def real_kfp_multi_user(
    real_kfp_backend: RealKfpBackend, control_plane: ControlPlane, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[KfpApiServer]:
    """The real KFP API server with ``MULTIUSER=true`` (its URL is ``.url``)."""
    assert real_kfp_backend.database is not None and real_kfp_backend.object_store is not None
    assert real_kfp_backend.database.port is not None and real_kfp_backend.object_store.port is not None
    server = KfpApiServer(
        tmp_path_factory.mktemp("real-kfp-multi-user"),
        control_plane.kubeconfig,
        multi_user=True,
        database="mlpipeline_multi_user",
    )
    server.start(
        locate_kfp_binaries(),
        db_port=real_kfp_backend.database.port,
        s3_port=real_kfp_backend.object_store.port,
    )
    try:
        yield server
    finally:
        server.stop()


def cluster_role(api_client: kubernetes.client.ApiClient, rules: list[dict[str, Any]]) -> str:
    """Creates a uniquely named ClusterRole with these rules; returns its name."""
    name = f"kfp-test-{uuid.uuid4().hex[:8]}"
    kubernetes.client.RbacAuthorizationV1Api(api_client).create_cluster_role(
        {"metadata": {"name": name}, "rules": rules}
    )
    return name


def bind_cluster_role(
    api_client: kubernetes.client.ApiClient,
    namespace: str | None,
    role: str,
    user: str,
    *,
    check: tuple[str, str] = ("create", "runs"),
) -> None:
    """Binds the ClusterRole to the user in the namespace (everywhere for ``None``), and waits until
    authorization allows the user ``check`` (a verb and a resource of KFP's group) there."""
    rbac = kubernetes.client.RbacAuthorizationV1Api(api_client)
    binding = {
        "metadata": {"name": f"{role}-{uuid.uuid4().hex[:6]}"},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": role},
        "subjects": [{"kind": "User", "apiGroup": "rbac.authorization.k8s.io", "name": user}],
    }
    if namespace is None:
        rbac.create_cluster_role_binding(binding)
    else:
        rbac.create_namespaced_role_binding(namespace, binding)
    verb, resource = check
    attributes = {"group": KFP_GROUP, "resource": resource, "verb": verb, "namespace": namespace or ""}
    review = {"spec": {"user": user, "resourceAttributes": attributes}}
    authorization = kubernetes.client.AuthorizationV1Api(api_client)
    wait_until(
        lambda: authorization.create_subject_access_review(review).status.allowed,
        timeout=10,
        message=f"the binding of {role} to {user} to take effect",
    )
