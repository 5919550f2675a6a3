"""Fixtures for the emulator tests.

Most tests share one emulator for the session and keep out of each other's way by
uploading pipelines under unique names (scenarios are scripted per pipeline name) and
creating their own experiments. Tests that need an emulator of their own (restarts,
multi-user mode) use ``start_emulator``.

Modules marked ``contract`` run twice, against each KFP backend: the emulator's own
API (``[emulator]``) and the real KFP API server behind the emulator (``[real]``, the
session's ``real_kfp``), with the same requests and the same expected answers. A test
of something only the emulator does is marked ``emulator_only``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from ml_metadata import metadata_store

from kfp_devstack.emulator import Emulator, EmulatorConfig, EmulatorControl
from tests.emulator.helpers import Kfp, connect_mlmd

# Short timings keep the suite fast; tests that care script their own.
FAST = {"pending_seconds": 0.05, "task_seconds": 0.05, "cancel_seconds": 0.1}


BACKENDS = ("emulator", "real")


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if metafunc.definition.get_closest_marker("contract") and "kfp_backend" in metafunc.fixturenames:
        metafunc.parametrize("kfp_backend", BACKENDS, indirect=True, scope="session")


@pytest.fixture(scope="session")
def kfp_backend(request: pytest.FixtureRequest) -> str:
    """Which KFP API server answers: ``emulator`` unless a contract test is parametrised."""
    return str(getattr(request, "param", "emulator"))


@pytest.fixture(autouse=True)
def _emulator_only(request: pytest.FixtureRequest) -> None:
    marker = request.node.get_closest_marker("emulator_only")
    if marker is not None and request.getfixturevalue("kfp_backend") != "emulator":
        pytest.skip(f"only the emulator does this: {marker.args[0] if marker.args else ''}")


@pytest.fixture(scope="session")
def shared_emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Emulator]:
    with Emulator(EmulatorConfig(state_dir=tmp_path_factory.mktemp("emulator"), **FAST)) as running:
        yield running


@pytest.fixture(scope="session")
def emulator(kfp_backend: str, request: pytest.FixtureRequest) -> Emulator:
    """The emulator the test talks to; with the real backend, the one in front of the real server."""
    return request.getfixturevalue("real_kfp" if kfp_backend == "real" else "shared_emulator")


@pytest.fixture
def ctl(emulator: Emulator) -> Iterator[EmulatorControl]:
    control = EmulatorControl(emulator.url)
    yield control
    control.clear_faults()
    control.mlmd_up()
    control.script_default(None)


@pytest.fixture
def kfp(emulator: Emulator, ctl: EmulatorControl) -> Kfp:
    return Kfp(emulator.url)


@pytest.fixture
def mlmd(emulator: Emulator) -> metadata_store.MetadataStore:
    return connect_mlmd(emulator)


@pytest.fixture
def penguin(kfp: Kfp) -> Any:
    """The penguin pipeline, uploaded under a unique name."""
    return kfp.upload()


@pytest.fixture
def start_emulator(tmp_path: Path) -> Iterator[Callable[..., Emulator]]:
    """``start_emulator(state_dir=None, **config)``: a started emulator, stopped after the test."""
    started: list[Emulator] = []

    def start(state_dir: Path | None = None, **config: Any) -> Emulator:
        settings = {**FAST, **config}
        running = Emulator(EmulatorConfig(state_dir=state_dir or tmp_path / "state", **settings)).start()
        started.append(running)
        return running

    yield start
    for running in started:
        running.stop()
