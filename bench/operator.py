"""The real operator (``python -m controller``) as a child process, observed from outside.

Everything the bench reads about it comes from outside the process: its
``/metrics`` and ``/readyz`` endpoints, its Lease in the API server (leadership),
and ``/proc`` (CPU time, memory).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import yaml

from bench import procstat
from bench.kubehttp import ApiError, KubeHttp
from bench.procstat import ProcessSample
from bench.promtext import Samples
from kfp_devstack.binaries import PROJECT_ROOT
from kfp_devstack.processes import free_port
from kfp_devstack.waiting import wait_until

STOP_TIMEOUT = 60.0


class OperatorFailed(RuntimeError):
    pass


class OperatorProcess:
    def __init__(self, name: str, config: dict[str, Any], kubeconfig: Path, work_dir: Path) -> None:
        self.name = name
        self.config = dict(config)
        self.metrics_port = free_port()
        self.health_port = free_port()
        self.config["metrics"] = {"bindAddress": f"127.0.0.1:{self.metrics_port}"}
        self.config["health"] = {"bindAddress": f"127.0.0.1:{self.health_port}"}
        self.kubeconfig = kubeconfig
        work_dir.mkdir(parents=True, exist_ok=True)
        self.config_file = work_dir / f"operator-{name}.yaml"
        self.config_file.write_text(yaml.safe_dump(self.config, sort_keys=False))
        self.log = work_dir / f"operator-{name}.log"
        self.process: subprocess.Popen[bytes] | None = None
        self.started_at: float | None = None  # time.monotonic() just before the process was spawned

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def start(self) -> OperatorProcess:
        with self.log.open("ab") as out:
            self.started_at = time.monotonic()
            self.process = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "kfp_operator",
                    f"--config={self.config_file}",
                    f"--kubeconfig={self.kubeconfig}",
                ],
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                cwd=PROJECT_ROOT,
                env={**os.environ, "PYTHONUNBUFFERED": "1"},
            )
        return self

    def wait_ready(self, kube: KubeHttp, *, timeout: float) -> float:
        """Waits until ``/readyz`` answers 200 and the Lease names this instance; returns the
        seconds since :meth:`start`, at the moment both were first seen."""
        wait_until(
            lambda: self._alive() and self.readyz() == 200,
            timeout=timeout,
            interval=0.05,
            message=lambda: f"operator {self.name} /readyz; log:\n{self.tail()}",
        )
        wait_until(
            lambda: self._alive() and self.holds_lease(kube),
            timeout=timeout,
            interval=0.05,
            message=lambda: f"operator {self.name} to lead; log:\n{self.tail()}",
        )
        assert self.started_at is not None
        return time.monotonic() - self.started_at

    def readyz(self) -> int | None:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.health_port}/readyz", timeout=2) as response:
                return response.status
        except urllib.error.HTTPError as error:
            return error.code
        except OSError:
            return None

    def holds_lease(self, kube: KubeHttp) -> bool:
        election = self.config["leaderElection"]
        path = f"/apis/coordination.k8s.io/v1/namespaces/{election['namespace']}/leases/{election['name']}"
        try:
            lease = kube.get_json(path)
        except ApiError as error:
            if error.status == 404:
                return False
            raise
        return (lease.get("spec") or {}).get("holderIdentity") == election["identity"]

    def metrics(self) -> Samples:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.metrics_port}/metrics", timeout=30) as response:
            return Samples.parse(response.read().decode())

    def sample(self) -> ProcessSample:
        """CPU seconds and memory of the operator process, from ``/proc``."""
        return procstat.sample(self.pid)

    def stop(self) -> int:
        """SIGTERM, as Kubernetes stops a pod; returns the exit status."""
        assert self.process is not None
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout=STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=10)
            raise OperatorFailed(f"operator {self.name} did not stop within {STOP_TIMEOUT:.0f}s") from None

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=10)

    def tail(self, lines: int = 30) -> str:
        if not self.log.exists():
            return ""
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])

    def _alive(self) -> bool:
        assert self.process is not None
        if self.process.poll() is not None:
            raise OperatorFailed(
                f"operator {self.name} exited with {self.process.returncode}; log:\n{self.tail()}"
            )
        return True
