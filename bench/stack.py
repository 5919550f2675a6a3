"""The bench's own local stack: control plane, KFP emulator (with MLMD) and NATS.

Each is a separate process, as in production: the emulator and its MLMD gRPC
service run in ``python -m kfp_devstack.emulator``, so its CPU is not charged to
the bench. etcd keeps its data on tmpfs when there is one (as the tests do): disk
syncs would otherwise dominate every API write and measure the disk, not the
operator. Everything lives under one work directory and is stopped by
:meth:`BenchStack.stop`.
"""

from __future__ import annotations

import shutil
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from bench.kubehttp import MERGE_PATCH, KubeHttp, runs_path
from bench.runs import run_body, run_spec
from kfp_devstack import binaries
from kfp_devstack.controlplane import ControlPlane
from kfp_devstack.emulator import EmulatorControl, Scenario, Task
from kfp_devstack.examples import (
    PENGUIN_EXPERIMENT,
    PENGUIN_PIPELINE,
    PENGUIN_VERSION,
    PIPELINES_DIR,
    KfpExamples,
    UploadedPipeline,
)
from kfp_devstack.nats import NatsServer, ensure_stream
from kfp_devstack.stack import KfpEmulatorProcess

TMPFS = Path("/dev/shm")  # noqa: S108 - etcd data of a throwaway cluster, in a fresh subdirectory
EVENTS_STREAM = "BENCH"
EVENTS_SUBJECT_PREFIX = "bench"
WARM_UP_NAMESPACE = "bench-warm-up"
WARM_UP_RUNS = 5
# A pipeline whose runs stay RUNNING (its Trainer task is held), for the steady-state scenario.
HELD_PIPELINE = "bench-held-pipeline"
HELD_VERSION = "v1"
# What the Pusher of every completing run pushes, so the Runs' artifact filter finds a model.
PUSHED = Scenario(artifacts={"Pusher": {"pushed_model": [{"pushed": 1}]}})


@dataclass(frozen=True)
class EmulatorTimings:
    """How long each emulated run stays PENDING, and how long each of its tasks runs."""

    pending_seconds: float
    task_seconds: float


@dataclass
class BenchStack:
    work_dir: Path
    timings: EmulatorTimings
    control_plane: ControlPlane | None = None
    kfp: KfpEmulatorProcess | None = None
    nats: NatsServer | None = None
    penguin: UploadedPipeline | None = None
    held: UploadedPipeline | None = None
    experiment_id: str = ""
    _etcd_dir: Path | None = field(default=None, repr=False)
    _kube: KubeHttp | None = field(default=None, repr=False)

    def start(self) -> BenchStack:
        self.work_dir.mkdir(parents=True, exist_ok=True)
        try:
            self._start_control_plane()
            self._start_kfp()
            self._start_nats()
            self._load_kfp()
            self._warm_up()
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        if self.nats is not None:
            self.nats.stop()
        if self.kfp is not None:
            self.kfp.stop()
        if self.control_plane is not None:
            self.control_plane.stop()
        if self._etcd_dir is not None:
            shutil.rmtree(self._etcd_dir, ignore_errors=True)
        self.nats = self.kfp = self.control_plane = None

    # -- what scenarios use ------------------------------------------------------------------

    @property
    def kubeconfig(self) -> Path:
        assert self.control_plane is not None
        return self.control_plane.kubeconfig

    @property
    def kfp_url(self) -> str:
        assert self.kfp is not None
        return self.kfp.url

    @property
    def mlmd_port(self) -> int:
        assert self.kfp is not None and self.kfp.mlmd_port is not None
        return self.kfp.mlmd_port

    @property
    def nats_url(self) -> str:
        assert self.nats is not None
        return self.nats.url

    def process_ids(self) -> dict[str, int]:
        """The stack's server processes by name, for their CPU time."""
        assert self.control_plane is not None and self.kfp is not None and self.nats is not None
        records = {
            "kube-apiserver": self.control_plane.apiserver,
            "etcd": self.control_plane.etcd,
            "kfp-emulator": self.kfp.process,
            "nats": self.nats.process,
        }
        return {name: record.pid for name, record in records.items() if record is not None}

    def emulator(self) -> EmulatorControl:
        return EmulatorControl(self.kfp_url, timeout=60.0)

    def kube(self) -> KubeHttp:
        """An admin client of the API server (one connection pool, shared by the bench's threads)."""
        if self._kube is None:
            self._kube = KubeHttp(self.kubeconfig)
        return self._kube

    def apiserver_metrics(self) -> str:
        """The API server's own ``/metrics`` (admin credentials), for per-resource request counts."""
        return self.kube().request("GET", "/metrics").data.decode()

    # -- internals ---------------------------------------------------------------------------

    def _start_control_plane(self) -> None:
        if TMPFS.is_dir():
            self._etcd_dir = TMPFS / f"kfp-bench-etcd-{uuid.uuid4().hex[:8]}"
        self.control_plane = ControlPlane(
            binaries.locate(), self.work_dir / "control-plane", etcd_data_dir=self._etcd_dir
        )
        self.control_plane.start()

    def _start_kfp(self) -> None:
        self.kfp = KfpEmulatorProcess(state_dir=self.work_dir / "kfp", log=self.work_dir / "logs" / "kfp.log")
        self.kfp.start(
            [
                f"--pending-seconds={self.timings.pending_seconds}",
                f"--task-seconds={self.timings.task_seconds}",
                "--log-level=WARNING",
            ]
        )

    def _start_nats(self) -> None:
        self.nats = NatsServer(work_dir=self.work_dir / "nats")
        self.nats.start()
        ensure_stream(self.nats.url, EVENTS_STREAM, [f"{EVENTS_SUBJECT_PREFIX}.>"])

    def _warm_up(self) -> None:
        """Creates and patches a few Runs nobody watches: the API server's first requests for a
        custom resource are slow (about two seconds here), which would count against the first
        scenario only."""
        kube = self.kube()
        kube.create_namespace(WARM_UP_NAMESPACE)
        for index in range(WARM_UP_RUNS):
            name = f"warm-up-{index}"
            kube.request("POST", runs_path(WARM_UP_NAMESPACE), run_body(name, run_spec()))
            kube.request(
                "PATCH",
                runs_path(WARM_UP_NAMESPACE, name, "status"),
                {"status": {"synchronizationState": "Creating"}},
                content_type=MERGE_PATCH,
            )

    def _load_kfp(self) -> None:
        examples = KfpExamples(self.kfp_url)
        spec = PIPELINES_DIR / "penguin_pipeline.yaml"
        self.penguin = examples.pipeline(PENGUIN_PIPELINE, PENGUIN_VERSION, spec)
        self.held = examples.pipeline(HELD_PIPELINE, HELD_VERSION, spec)
        self.experiment_id = examples.experiment(PENGUIN_EXPERIMENT)
        control = self.emulator()
        control.script_pipeline(PENGUIN_PIPELINE, PUSHED)
        control.script_pipeline(HELD_PIPELINE, Scenario(tasks={"Trainer": Task(held=True)}))
