"""The kfp-operator process against a real API server: leading, serving, stopping, failing over.

Each test runs real ``kfp-operator --config FILE --kubeconfig K`` subprocesses. Handover
timings are chosen so that the behaviour shows in *whether* something happens before a
deadline, never in how fast it happened: a clean stop must hand over well within a lease
that is much longer than the wait, which only a released lease allows.
"""

from __future__ import annotations

import contextlib
import json
import platform
import re
import signal
import socket
import subprocess
import sys
import urllib.error
import urllib.request
from importlib.metadata import version
from pathlib import Path
from typing import Any

import kubernetes.client
import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from controller.keys import ObjectKey
from controller.kube import Kube
from controller.resource import LEASES
from kfp_devstack.waiting import wait_until
from reconcilers.api import GROUP

pytestmark = pytest.mark.timeout(180)

LEASE = "kfp-operator-leader"
KFP_OPERATOR = Path(sys.executable).parent / "kfp-operator"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Operator:
    """One kfp-operator subprocess with its own identity, ports, config file and log."""

    def __init__(self, tmp: Path, kubeconfig: Path, namespace: str, identity: str, **leader: str) -> None:
        self.identity = identity
        self.metrics_port, self.health_port = free_port(), free_port()
        self.config = tmp / f"{identity}.yaml"
        self.log = tmp / f"{identity}.log"
        self.config.write_text(
            yaml.safe_dump(
                {
                    "leaderElection": {"namespace": namespace, "name": LEASE, **leader},
                    "metrics": {"bindAddress": f"127.0.0.1:{self.metrics_port}"},
                    "health": {"bindAddress": f"127.0.0.1:{self.health_port}"},
                    "log": {"format": "json", "level": "info"},
                    "shutdownTimeout": "5s",
                }
            )
        )
        with self.log.open("wb") as log:
            self.process = subprocess.Popen(
                [
                    str(KFP_OPERATOR),
                    "--config",
                    str(self.config),
                    "--kubeconfig",
                    str(kubeconfig),
                    "--leader-election-identity",
                    identity,
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
            )

    def get(self, port: int, path: str) -> tuple[int, str]:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as response:
                return response.status, response.read().decode()
        except urllib.error.HTTPError as err:
            return err.code, err.read().decode()
        except OSError:
            return 0, ""

    def health(self, path: str) -> int:
        return self.get(self.health_port, path)[0]

    def metrics(self) -> str:
        status, text = self.get(self.metrics_port, "/metrics")
        assert status == 200, f"/metrics answered {status}"
        return text

    def master_status(self) -> float | None:
        for family in text_string_to_metric_families(self.metrics()):
            for sample in family.samples:
                if sample.name == "leader_election_master_status" and sample.labels.get("name") == LEASE:
                    return sample.value
        return None

    def wait_ready(self) -> None:
        wait_until(
            lambda: self.health("/readyz") == 200,
            timeout=60,
            message=lambda: f"{self.identity} to be ready; log:\n{self.tail()}",
        )

    def stop(self, sig: signal.Signals = signal.SIGTERM, timeout: float = 60) -> int:
        self.process.send_signal(sig)
        return self.process.wait(timeout)

    def tail(self) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-30:])

    def log_lines(self) -> list[dict[str, Any]]:
        lines = []
        for line in self.log.read_text(errors="replace").splitlines():
            with contextlib.suppress(ValueError):
                lines.append(json.loads(line))
        return lines

    def cleanup(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)


@pytest.fixture
def operators(tmp_path: Path, control_plane: Any, namespace: str) -> Any:
    started: list[Operator] = []

    def start(identity: str, **leader: str) -> Operator:
        operator = Operator(tmp_path, control_plane.kubeconfig, namespace, identity, **leader)
        started.append(operator)
        return operator

    yield start
    for operator in started:
        operator.cleanup()


def lease(kube: Kube, namespace: str) -> dict[str, Any]:
    return kube.get_or_none(LEASES, ObjectKey(namespace, LEASE)) or {}


def holder(kube: Kube, namespace: str) -> str:
    return (lease(kube, namespace).get("spec") or {}).get("holderIdentity") or ""


def test_the_operator_leads_serves_and_stops_cleanly(
    kube: Kube, namespace: str, operators: Any, promtool: Path
) -> None:
    op = operators("solo")
    wait_until(
        lambda: holder(kube, namespace) == "solo", timeout=60, message=lambda: f"leadership\n{op.tail()}"
    )
    op.wait_ready()
    assert op.health("/healthz") == 200
    status, verbose = op.get(op.health_port, "/readyz?verbose")
    assert status == 200 and "[+]informers ok" in verbose and "[+]leader-election ok" in verbose

    text = op.metrics()
    assert op.master_status() == 1
    assert 'rest_client_requests_total{code="200",host="127.0.0.1:' in text
    assert "process_resident_memory_bytes" in text
    labels = f'python_version="{platform.python_version()}",version="{version("kfp-operator")}"'
    build = f"kfp_operator_build_info{{{labels}}} 1.0"
    assert build in text.splitlines(), "which operator the scrape came from"
    for thread in ("MainThread", "worker-run", "reflector-runs.pipelines.kubeflow.org", "leader-election"):
        assert f'controller_thread_cpu_seconds_total{{thread="{thread}"}}' in text, thread
    # prometheus_client's "<counter>_created" timestamp series are turned off, as Go clients have none.
    assert not re.search(r"^\w+_created(\{| )", text, re.MULTILINE)
    checked = subprocess.run(
        [str(promtool), "check", "metrics"],
        input=text,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert checked.returncode == 0 and not (checked.stdout + checked.stderr).strip(), (
        checked.stdout + checked.stderr
    )

    # The informers' first sync froze the heap for the garbage collector (controller.gcpolicy).
    wait_until(
        lambda: any(
            line.get("msg") == "informers synced: heap frozen for the garbage collector"
            and line["objects"] > 0
            for line in op.log_lines()
        ),
        timeout=30,
        message=lambda: f"the heap freeze after the first sync; log:\n{op.tail()}",
    )

    spec = lease(kube, namespace)["spec"]
    assert spec["leaseDurationSeconds"] == 15
    assert spec["renewTime"].endswith("Z") and "." in spec["renewTime"], "MicroTime"

    assert op.stop(signal.SIGTERM) == 0
    released = lease(kube, namespace)["spec"]
    assert released["holderIdentity"] == "", "the lease is released on a clean stop"
    assert released["leaseDurationSeconds"] == 1
    messages = [line.get("msg") for line in op.log_lines()]
    assert "released leader lease" in messages and "stopped" in messages


def test_one_leader_and_failover_when_it_is_killed(
    kube: Kube, namespace: str, operators: Any, api_client: kubernetes.client.ApiClient
) -> None:
    timings = {"leaseDuration": "4s", "renewDeadline": "3s", "retryPeriod": "500ms"}
    lists_before = custom_resource_lists(api_client)
    ops = {name: operators(name, **timings) for name in ("a", "b")}
    wait_until(lambda: holder(kube, namespace) in ops, timeout=60, message="a leader")
    for op in ops.values():
        op.wait_ready()  # the standby is ready too
    leader = ops[holder(kube, namespace)]
    standby = next(op for op in ops.values() if op is not leader)
    assert leader.master_status() == 1 and standby.master_status() == 0, "exactly one leads"
    transitions = lease(kube, namespace)["spec"]["leaseTransitions"]
    lists = custom_resource_lists(api_client)
    assert lists > lists_before, "each instance lists the operator's resources as it starts"

    leader.stop(signal.SIGKILL)
    wait_until(
        lambda: holder(kube, namespace) == standby.identity,
        timeout=60,
        message=lambda: f"the standby to take over\n{standby.tail()}",
    )
    assert lease(kube, namespace)["spec"]["leaseTransitions"] == transitions + 1
    wait_until(lambda: standby.master_status() == 1, timeout=30, message="the new leader's status")
    wait_until(
        lambda: controllers_started(standby),
        timeout=30,
        message=lambda: f"the new leader's controllers to start\n{standby.tail()}",
    )
    # The standby's informers were synced before it led: taking over lists nothing again.
    assert custom_resource_lists(api_client) == lists


def controllers_started(op: Operator) -> bool:
    """Whether every controller the operator started has started its workers (after its
    informers synced)."""
    lines = op.log_lines()
    starting = [line["controllers"] for line in lines if line.get("msg") == "starting controllers"]
    started = {line.get("controller") for line in lines if line.get("msg") == "starting workers"}
    return bool(starting) and set(starting[0]) <= started


def custom_resource_lists(api_client: kubernetes.client.ApiClient) -> float:
    """LIST requests the API server has answered for the operator's resources (its own
    ``apiserver_request_total``)."""
    response = api_client.rest_client.pool_manager.request("GET", f"{api_client.configuration.host}/metrics")
    assert response.status == 200, f"the API server's /metrics answered {response.status}"
    text = response.data.decode()
    return sum(
        sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == "apiserver_request_total"
        and sample.labels.get("verb") == "LIST"
        and sample.labels.get("group") == GROUP
    )


def test_a_clean_stop_hands_over_without_waiting_for_the_lease(
    kube: Kube, namespace: str, operators: Any
) -> None:
    # A 60 s lease: the standby can only take over within the 20 s wait below if it was released.
    timings = {"leaseDuration": "60s", "renewDeadline": "40s", "retryPeriod": "500ms"}
    ops = {name: operators(name, **timings) for name in ("a", "b")}
    wait_until(lambda: holder(kube, namespace) in ops, timeout=60, message="a leader")
    leader = ops[holder(kube, namespace)]
    standby = next(op for op in ops.values() if op is not leader)
    standby.wait_ready()
    assert leader.stop(signal.SIGTERM) == 0
    wait_until(
        lambda: holder(kube, namespace) == standby.identity,
        timeout=20,
        message=lambda: f"the standby to take over the released lease\n{standby.tail()}",
    )
