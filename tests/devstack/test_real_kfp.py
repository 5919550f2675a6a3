"""`kfp-devstack up --kfp real`: the real KFP API server behind the emulator, as a user starts it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from kfp_devstack.processes import ProcessRecord
from kfp_devstack.realkfp.kfp_server import KFP_COMMIT
from tests.emulator.helpers import raw_call

REAL_PARTS = ("database", "objectStore", "apiServer", "agent")


def real_processes(root: Path) -> dict[str, ProcessRecord]:
    state = json.loads((root / "state.json").read_text())
    if "realKfp" not in state:
        return {}
    return {part: ProcessRecord.from_json(state["realKfp"][part]["process"]) for part in REAL_PARTS}


@pytest.fixture
def root(tmp_path: Path, devstack):
    yield tmp_path / "dev"
    if (tmp_path / "dev" / "state.json").exists():
        devstack(tmp_path / "dev", "down")


@pytest.mark.slow
def test_up_with_the_real_server_switches_back_and_down_stops_it(root: Path, devstack) -> None:
    devstack(root, "up", "--kfp", "real", "--no-nats")
    started = real_processes(root)
    assert all(record.is_running() for record in started.values())
    status = devstack(root, "status")
    for component in ("mariadb", "s3 (moto)", "kfp-apiserver", "kfp-persistence", "kfp-emulator"):
        assert f"{component:<15} running" in status

    endpoint = yaml.safe_load((root / "operator.yaml").read_text())["kfp"]["endpoint"]
    health = raw_call(endpoint, "GET", "/apis/v2beta1/healthz").body
    assert health["commit_sha"] == KFP_COMMIT  # answered by the real server, through the emulator

    devstack(root, "up", "--kfp", "real", "--no-nats")
    assert real_processes(root) == started, "a second up restarted the real server"

    devstack(root, "up", "--no-nats")  # back to the emulator's own KFP API
    assert real_processes(root) == {}
    assert not any(record.is_running() for record in started.values())
