"""The operator against KFP's own API server in multi-user mode, end to end.

Set up as docs/installation.md ("Multi-user KFP") tells a platform engineer to: the operator
sends a ServiceAccount token of audience ``pipelines.kubeflow.org`` and holds Kubeflow's
``kubeflow-pipelines-edit`` in its profile namespace. The server's persistence agent reports
the Workflows of that namespace with a token of its own, as in a Kubeflow installation, and the
emulator drives them, reading the server as a user allowed to.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import kubernetes
import pytest

from kfp_devstack.controlplane import ControlPlane
from kfp_devstack.emulator import Emulator, EmulatorConfig
from kfp_devstack.realkfp import locate_kfp_binaries
from kfp_devstack.realkfp.kfp_server import NAMESPACE, KfpApiServer, PersistenceAgent
from kfp_devstack.waiting import wait_until
from reconcilers.api import GROUP, VERSION
from tests.lifecycle.harness import TIMEOUT, World
from tests.lifecycle.test_pipelines import PARAMETERS, PENGUIN_SPEC, create, wait_ready
from tests.support.real_kfp import (
    KFP_AUDIENCE,
    KFP_GROUP,
    KUBEFLOW_PIPELINES_EDIT_RULES,
    REAL_KFP_TIMINGS,
    bind_cluster_role,
    cluster_role,
)

pytestmark = pytest.mark.slow

# What KFP's manifests grant the persistence agent: reporting Workflows, authorized cluster-wide.
AGENT_RULES = [
    {"apiGroups": [KFP_GROUP], "resources": ["workflows", "scheduledworkflows"], "verbs": ["report"]}
]
# What the emulator needs to drive a run's Workflow: the run and its pipeline version.
DRIVER_RULES = [
    {"apiGroups": [KFP_GROUP], "resources": ["runs", "pipelines", "pipelines/versions"], "verbs": ["get"]}
]


@pytest.fixture(scope="module")
def profile(make_namespace: Callable[..., str]) -> str:
    return make_namespace("profile")


@pytest.fixture(scope="module")
def multi_user_kfp(
    real_kfp_multi_user: KfpApiServer,
    control_plane: ControlPlane,
    api_client: kubernetes.client.ApiClient,
    service_account_token: Callable[..., str],
    profile: str,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Emulator]:
    """The multi-user server with a persistence agent for the profile, behind an emulator that
    drives the profile's Workflows."""
    agent_account = f"kfp-persistence-{profile}"
    agent_token = service_account_token(NAMESPACE, agent_account, [KFP_AUDIENCE])
    bind_cluster_role(
        api_client,
        None,
        cluster_role(api_client, AGENT_RULES),
        f"system:serviceaccount:{NAMESPACE}:{agent_account}",
        check=("report", "workflows"),
    )
    driver = f"kfp-devstack-driver-{profile}"
    bind_cluster_role(api_client, None, cluster_role(api_client, DRIVER_RULES), driver, check=("get", "runs"))

    agent = PersistenceAgent(tmp_path_factory.mktemp("multi-user-agent"), control_plane.kubeconfig)
    assert real_kfp_multi_user.http_port is not None and real_kfp_multi_user.grpc_port is not None
    agent.start(
        locate_kfp_binaries(),
        http_port=real_kfp_multi_user.http_port,
        grpc_port=real_kfp_multi_user.grpc_port,
        namespace=profile,
        token=agent_token,
    )
    config = EmulatorConfig(
        state_dir=tmp_path_factory.mktemp("multi-user-emulator"),
        real_kfp_url=real_kfp_multi_user.url,
        kubeconfig=control_plane.kubeconfig,
        kfp_namespace=profile,
        real_kfp_user=driver,
        **REAL_KFP_TIMINGS,
    )
    try:
        with Emulator(config) as running:
            yield running
    finally:
        agent.stop()


@pytest.fixture
def namespace(profile: str) -> str:
    """The lifecycle tests' World is made in the profile."""
    return profile


@pytest.fixture
def emulator(multi_user_kfp: Emulator) -> Emulator:
    """The lifecycle tests' World talks to the multi-user server."""
    return multi_user_kfp


@pytest.fixture
def operator_token(
    api_client: kubernetes.client.ApiClient,
    make_namespace: Callable[..., str],
    service_account_token: Callable[..., str],
    profile: str,
    tmp_path: Path,
) -> Path:
    """The file the chart mounts: a token of the operator's ServiceAccount for KFP, whose
    ServiceAccount holds kubeflow-pipelines-edit in the profile namespace."""
    namespace = make_namespace("kfp-operator")
    token_file = tmp_path / "kfp-token"
    token_file.write_text(service_account_token(namespace, "kfp-operator", [KFP_AUDIENCE]))
    edit = cluster_role(api_client, KUBEFLOW_PIPELINES_EDIT_RULES)
    bind_cluster_role(api_client, profile, edit, f"system:serviceaccount:{namespace}:kfp-operator")
    return token_file


def delivered(status: dict[str, Any]) -> bool:
    return bool((status.get("completionEvent") or {}).get("deliveredAt"))


def test_pipelines_experiments_and_runs_go_through_as_the_operators_service_account(
    world: World, operator_token: Path, make_namespace: Callable[..., str]
) -> None:
    elsewhere = make_namespace("other-profile")  # where the operator's ServiceAccount holds nothing
    world.start_operator(
        kfp={"endpoint": world.emulator.url, "multiUser": True, "tokenPath": str(operator_token)},
        watchNamespaces=[world.namespace, elsewhere],
    )

    create(world, "Experiment", "penguin-experiment", {"description": "Penguin runs"})
    create(world, "Pipeline", "penguin", {"compiled": {"pipelineSpec": PENGUIN_SPEC}})
    wait_ready(world, "Experiment", "penguin-experiment")
    wait_ready(world, "Pipeline", "penguin")
    name = world.create_run(
        {
            "pipeline": "penguin",
            "experimentName": "penguin-experiment",
            "runtimeParameters": PARAMETERS,
            "artifacts": [{"name": "model", "path": "Trainer:model"}],
        }
    )
    status = world.wait_run(name, delivered, "completed and published")
    assert status["completionState"] == "Succeeded"
    assert [artifact["name"] for artifact in status["artifacts"]] == ["model"]
    [event] = world.published_events()
    assert event["data"]["status"] == "succeeded"

    # Where KFP does not let the operator act, the Pipeline says so, and names who was refused.
    world.custom.create_namespaced_custom_object(
        GROUP,
        VERSION,
        elsewhere,
        "pipelines",
        {
            "apiVersion": f"{GROUP}/{VERSION}",
            "kind": "Pipeline",
            "metadata": {"name": "penguin"},
            "spec": {"compiled": {"pipelineSpec": PENGUIN_SPEC}},
        },
    )

    def refused() -> dict[str, Any] | None:
        obj = world.custom.get_namespaced_custom_object(GROUP, VERSION, elsewhere, "pipelines", "penguin")
        conditions = (obj.get("status") or {}).get("conditions") or []
        return next(
            (c for c in conditions if c["type"] == "Synchronized" and c["reason"] == "KfpRequestFailed"),
            None,
        )

    synchronized = wait_until(refused, timeout=TIMEOUT, message="the Pipeline to say KfpRequestFailed")
    assert synchronized["status"] == "Unknown"
    assert "HTTP 403" in synchronized["message"] and elsewhere in synchronized["message"]
