"""`kfp-devstack up/status/down` as a user runs them, in a separate state directory."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from kfp_devstack import binaries
from kfp_devstack.processes import ProcessRecord


def recorded_processes(root: Path) -> list[ProcessRecord]:
    state = json.loads((root / "state.json").read_text())
    records = [ProcessRecord.from_json(state["controlPlane"][k]) for k in ("etcd", "apiserver")]
    records += [ProcessRecord.from_json(state[k]["process"]) for k in ("kfp", "nats") if k in state]
    return records


@pytest.fixture
def root(tmp_path: Path, devstack):
    yield tmp_path / "dev"
    if (tmp_path / "dev" / "state.json").exists():
        devstack(tmp_path / "dev", "down")


def test_up_serves_runs_is_idempotent_and_down_stops_everything(root: Path, devstack) -> None:
    devstack(root, "up", "--no-kfp")
    started = recorded_processes(root)
    assert {r.name for r in started} == {"etcd", "kube-apiserver", "nats-server"}

    kubectl = subprocess.run(
        [str(binaries.locate().kubectl), f"--kubeconfig={root / 'kubeconfig'}", "get", "runs", "-A"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert "No resources found" in kubectl.stderr

    devstack(root, "up", "--no-kfp")
    assert recorded_processes(root) == started, "a second up restarted running processes"
    status = devstack(root, "status")
    assert "kube-apiserver  ready" in status
    assert "nats            running" in status

    assert "stopped: nats, control plane" in devstack(root, "down")
    assert not any(r.is_running() for r in started)
    assert "control plane   stopped" in devstack(root, "status")


def test_up_restarts_a_component_that_died(root: Path, devstack) -> None:
    devstack(root, "up", "--no-kfp")
    nats = next(r for r in recorded_processes(root) if r.name == "nats-server")
    subprocess.run(["kill", "-9", str(nats.pid)], check=True)

    devstack(root, "up", "--no-kfp")

    restarted = next(r for r in recorded_processes(root) if r.name == "nats-server")
    assert restarted.pid != nats.pid
    assert restarted.is_running()
