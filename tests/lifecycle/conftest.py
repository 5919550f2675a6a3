"""Fixtures of the Run lifecycle tests: one NATS server per session, a fresh emulator per test
(or the session's real KFP API server, for the tests marked to run on both backends)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import kubernetes
import pytest

from kfp_devstack.controlplane import ControlPlane
from kfp_devstack.emulator import Emulator, EmulatorConfig, EmulatorControl
from kfp_devstack.nats import NatsServer, ensure_stream
from tests.lifecycle.harness import EVENTS_STREAM, World, world_of

# Runs take a fraction of a second per step, so a whole pipeline completes in about a second.
FAST = {"pending_seconds": 0.1, "task_seconds": 0.1, "cancel_seconds": 0.1}


@pytest.fixture(scope="session")
def nats_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NatsServer]:
    server = NatsServer(work_dir=tmp_path_factory.mktemp("nats"))
    server.start()
    ensure_stream(server.url, EVENTS_STREAM, ["events.>"])
    yield server
    server.stop()


@pytest.fixture
def emulator(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Emulator]:
    """A fresh emulator, or, for tests parametrised with ``on_both_backends``, the real KFP API
    server of the session behind its emulator (shared: scripts and faults are cleared after)."""
    if getattr(request, "param", "emulator") == "real":
        real: Emulator = request.getfixturevalue("real_kfp")
        yield real
        control = EmulatorControl(real.url)
        control.clear_faults()
        for key in control.scenarios():
            if key.startswith("pipeline:"):
                control.script_pipeline(key.removeprefix("pipeline:"), None)
        control.script_default(None)
        return
    with Emulator(EmulatorConfig(state_dir=tmp_path / "kfp", **FAST)) as running:
        yield running


@pytest.fixture
def world(
    namespace: str,
    api_client: kubernetes.client.ApiClient,
    control_plane: ControlPlane,
    emulator: Emulator,
    nats_server: NatsServer,
    tmp_path: Path,
) -> Iterator[World]:
    kubeconfig = control_plane.kubeconfig
    with world_of(namespace, api_client, emulator, nats_server.url, kubeconfig, tmp_path) as world:
        yield world
