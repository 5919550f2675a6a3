"""The real KFP API server and persistence agent (KFP 2.17.0), built from source and run locally.

``hack/build-kfp-backend.sh`` builds both and caches them per source version; it is
idempotent and prints the directory, which also holds the API server's default
``config.json`` and the Argo Workflow and ScheduledWorkflow CRDs.
``KFP_DEVSTACK_KFP_BIN_DIR`` points at a directory of ready binaries instead.

What they need at run time, and the quirks that shape the code below:

* the API server reads ``<config dir>/config.json`` (database, object store), needs
  ``POD_NAMESPACE`` and the visualization server's host and port variables (any value),
  and takes its ports as ``:PORT`` (its HTTP gateway dials ``"localhost" + flag``), so
  gRPC listens on every interface;
* its ScheduledWorkflow client ignores ``KUBECONFIG`` and reads ``$HOME/.kube/config``:
  both processes get a ``HOME`` of their own holding the control plane's kubeconfig;
* SIGTERM does not stop the API server: it is killed;
* the persistence agent exits unless ``/var/run/secrets/kubeflow/tokens/
  persistenceagent-sa-token`` exists, without a trailing newline (it goes into a header
  verbatim). It runs in a private mount namespace (``unshare -m``) with a tmpfs over
  ``/run``, so that file exists for it alone and the host is left untouched.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import urllib.request
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

from kfp_devstack import processes
from kfp_devstack.binaries import PROJECT_ROOT
from kfp_devstack.processes import ProcessRecord

BUILD_SCRIPT = PROJECT_ROOT / "hack" / "build-kfp-backend.sh"
BIN_DIR_ENV = "KFP_DEVSTACK_KFP_BIN_DIR"
KFP_TAG = "2.17.0"
KFP_COMMIT = "7b70c7b95f6832772efd6fd0029a4024491a0f44"
NAMESPACE = "kubeflow"
BUCKET = "mlpipeline"
DATABASE = "mlpipeline"
# The agent sends this as its bearer token unless told otherwise; a single-user server does not check it.
AGENT_TOKEN = "kfp-devstack-persistence-agent"  # noqa: S105 - not a secret
AGENT_TOKEN_DIR = "/run/secrets/kubeflow/tokens"  # noqa: S105 - a path
READY_TIMEOUT = 180.0  # schema creation on a fresh database takes a while on 2 busy cores


class KfpBackendUnavailable(RuntimeError):
    """The KFP backend binaries could not be found or built."""


@dataclass(frozen=True)
class KfpBinaries:
    directory: Path

    @property
    def apiserver(self) -> Path:
        return self.directory / "apiserver"

    @property
    def persistence_agent(self) -> Path:
        return self.directory / "persistence"

    @property
    def default_config(self) -> Path:
        return self.directory / "config.json"

    @property
    def crd_dir(self) -> Path:
        return self.directory / "crds"


@cache
def locate_kfp_binaries() -> KfpBinaries:
    """The built API server and agent, building them first if needed (minutes when cold)."""
    override = os.environ.get(BIN_DIR_ENV)
    if override:
        return KfpBinaries(Path(override))
    if not BUILD_SCRIPT.exists():
        raise KfpBackendUnavailable(f"set {BIN_DIR_ENV}: {BUILD_SCRIPT} is not available to build them")
    result = subprocess.run(["bash", str(BUILD_SCRIPT)], stdout=subprocess.PIPE, text=True, check=False)
    if result.returncode != 0:
        raise KfpBackendUnavailable(f"{BUILD_SCRIPT} failed with exit code {result.returncode}")
    return KfpBinaries(Path(result.stdout.strip().splitlines()[-1]))


def write_config(
    binaries: KfpBinaries,
    config_dir: Path,
    *,
    db_port: int,
    s3_port: int,
    multi_user: bool = False,
    database: str = DATABASE,
) -> None:
    """The API server's config.json: KFP's defaults with our database and object store.

    A multi-user server authenticates every call (a ``kubeflow-userid`` header, as Kubeflow
    configures it, or a bearer token it reviews with the API server) and authorizes it with a
    SubjectAccessReview; two servers on one MariaDB keep apart by database (the server creates
    its own).
    """
    config = json.loads(binaries.default_config.read_text())
    config["DBDriverName"] = "mysql"
    config["DBConfig"]["MySQLConfig"].update(
        {"Host": "127.0.0.1", "Port": str(db_port), "User": "root", "Password": "", "DBName": database}
    )
    config["ObjectStoreConfig"].update(
        {
            "Host": "127.0.0.1",
            "Port": str(s3_port),
            "Secure": False,
            "Region": "us-east-1",
            "AccessKey": "devstack",
            "SecretAccessKey": "devstack",
            "BucketName": BUCKET,
        }
    )
    config["InitConnectionTimeout"] = "60s"
    config["MULTIUSER"] = "true" if multi_user else "false"
    if multi_user:
        # The identity header as Kubeflow's manifests configure it (the server's defaults are
        # Google IAP's x-goog-authenticated-user-email with an accounts.google.com: prefix).
        config["KUBEFLOW_USERID_HEADER"] = "kubeflow-userid"
        config["KUBEFLOW_USERID_PREFIX"] = ""
    config_dir.mkdir(parents=True, exist_ok=True)
    (config_dir / "config.json").write_text(json.dumps(config, indent=2) + "\n")


def _home_with_kubeconfig(home: Path, kubeconfig: Path) -> Path:
    (home / ".kube").mkdir(parents=True, exist_ok=True)
    shutil.copyfile(kubeconfig, home / ".kube" / "config")
    return home


@dataclass
class KfpApiServer(processes.ServerProcess):
    """``apiserver`` with its config, home and log under ``work_dir``."""

    work_dir: Path
    kubeconfig: Path
    multi_user: bool = False
    database: str = DATABASE
    http_port: int | None = None
    grpc_port: int | None = None
    process: ProcessRecord | None = None
    _child: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    @property
    def log(self) -> Path:
        return self.work_dir / "apiserver.log"

    def start(self, binaries: KfpBinaries, *, db_port: int, s3_port: int) -> None:
        config_dir = self.work_dir / "config"
        write_config(
            binaries,
            config_dir,
            db_port=db_port,
            s3_port=s3_port,
            multi_user=self.multi_user,
            database=self.database,
        )
        home = _home_with_kubeconfig(self.work_dir / "home", self.kubeconfig)
        env = {
            "HOME": str(home),
            "KUBECONFIG": str(self.kubeconfig),
            "POD_NAMESPACE": NAMESPACE,
            # What healthz answers; the release images set them.
            "COMMIT_SHA": KFP_COMMIT,
            "TAG_NAME": KFP_TAG,
            "ML_PIPELINE_VISUALIZATIONSERVER_SERVICE_HOST": "127.0.0.1",
            "ML_PIPELINE_VISUALIZATIONSERVER_SERVICE_PORT": "1",
        }

        def argv(new_ports: bool) -> list[str]:
            if self.http_port is None or new_ports:
                self.http_port, self.grpc_port = processes.free_port(), processes.free_port()
            return [
                str(binaries.apiserver),
                f"--config={config_dir}",
                f"--httpPortFlag=:{self.http_port}",
                f"--rpcPortFlag=:{self.grpc_port}",
                # Webhooks serve only the Kubernetes pipeline store, which is not used here.
                "--disableWebhook=true",
                "--logtostderr=true",
            ]

        self._child, self.process = processes.start_until_ready(
            "kfp-apiserver", argv, self.log, self._healthy, timeout=READY_TIMEOUT, env=env, cwd=self.work_dir
        )

    def _healthy(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.url}/apis/v2beta1/healthz", timeout=2) as response:
                return response.status == 200
        except OSError:
            return False

    def stop(self) -> None:
        # It ignores SIGTERM (its gRPC server waits forever); everything it has is in the database.
        self.kill()

    def to_json(self) -> dict[str, Any]:
        assert self.process is not None
        return {
            "workDir": str(self.work_dir),
            "kubeconfig": str(self.kubeconfig),
            "multiUser": self.multi_user,
            "database": self.database,
            "httpPort": self.http_port,
            "grpcPort": self.grpc_port,
            "process": self.process.to_json(),
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> KfpApiServer:
        return cls(
            work_dir=Path(data["workDir"]),
            kubeconfig=Path(data["kubeconfig"]),
            multi_user=bool(data.get("multiUser", False)),
            database=str(data.get("database", DATABASE)),
            http_port=data["httpPort"],
            grpc_port=data["grpcPort"],
            process=ProcessRecord.from_json(data["process"]),
        )


@dataclass
class PersistenceAgent(processes.ServerProcess):
    """``persistence``: reports the Workflows' status to the API server, as in a cluster."""

    work_dir: Path
    kubeconfig: Path
    process: ProcessRecord | None = None
    _child: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    @property
    def log(self) -> Path:
        return self.work_dir / "persistence-agent.log"

    def start(
        self,
        binaries: KfpBinaries,
        *,
        http_port: int,
        grpc_port: int,
        namespace: str = NAMESPACE,
        token: str = AGENT_TOKEN,
    ) -> None:
        """Reports the Workflows of ``namespace``. A multi-user server reviews the agent's
        ``token`` and authorizes its reports: a ServiceAccount token of KFP's audience then."""
        home = _home_with_kubeconfig(self.work_dir / "home", self.kubeconfig)
        agent = [
            str(binaries.persistence_agent),
            f"--kubeconfig={self.kubeconfig}",
            f"--namespace={namespace}",
            "--mlPipelineAPIServerName=localhost",
            f"--mlPipelineServiceHttpPort={http_port}",
            f"--mlPipelineServiceGRPCPort={grpc_port}",
            # The defaults (5 QPS) are sized for a cluster; tests create runs in bursts.
            "--clientQPS=50",
            "--clientBurst=100",
            "--numWorker=4",
            "--logtostderr=true",
        ]
        # The token file at its fixed path, visible to this process only.
        script = (
            'mount -t tmpfs -o size=1m,mode=0755 tmpfs /run && mkdir -p "$TOKEN_DIR" && '
            'printf %s "$TOKEN" > "$TOKEN_DIR/persistenceagent-sa-token" && exec "$@"'
        )
        unshare = ["unshare", "--mount"] if os.geteuid() == 0 else ["unshare", "--map-root-user", "--mount"]
        argv = [*unshare, "sh", "-c", script, "persistence-agent", *agent]
        env = {
            "HOME": str(home),
            "KUBECONFIG": str(self.kubeconfig),
            "TOKEN": token,
            "TOKEN_DIR": AGENT_TOKEN_DIR,
        }
        self._child, self.process = processes.start("kfp-persistence-agent", argv, self.log, env=env)

    def ensure_alive(self) -> None:
        assert self._child is not None and self.process is not None
        processes.ensure_alive(self._child, self.process)

    def to_json(self) -> dict[str, Any]:
        assert self.process is not None
        return {
            "workDir": str(self.work_dir),
            "kubeconfig": str(self.kubeconfig),
            "process": self.process.to_json(),
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> PersistenceAgent:
        return cls(
            work_dir=Path(data["workDir"]),
            kubeconfig=Path(data["kubeconfig"]),
            process=ProcessRecord.from_json(data["process"]),
        )
