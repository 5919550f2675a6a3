"""A real Kubernetes control plane on loopback: etcd and kube-apiserver, with the project's CRDs.

It is started the way envtest starts one (self-made PKI, an admin client
certificate in ``system:masters``, RBAC authorization, ServiceAccount token
signing so TokenRequest works), without kube-controller-manager: namespaces
never finish deleting and nothing garbage-collects, which tests account for by
using a fresh namespace each. Both ``kfp-devstack up`` and the test harness use
this module.
"""

from __future__ import annotations

import base64
import json
import ssl
import subprocess
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import kubernetes
import yaml

from kfp_devstack import processes
from kfp_devstack.binaries import PROJECT_ROOT, Binaries
from kfp_devstack.pki import Pki, ensure_pki
from kfp_devstack.processes import ProcessRecord
from kfp_devstack.waiting import wait_until

CRD_DIR = PROJECT_ROOT / "crds"
READY_TIMEOUT = 120.0  # kube-apiserver's post-start hooks take tens of seconds on 2 cores
START_ATTEMPTS = 3  # a port picked as free may be taken before the server binds it
APISERVER_RESTART_GRACE = 2.0


@dataclass
class Ports:
    etcd_client: int
    etcd_peer: int
    apiserver: int

    @classmethod
    def pick(cls) -> Ports:
        return cls(processes.free_port(), processes.free_port(), processes.free_port())


@dataclass
class ControlPlane:
    """etcd and kube-apiserver with their data, PKI and logs under ``work_dir``.

    ``etcd_data_dir`` may point elsewhere (tests put it on tmpfs for speed).
    """

    binaries: Binaries
    work_dir: Path
    etcd_data_dir: Path | None = None
    ports: Ports | None = None
    etcd: ProcessRecord | None = None
    apiserver: ProcessRecord | None = None
    _children: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict, repr=False)

    @property
    def pki(self) -> Pki:
        return Pki(self.work_dir / "pki")

    @property
    def kubeconfig(self) -> Path:
        return self.work_dir / "kubeconfig"

    @property
    def api_url(self) -> str:
        assert self.ports is not None
        return f"https://127.0.0.1:{self.ports.apiserver}"

    @property
    def etcd_url(self) -> str:
        assert self.ports is not None
        return f"http://127.0.0.1:{self.ports.etcd_client}"

    @property
    def logs_dir(self) -> Path:
        return self.work_dir / "logs"

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self, *, crd_dir: Path = CRD_DIR) -> None:
        """Starts etcd and kube-apiserver, waits until they serve, and installs the CRDs."""
        ensure_pki(self.pki.directory)
        for attempt in range(START_ATTEMPTS):
            if self.ports is None or attempt > 0:
                self.ports = Ports.pick()
            try:
                self._start_etcd()
                self._start_apiserver()
                break
            except processes.ProcessFailed:
                self.stop()
                if attempt == START_ATTEMPTS - 1:
                    raise
        self._write_kubeconfig()
        self._wait_for_default_namespace()
        self.install_crds(crd_dir)

    def stop(self) -> None:
        """Stops kube-apiserver, then etcd (the API server needs etcd to shut down cleanly)."""
        for record in (self.apiserver, self.etcd):
            if record is not None:
                processes.stop(record)
        self.apiserver = self.etcd = None
        self._children.clear()

    def restart_apiserver(self) -> None:
        """Stops and starts kube-apiserver on the same port; its watch cache starts afresh.

        The API server waits for open watches to end before it exits; everything it has is in
        etcd, so it is killed after a short grace period rather than waited for.
        """
        assert self.apiserver is not None
        processes.stop(self.apiserver, timeout=APISERVER_RESTART_GRACE)
        self._start_apiserver()

    def is_running(self) -> bool:
        return all(r is not None and r.is_running() for r in (self.etcd, self.apiserver))

    def is_ready(self) -> bool:
        return self.is_running() and self._readyz() == 200

    # -- clients -----------------------------------------------------------------------------

    def admin_configuration(self) -> kubernetes.client.Configuration:
        configuration = kubernetes.client.Configuration()
        kubernetes.config.load_kube_config(
            config_file=str(self.kubeconfig), client_configuration=configuration
        )
        return configuration

    def compact_etcd(self) -> int:
        """Compacts etcd at its current revision, so older resourceVersions are gone (410)."""
        revision = int(self._etcd_post("/v3/kv/range", {"key": _b64("\0")})["header"]["revision"])
        self._etcd_post("/v3/kv/compaction", {"revision": revision, "physical": True})
        return revision

    def install_crds(self, crd_dir: Path = CRD_DIR) -> None:
        """Applies every CRD in ``crd_dir`` and waits until each is Established."""
        api = kubernetes.client.ApiextensionsV1Api(kubernetes.client.ApiClient(self.admin_configuration()))
        names = []
        for path in sorted(crd_dir.glob("*.yaml")):
            body = yaml.safe_load(path.read_text())
            name = body["metadata"]["name"]
            names.append(name)
            try:
                current = api.read_custom_resource_definition(name)
                body["metadata"]["resourceVersion"] = current.metadata.resource_version
                api.replace_custom_resource_definition(name, body)
            except kubernetes.client.ApiException as error:
                if error.status != 404:
                    raise
                api.create_custom_resource_definition(body)
        for name in names:
            wait_until(
                lambda name=name: _is_established(api.read_custom_resource_definition(name)),
                timeout=30,
                message=f"CRD {name} to be Established",
            )

    # -- persistence (kfp-devstack keeps the control plane between invocations) --------------

    def to_json(self) -> dict[str, Any]:
        assert self.ports is not None and self.etcd is not None and self.apiserver is not None
        return {
            "workDir": str(self.work_dir),
            "etcdDataDir": str(self.etcd_data_dir) if self.etcd_data_dir else None,
            "ports": vars(self.ports),
            "etcd": self.etcd.to_json(),
            "apiserver": self.apiserver.to_json(),
        }

    @classmethod
    def from_json(cls, binaries: Binaries, data: dict[str, Any]) -> ControlPlane:
        return cls(
            binaries=binaries,
            work_dir=Path(data["workDir"]),
            etcd_data_dir=Path(data["etcdDataDir"]) if data.get("etcdDataDir") else None,
            ports=Ports(**data["ports"]),
            etcd=ProcessRecord.from_json(data["etcd"]),
            apiserver=ProcessRecord.from_json(data["apiserver"]),
        )

    # -- internals ---------------------------------------------------------------------------

    def _start_etcd(self) -> None:
        assert self.ports is not None
        data_dir = self.etcd_data_dir or self.work_dir / "etcd"
        peer = f"http://127.0.0.1:{self.ports.etcd_peer}"
        argv = [
            str(self.binaries.etcd),
            "--name=devstack",
            f"--data-dir={data_dir}",
            f"--listen-client-urls={self.etcd_url}",
            f"--advertise-client-urls={self.etcd_url}",
            f"--listen-peer-urls={peer}",
            f"--initial-advertise-peer-urls={peer}",
            f"--initial-cluster=devstack={peer}",
            "--unsafe-no-fsync=true",  # throwaway data: durability is not worth the fsyncs
            "--log-level=warn",
        ]
        process, self.etcd = processes.start("etcd", argv, self.logs_dir / "etcd.log")
        self._children["etcd"] = process
        wait_until(
            lambda: processes.ensure_alive(process, self.etcd) or _http_ok(f"{self.etcd_url}/health"),
            timeout=30,
            message="etcd to report healthy",
        )

    def _start_apiserver(self) -> None:
        assert self.ports is not None
        pki = self.pki
        argv = [
            str(self.binaries.kube_apiserver),
            f"--etcd-servers={self.etcd_url}",
            "--bind-address=127.0.0.1",
            "--advertise-address=127.0.0.1",
            f"--secure-port={self.ports.apiserver}",
            f"--cert-dir={pki.directory}",
            f"--tls-cert-file={pki.serving_cert}",
            f"--tls-private-key-file={pki.serving_key}",
            f"--client-ca-file={pki.ca_cert}",
            "--authorization-mode=RBAC",
            f"--service-account-issuer=https://127.0.0.1:{self.ports.apiserver}/",
            f"--service-account-key-file={pki.service_account_public_key}",
            f"--service-account-signing-key-file={pki.service_account_key}",
            "--service-cluster-ip-range=10.0.0.0/24",
            # Without kube-controller-manager nobody creates a namespace's `default` ServiceAccount.
            "--disable-admission-plugins=ServiceAccount",
            "--allow-privileged=true",
            "--endpoint-reconciler-type=none",
            "--profiling=false",
        ]
        process, self.apiserver = processes.start(
            "kube-apiserver", argv, self.logs_dir / "kube-apiserver.log"
        )
        self._children["kube-apiserver"] = process
        wait_until(
            lambda: processes.ensure_alive(process, self.apiserver) or self._readyz() == 200,
            timeout=READY_TIMEOUT,
            message=lambda: (
                f"kube-apiserver /readyz; last lines of its log:\n"
                f"{processes.log_tail(Path(self.apiserver.log))}"
            ),
            interval=0.2,
        )

    def _readyz(self) -> int | None:
        context = ssl.create_default_context(cafile=str(self.pki.ca_cert))
        context.load_cert_chain(str(self.pki.admin_cert), str(self.pki.admin_key))
        try:
            with urllib.request.urlopen(f"{self.api_url}/readyz", context=context, timeout=5) as response:
                return response.status
        except urllib.error.HTTPError as error:
            return error.code
        except OSError:
            return None

    def _write_kubeconfig(self) -> None:
        pki = self.pki
        admin = {
            "client-certificate-data": _b64_file(pki.admin_cert),
            "client-key-data": _b64_file(pki.admin_key),
        }
        self._kubeconfig_for("admin", admin, self.kubeconfig)

    def token_kubeconfig(self, token: str, path: Path) -> Path:
        """A kubeconfig at ``path`` for a bearer token (a ServiceAccount's, say), holding everything
        in itself (no file paths), as one mounted into a pod would."""
        return self._kubeconfig_for("token", {"token": token}, path)

    def _kubeconfig_for(self, user: str, credentials: dict[str, str], path: Path) -> Path:
        config = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [
                {
                    "name": "kfp-devstack",
                    "cluster": {
                        "server": self.api_url,
                        "certificate-authority-data": _b64_file(self.pki.ca_cert),
                    },
                }
            ],
            "users": [{"name": user, "user": credentials}],
            "contexts": [{"name": "kfp-devstack", "context": {"cluster": "kfp-devstack", "user": user}}],
            "current-context": "kfp-devstack",
        }
        path.write_text(yaml.safe_dump(config))
        path.chmod(0o600)
        return path

    def _wait_for_default_namespace(self) -> None:
        core = kubernetes.client.CoreV1Api(kubernetes.client.ApiClient(self.admin_configuration()))

        def exists() -> bool:
            try:
                core.read_namespace("default")
                return True
            except kubernetes.client.ApiException as error:
                if error.status == 404:
                    return False
                raise

        wait_until(exists, timeout=30, message="the default namespace")

    def _etcd_post(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        request = urllib.request.Request(
            f"{self.etcd_url}{path}",
            data=json.dumps(body).encode(),
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            return json.load(response)


def _is_established(crd: Any) -> bool:
    return any(c.type == "Established" and c.status == "True" for c in (crd.status.conditions or []))


def _http_ok(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return response.status == 200
    except OSError:
        return False


def _b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def _b64_file(path: Path) -> str:
    return base64.b64encode(path.read_bytes()).decode()
