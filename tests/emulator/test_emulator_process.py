"""``python -m kfp_devstack.emulator``: endpoints file, serving, clean exit on a signal."""

from __future__ import annotations

import json
import signal
import subprocess
import sys

import pytest

from kfp_devstack.emulator import Emulator, EmulatorConfig
from kfp_devstack.waiting import wait_until
from tests.emulator.helpers import raw_call


def _start(state_dir, *extra):
    return subprocess.Popen(
        [sys.executable, "-m", "kfp_devstack.emulator", "--state-dir", str(state_dir), *extra],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_the_process_writes_its_endpoints_serves_and_exits_on_sigterm(tmp_path):
    state_dir = tmp_path / "state"
    process = _start(state_dir, "--multi-user", "--accept-token", "t1", "--task-seconds", "0.1")
    endpoints_file = state_dir / "endpoints.json"
    try:
        wait_until(endpoints_file.exists, timeout=30, message="endpoints.json")
        endpoints = json.loads(endpoints_file.read_text())

        assert endpoints["pid"] == process.pid
        assert endpoints["mlmd"]["host"] == "127.0.0.1" and endpoints["mlmd"]["port"] > 0
        healthz = raw_call(endpoints["kfp"], "GET", "/apis/v2beta1/healthz")
        assert healthz.body["multi_user"] is True
        authorized = raw_call(
            endpoints["kfp"],
            "GET",
            "/apis/v2beta1/experiments",
            query={"namespace": "a"},
            headers={"Authorization": "Bearer t1"},
        )
        assert authorized.status == 200
    finally:
        process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=30)

    assert process.returncode == 0, stderr
    assert "emulator ready" in stderr
    assert not endpoints_file.exists()


def test_a_non_loopback_address_is_refused(tmp_path):
    process = _start(tmp_path / "state", "--host", "0.0.0.0")
    _, stderr = process.communicate(timeout=30)

    assert process.returncode == 2
    assert "loopback" in stderr


def test_a_port_in_use_fails_the_start_and_releases_the_rest(start_emulator, tmp_path):
    first = start_emulator(tmp_path / "first")
    taken_port = int(first.url.rsplit(":", 1)[1])

    with pytest.raises(OSError):
        Emulator(EmulatorConfig(state_dir=tmp_path / "second", port=taken_port)).start()

    second = start_emulator(tmp_path / "second")
    assert raw_call(second.url, "GET", "/apis/v2beta1/healthz").status == 200
