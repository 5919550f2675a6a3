"""The real KFP backend as one object: database, object store, API server and persistence agent.

``RealKfpBackend(work_dir, kubeconfig).start(control_plane)`` prepares the cluster (the
Argo Workflow and ScheduledWorkflow CRDs, the ``kubeflow`` namespace), then starts
MariaDB, moto's S3 server, the API server and the persistence agent, and returns when
the API server answers. ``kfp-devstack up --kfp real`` and the ``real_kfp`` test fixture
both use it; the emulator then stands in front of it (``EmulatorConfig.real_kfp_url``)
to drive its Workflows, count calls and inject faults.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import kubernetes

from kfp_devstack.controlplane import ControlPlane
from kfp_devstack.realkfp.kfp_server import (
    NAMESPACE,
    KfpApiServer,
    KfpBinaries,
    PersistenceAgent,
    locate_kfp_binaries,
)
from kfp_devstack.realkfp.mariadb import MariaDbServer
from kfp_devstack.realkfp.objectstore import MotoS3Server
from kfp_devstack.waiting import wait_until


@dataclass
class RealKfpBackend:
    work_dir: Path
    kubeconfig: Path
    database: MariaDbServer | None = None
    object_store: MotoS3Server | None = None
    api_server: KfpApiServer | None = None
    agent: PersistenceAgent | None = None

    @property
    def url(self) -> str:
        """The real API server's HTTP endpoint (the emulator's proxy forwards to it)."""
        assert self.api_server is not None
        return self.api_server.url

    def start(self, control_plane: ControlPlane, binaries: KfpBinaries | None = None) -> RealKfpBackend:
        binaries = binaries or locate_kfp_binaries()
        prepare_cluster(control_plane, binaries)
        self.database = self.database or MariaDbServer(self.work_dir / "mariadb")
        self.object_store = self.object_store or MotoS3Server(self.work_dir / "s3")
        self.api_server = self.api_server or KfpApiServer(self.work_dir / "apiserver", self.kubeconfig)
        self.agent = self.agent or PersistenceAgent(self.work_dir / "agent", self.kubeconfig)
        try:
            for server in (self.database, self.object_store):
                if not server.is_running():
                    server.start()
            assert self.database.port is not None and self.object_store.port is not None
            if not self.api_server.is_running():
                self.api_server.start(binaries, db_port=self.database.port, s3_port=self.object_store.port)
            if not self.agent.is_running():
                assert self.api_server.http_port is not None and self.api_server.grpc_port is not None
                self.agent.start(
                    binaries, http_port=self.api_server.http_port, grpc_port=self.api_server.grpc_port
                )
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        """Stops the agent first (it reports to the API server), the database last."""
        for server in (self.agent, self.api_server, self.object_store, self.database):
            if server is not None:
                server.stop()

    def is_running(self) -> bool:
        parts = (self.database, self.object_store, self.api_server, self.agent)
        return all(part is not None and part.is_running() for part in parts)

    def components(self) -> list[tuple[str, Any]]:
        return [
            ("mariadb", self.database),
            ("s3 (moto)", self.object_store),
            ("kfp-apiserver", self.api_server),
            ("kfp-persistence", self.agent),
        ]

    def to_json(self) -> dict[str, Any]:
        assert self.database and self.object_store and self.api_server and self.agent
        return {
            "workDir": str(self.work_dir),
            "kubeconfig": str(self.kubeconfig),
            "database": self.database.to_json(),
            "objectStore": self.object_store.to_json(),
            "apiServer": self.api_server.to_json(),
            "agent": self.agent.to_json(),
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> RealKfpBackend:
        return cls(
            work_dir=Path(data["workDir"]),
            kubeconfig=Path(data["kubeconfig"]),
            database=MariaDbServer.from_json(data["database"]),
            object_store=MotoS3Server.from_json(data["objectStore"]),
            api_server=KfpApiServer.from_json(data["apiServer"]),
            agent=PersistenceAgent.from_json(data["agent"]),
        )


def prepare_cluster(control_plane: ControlPlane, binaries: KfpBinaries) -> None:
    """What the API server expects of its cluster: Argo's and KFP's CRDs and its namespace."""
    control_plane.install_crds(binaries.crd_dir)
    core = kubernetes.client.CoreV1Api(kubernetes.client.ApiClient(control_plane.admin_configuration()))

    def namespace_exists() -> bool:
        try:
            core.read_namespace(NAMESPACE)
            return True
        except kubernetes.client.ApiException as error:
            if error.status != 404:
                raise
        try:
            core.create_namespace(
                kubernetes.client.V1Namespace(metadata=kubernetes.client.V1ObjectMeta(name=NAMESPACE))
            )
        except kubernetes.client.ApiException as error:
            if error.status != 409:
                raise
        return False

    wait_until(namespace_exists, timeout=30, message=f"the {NAMESPACE} namespace")
