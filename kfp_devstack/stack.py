"""The whole local stack and its state file, so separate ``kfp-devstack`` invocations agree.

``up`` starts what is not running and leaves what is; ``down`` stops exactly the
processes recorded in the state file (matched by pid and start time); data
directories are kept, so the next ``up`` resumes with the same objects.
"""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import kubernetes
import yaml

from kfp_devstack import binaries, processes
from kfp_devstack.controlplane import ControlPlane
from kfp_devstack.emulator import EmulatorControl, Scenario
from kfp_devstack.examples import (
    COMPILER_IMAGE,
    EXAMPLES_IMAGE,
    PENGUIN_PIPELINE,
    PIPELINES_DIR,
    load_cluster_examples,
)
from kfp_devstack.nats import NatsServer, ensure_stream
from kfp_devstack.processes import ProcessRecord
from kfp_devstack.realkfp import RealKfpBackend
from kfp_devstack.realkfp.kfp_server import KfpApiServer

STATE_FILE = "state.json"
# The JetStream stream that keeps run-completion events, so `nats` consumers can read them later.
EVENTS_STREAM = "EVENTS"
EVENTS_SUBJECT = "events"
KFP_BACKENDS = ("emulator", "real")


@dataclass
class KfpEmulatorProcess(processes.ServerProcess):
    """The KFP API emulator and its MLMD gRPC service, as a separate process."""

    state_dir: Path
    log: Path
    port: int | None = None
    mlmd_port: int | None = None
    process: ProcessRecord | None = None
    real_kfp_url: str | None = None  # in front of a real KFP API server (docs/emulator.md §15)
    _child: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def endpoints_file(self) -> Path:
        return self.state_dir / "endpoints.json"

    def start(self, extra_args: list[str] | None = None, *, kubeconfig: Path | None = None) -> None:
        if self.real_kfp_url is not None:
            assert kubeconfig is not None
            extra_args = [
                *(extra_args or []),
                f"--real-kfp-url={self.real_kfp_url}",
                f"--kubeconfig={kubeconfig}",
            ]

        def argv(new_ports: bool) -> list[str]:
            if self.port is None or new_ports:
                self.port, self.mlmd_port = processes.free_port(), processes.free_port()
            self.endpoints_file.unlink(missing_ok=True)
            return [
                sys.executable,
                "-m",
                "kfp_devstack.emulator",
                "--host=127.0.0.1",
                f"--port={self.port}",
                f"--mlmd-port={self.mlmd_port}",
                f"--state-dir={self.state_dir}",
                *(extra_args or []),
            ]

        self._child, self.process = processes.start_until_ready(
            "kfp-emulator", argv, self.log, self.endpoints_file.exists, timeout=60
        )

    def to_json(self) -> dict[str, Any]:
        assert self.process is not None
        return {
            "stateDir": str(self.state_dir),
            "log": str(self.log),
            "port": self.port,
            "mlmdPort": self.mlmd_port,
            "process": self.process.to_json(),
            "realKfpUrl": self.real_kfp_url,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> KfpEmulatorProcess:
        return cls(
            state_dir=Path(data["stateDir"]),
            log=Path(data["log"]),
            port=data["port"],
            mlmd_port=data["mlmdPort"],
            process=ProcessRecord.from_json(data["process"]),
            real_kfp_url=data.get("realKfpUrl"),
        )


@dataclass
class JobExecutorProcess(processes.ServerProcess):
    """The local Job executor (``kfp_devstack.jobs``): it runs compile Jobs as a kubelet would."""

    work_dir: Path
    log: Path
    process: ProcessRecord | None = None

    def start(self, kubeconfig: Path) -> None:
        _, self.process = processes.start(
            "job-executor",
            [
                sys.executable,
                "-m",
                "kfp_devstack.jobs",
                f"--kubeconfig={kubeconfig}",
                f"--image={EXAMPLES_IMAGE}={PIPELINES_DIR}",
                f"--work-dir={self.work_dir}",
            ],
            self.log,
        )

    def to_json(self) -> dict[str, Any]:
        assert self.process is not None
        return {"workDir": str(self.work_dir), "log": str(self.log), "process": self.process.to_json()}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> JobExecutorProcess:
        return cls(
            work_dir=Path(data["workDir"]),
            log=Path(data["log"]),
            process=ProcessRecord.from_json(data["process"]),
        )


@dataclass
class Stack:
    """Everything ``make dev`` needs, rooted at one directory (``.dev`` by default)."""

    root: Path
    control_plane: ControlPlane | None = None
    kfp: KfpEmulatorProcess | None = None
    nats: NatsServer | None = None
    real_kfp: RealKfpBackend | None = None  # with `up --kfp real`: the real server behind the emulator
    jobs: JobExecutorProcess | None = None

    @property
    def state_file(self) -> Path:
        return self.root / STATE_FILE

    @property
    def kubeconfig(self) -> Path:
        return self.root / "kubeconfig"

    @property
    def operator_config(self) -> Path:
        return self.root / "operator.yaml"

    @classmethod
    def load(cls, root: Path) -> Stack:
        stack = cls(root=root)
        if not stack.state_file.exists():
            return stack
        state = json.loads(stack.state_file.read_text())
        if "controlPlane" in state:
            stack.control_plane = ControlPlane.from_json(binaries.locate(), state["controlPlane"])
        if "kfp" in state:
            stack.kfp = KfpEmulatorProcess.from_json(state["kfp"])
        if "nats" in state:
            stack.nats = NatsServer.from_json(state["nats"])
        if "realKfp" in state:
            stack.real_kfp = RealKfpBackend.from_json(state["realKfp"])
        if "jobs" in state:
            stack.jobs = JobExecutorProcess.from_json(state["jobs"])
        return stack

    def save(self) -> None:
        state: dict[str, Any] = {}
        if self.control_plane is not None and self.control_plane.is_running():
            state["controlPlane"] = self.control_plane.to_json()
        if self.kfp is not None and self.kfp.is_running():
            state["kfp"] = self.kfp.to_json()
        if self.nats is not None and self.nats.is_running():
            state["nats"] = self.nats.to_json()
        if self.real_kfp is not None and any(
            p is not None and p.is_running() for _, p in self.real_kfp.components()
        ):
            state["realKfp"] = self.real_kfp.to_json()
        if self.jobs is not None and self.jobs.is_running():
            state["jobs"] = self.jobs.to_json()
        self.root.mkdir(parents=True, exist_ok=True)
        self.state_file.write_text(json.dumps(state, indent=2) + "\n")

    @property
    def bin_dir(self) -> Path:
        return self.root / "bin"

    def up(self, *, with_kfp: bool = True, with_nats: bool = True, kfp_backend: str = "emulator") -> None:
        """Starts what is not running; ``kfp_backend="real"`` puts the real KFP server behind the
        emulator (and switches a running stack over, keeping the control plane and NATS)."""
        if kfp_backend not in KFP_BACKENDS:
            raise ValueError(f"kfp_backend must be one of {', '.join(KFP_BACKENDS)}")
        self.root.mkdir(parents=True, exist_ok=True)
        self._link_tools()
        try:
            self._up_control_plane()
            if with_kfp:
                self._up_kfp(real=kfp_backend == "real")
                self._up_jobs()  # it compiles Pipelines for KFP: without KFP it has nothing to do
            if with_nats:
                self._up_nats()
        finally:
            self.save()
        self.write_operator_config()

    def down(self) -> list[str]:
        """Stops every recorded process; returns the names of those that were running."""
        stopped = []
        for name, component in (("nats", self.nats), ("kfp", self.kfp), ("job executor", self.jobs)):
            if component is not None and component.is_running():
                component.stop()
                stopped.append(name)
        if self.real_kfp is not None:
            stopped += [
                name for name, part in self.real_kfp.components() if part is not None and part.is_running()
            ]
            self.real_kfp.stop()
            self.real_kfp = None
        if self.control_plane is not None and self.control_plane.is_running():
            self.control_plane.stop()
            stopped.append("control plane")
        self.control_plane = self.kfp = self.nats = None
        self.jobs = None
        self.state_file.unlink(missing_ok=True)
        return stopped

    def status(self) -> list[tuple[str, str, str]]:
        """(component, state, details) rows for humans."""
        rows = []
        cp = self.control_plane
        if cp is None:
            rows.append(("control plane", "stopped", ""))
        else:
            pid = cp.apiserver.pid if cp.apiserver else "-"
            rows.append(
                (
                    "kube-apiserver",
                    "ready" if cp.is_ready() else "not ready",
                    f"{cp.api_url} pid {pid} kubeconfig {self.kubeconfig}",
                )
            )
            rows.append(
                (
                    "etcd",
                    "running" if cp.etcd and cp.etcd.is_running() else "stopped",
                    f"{cp.etcd_url} pid {cp.etcd.pid if cp.etcd else '-'}",
                )
            )
        if self.kfp is not None:
            rows.append(
                (
                    "kfp-emulator",
                    "running" if self.kfp.is_running() else "stopped",
                    f"{self.kfp.url} mlmd 127.0.0.1:{self.kfp.mlmd_port} pid "
                    f"{self.kfp.process.pid if self.kfp.process else '-'} log {self.kfp.log}",
                )
            )
        if self.real_kfp is not None:
            for name, part in self.real_kfp.components():
                if part is not None:
                    pid = part.process.pid if part.process else "-"
                    where = f"port {part.port}" if hasattr(part, "port") else ""
                    if isinstance(part, KfpApiServer):
                        where = f"{part.url} (behind kfp-emulator)"
                    rows.append(
                        (name, "running" if part.is_running() else "stopped", f"{where} pid {pid}".strip())
                    )
        if self.jobs is not None:
            rows.append(
                (
                    "job-executor",
                    "running" if self.jobs.is_running() else "stopped",
                    f"images {EXAMPLES_IMAGE} pid {self.jobs.process.pid if self.jobs.process else '-'} "
                    f"log {self.jobs.log}",
                )
            )
        if self.nats is not None:
            rows.append(
                (
                    "nats",
                    "running" if self.nats.is_running() else "stopped",
                    f"{self.nats.url} pid {self.nats.process.pid if self.nats.process else '-'}",
                )
            )
        return rows

    def load_examples(self) -> None:
        assert self.kfp is not None and self.control_plane is not None
        # The example Run keeps the pushed model: make the emulated Pusher push one.
        EmulatorControl(self.kfp.url).script_pipeline(
            PENGUIN_PIPELINE, Scenario(artifacts={"Pusher": {"pushed_model": [{"pushed": True}]}})
        )
        load_cluster_examples(kubernetes.client.ApiClient(self.control_plane.admin_configuration()))

    def write_operator_config(self) -> None:
        """Writes the operator configuration that points at this stack (used by ``make dev``)."""
        config: dict[str, Any] = {
            "provider": "kfp",
            "defaultExperiment": "Default",
            "pollInterval": "2s",
            "leaderElection": {"enabled": True, "namespace": "default", "name": "kfp-operator"},
            "metrics": {"bindAddress": "127.0.0.1:8080"},
            "health": {"bindAddress": "127.0.0.1:8081"},
            "log": {"format": "console", "level": "info"},
            # The local Job executor runs the compiler's init container with the operator's Python.
            "pipelines": {"compilerImage": COMPILER_IMAGE},
        }
        if self.kfp is not None:
            config["kfp"] = {"endpoint": self.kfp.url}
            config["mlmd"] = {"host": "127.0.0.1", "port": self.kfp.mlmd_port}
        if self.nats is not None:
            config["events"] = {"nats": {"url": self.nats.url, "subject": EVENTS_SUBJECT, "jetstream": True}}
        self.operator_config.write_text(yaml.safe_dump(config, sort_keys=False))

    def _link_tools(self) -> None:
        """Puts the built kubectl and helm in one directory users can add to their PATH."""
        built = binaries.locate()
        self.bin_dir.mkdir(parents=True, exist_ok=True)
        for tool in (built.kubectl, built.helm):
            link = self.bin_dir / tool.name
            if link.is_symlink() or link.exists():
                link.unlink()
            link.symlink_to(tool)

    def _up_control_plane(self) -> None:
        cp = self.control_plane
        if cp is not None and cp.is_ready():
            return
        if cp is not None:
            cp.stop()  # a half-running plane: restart both on the same data and ports
        else:
            cp = ControlPlane(binaries.locate(), self.root / "control-plane")
        self.control_plane = cp
        cp.start()
        # A stable path for users and tools, whatever the control plane's work directory.
        self.kubeconfig.write_text(cp.kubeconfig.read_text())
        self.kubeconfig.chmod(0o600)

    def _up_kfp(self, *, real: bool) -> None:
        real_url = self._up_real_kfp() if real else None
        if self.kfp is not None and self.kfp.is_running():
            if self.kfp.real_kfp_url == real_url:
                return
            self.kfp.stop()  # switching backends: the emulator starts again in front of the other one
        if not real and self.real_kfp is not None:
            self.real_kfp.stop()
            self.real_kfp = None
        if self.kfp is None:
            self.kfp = KfpEmulatorProcess(state_dir=self.root / "kfp", log=self.root / "logs" / "kfp.log")
        self.kfp.real_kfp_url = real_url
        # Each backend keeps its own emulator state (scenarios, shadow runs, ML Metadata).
        self.kfp.state_dir = self.root / ("kfp-real" if real else "kfp")
        self.kfp.start(kubeconfig=self.kubeconfig)

    def _up_real_kfp(self) -> str:
        assert self.control_plane is not None
        if self.real_kfp is None:
            self.real_kfp = RealKfpBackend(self.root / "real-kfp", self.kubeconfig)
        self.real_kfp.start(self.control_plane)
        return self.real_kfp.url

    def _up_jobs(self) -> None:
        if self.jobs is not None and self.jobs.is_running():
            return
        if self.jobs is None:
            self.jobs = JobExecutorProcess(work_dir=self.root / "jobs", log=self.root / "logs" / "jobs.log")
        self.jobs.start(self.kubeconfig)

    def _up_nats(self) -> None:
        if self.nats is not None and self.nats.is_running():
            return
        if self.nats is None:
            self.nats = NatsServer(work_dir=self.root / "nats")
        self.nats.start()
        ensure_stream(self.nats.url, EVENTS_STREAM, [EVENTS_SUBJECT])
