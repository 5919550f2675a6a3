"""TLS to KFP and ML Metadata: the operator completes a Run against an emulator serving both over
TLS with certificates of the local stack's PKI when it is given their CA, and not without it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import kubernetes
import pytest

from kfp_devstack.controlplane import ControlPlane
from kfp_devstack.emulator import Emulator, EmulatorConfig
from kfp_devstack.nats import NatsServer
from kfp_devstack.pki import Pki, ensure_pki
from tests.lifecycle.conftest import FAST
from tests.lifecycle.harness import World, world_of

SPEC = {
    "pipeline": "penguin-pipeline:v1-abcdef",
    "experimentName": "penguin-experiment",
    "runtimeParameters": [{"name": "TRAINING_RUNS", "value": "3"}, {"name": "EXAMPLES", "value": "s3://e"}],
    "artifacts": [{"name": "model", "path": "Trainer:model"}],
}


@pytest.fixture
def pki(tmp_path: Path) -> Pki:
    return ensure_pki(tmp_path / "pki")


@pytest.fixture
def tls_world(
    namespace: str,
    api_client: kubernetes.client.ApiClient,
    control_plane: ControlPlane,
    nats_server: NatsServer,
    pki: Pki,
    tmp_path: Path,
) -> Iterator[World]:
    config = EmulatorConfig(
        state_dir=tmp_path / "kfp", tls_cert=pki.serving_cert, tls_key=pki.serving_key, **FAST
    )
    with (
        Emulator(config) as emulator,
        world_of(
            namespace,
            api_client,
            emulator,
            nats_server.url,
            control_plane.kubeconfig,
            tmp_path,
            ca_file=pki.ca_cert,
        ) as world,
    ):
        world.upload_penguin()
        world.create_experiment()
        yield world


def tls_settings(world: World, ca_file: Path | None) -> dict:
    ca = {"caFile": str(ca_file)} if ca_file is not None else {}
    return {
        "kfp": {"endpoint": world.emulator.url, **ca},
        "mlmd": {"host": world.emulator.mlmd_host, "port": world.emulator.mlmd_port, "tls": True, **ca},
    }


def test_with_the_ca_the_operator_completes_a_run_over_tls(tls_world: World, pki: Pki) -> None:
    assert tls_world.emulator.url.startswith("https://")
    tls_world.start_operator(**tls_settings(tls_world, pki.ca_cert))

    name = tls_world.create_run(SPEC)

    status = tls_world.wait_completed(name)
    assert status["completionState"] == "Succeeded"
    assert status["artifacts"][0]["name"] == "model"  # read from ML Metadata over TLS


def test_without_the_ca_the_operator_does_not_trust_kfp_and_says_so(tls_world: World) -> None:
    operator = tls_world.start_operator(**tls_settings(tls_world, None))

    name = tls_world.create_run(SPEC)

    tls_world.wait_run(
        name,
        lambda status: any(c["reason"] == "KfpUnavailable" for c in status.get("conditions", ())),
        "a condition saying KFP is unavailable",
    )
    ready = tls_world.condition(name, "Ready")
    assert (ready["status"], ready["reason"]) == ("False", "KfpUnavailable")
    assert "CERTIFICATE_VERIFY_FAILED" in ready["message"]
    tls_world.wait_event(name, "KfpUnavailable")
    assert not tls_world.status(name).get("providerId")
    assert operator.metric("kfp_operator_kfp_requests_total", code="<error>") > 0
