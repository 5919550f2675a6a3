"""The kfp-operator process with ``metrics.secure``: HTTPS, and only for tokens allowed to get /metrics.

The setting decides: without it (the default, as ``make dev`` and the other tests run) the
operator serves plain HTTP; with it, what the chart turns on, the same process serves HTTPS with
a self-signed certificate, or with the pair of ``metrics.certDir``, and reviews every token with
the API server it runs against.
"""

from __future__ import annotations

import socket
import ssl
import subprocess
import sys
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import kubernetes
import pytest
import yaml

from controller.servingcert import CERT_FILE, KEY_FILE, generate_self_signed
from kfp_devstack.waiting import wait_until

pytestmark = pytest.mark.timeout(120)

KFP_OPERATOR = Path(sys.executable).parent / "kfp-operator"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def unverified() -> ssl.SSLContext:
    """What a ServiceMonitor with ``insecureSkipVerify`` does: TLS without checking the certificate."""
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


class Operator:
    """A kfp-operator process with its metrics configured by ``metrics``."""

    def __init__(self, tmp: Path, kubeconfig: Path, metrics: dict[str, Any]) -> None:
        self.metrics_port, self.health_port = free_port(), free_port()
        self.log = tmp / "operator.log"
        config = tmp / "operator.yaml"
        config.write_text(
            yaml.safe_dump(
                {
                    "leaderElection": {"enabled": False},
                    "metrics": {"bindAddress": f"127.0.0.1:{self.metrics_port}", **metrics},
                    "health": {"bindAddress": f"127.0.0.1:{self.health_port}"},
                    "log": {"format": "json"},
                    "shutdownTimeout": "5s",
                }
            )
        )
        with self.log.open("wb") as log:
            self.process = subprocess.Popen(
                [str(KFP_OPERATOR), "--config", str(config), "--kubeconfig", str(kubeconfig)],
                stdout=log,
                stderr=subprocess.STDOUT,
            )

    def scrape(
        self, scheme: str, token: str | None = None, context: ssl.SSLContext | None = None
    ) -> tuple[int, str]:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        request = urllib.request.Request(f"{scheme}://127.0.0.1:{self.metrics_port}/metrics", headers=headers)
        try:
            with urllib.request.urlopen(request, context=context, timeout=15) as response:
                return response.status, response.read().decode()
        except urllib.error.HTTPError as error:
            return error.code, error.read().decode()

    def wait_serving(self) -> None:
        def listening() -> bool:
            assert self.process.poll() is None, self.log.read_text()
            with socket.socket() as s:
                return s.connect_ex(("127.0.0.1", self.metrics_port)) == 0

        wait_until(listening, timeout=60, message=lambda: f"the metrics port; log:\n{self.log.read_text()}")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)


@pytest.fixture
def operator(tmp_path: Path, control_plane: Any) -> Iterator[Callable[[dict[str, Any]], Operator]]:
    started: list[Operator] = []

    def start(metrics: dict[str, Any]) -> Operator:
        process = Operator(tmp_path, control_plane.kubeconfig, metrics)
        started.append(process)
        process.wait_serving()
        return process

    yield start
    for process in started:
        process.stop()


@pytest.fixture
def reader_token(
    api_client: kubernetes.client.ApiClient, namespace: str, service_account_token: Callable[..., str]
) -> Iterator[str]:
    """A ServiceAccount token bound to a ClusterRole that allows get on /metrics."""
    rbac = kubernetes.client.RbacAuthorizationV1Api(api_client)
    name = f"metrics-reader-{uuid.uuid4().hex[:8]}"
    rbac.create_cluster_role(
        {"metadata": {"name": name}, "rules": [{"nonResourceURLs": ["/metrics"], "verbs": ["get"]}]}
    )
    rbac.create_cluster_role_binding(
        {
            "metadata": {"name": name},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": name},
            "subjects": [{"kind": "ServiceAccount", "name": "prometheus", "namespace": namespace}],
        }
    )
    user = f"system:serviceaccount:{namespace}:prometheus"
    authorization = kubernetes.client.AuthorizationV1Api(api_client)
    wait_until(
        lambda: (
            authorization.create_subject_access_review(
                {"spec": {"user": user, "nonResourceAttributes": {"path": "/metrics", "verb": "get"}}}
            ).status.allowed
        ),
        timeout=10,
        message="the binding to take effect",
    )
    yield service_account_token(namespace, "prometheus")
    rbac.delete_cluster_role_binding(name)
    rbac.delete_cluster_role(name)


def test_by_default_metrics_are_plain_http_for_anyone(operator: Callable[[dict[str, Any]], Operator]) -> None:
    process = operator({})

    status, body = process.scrape("http")

    assert status == 200 and "controller_runtime_reconcile_total" in body


def test_secure_metrics_are_https_for_allowed_tokens_only(
    operator: Callable[[dict[str, Any]], Operator], reader_token: str
) -> None:
    process = operator({"secure": True})

    assert process.scrape("https", context=unverified()) == (401, "Unauthorized\n")
    status, body = process.scrape("https", reader_token, context=unverified())
    assert status == 200 and "controller_runtime_reconcile_total" in body
    with pytest.raises(urllib.error.URLError, match="CERTIFICATE_VERIFY_FAILED"):
        process.scrape("https", reader_token)  # self-signed: only insecureSkipVerify accepts it


def test_secure_metrics_serve_the_certificate_of_cert_dir(
    operator: Callable[[dict[str, Any]], Operator], reader_token: str, tmp_path: Path
) -> None:
    chain, key, ca = generate_self_signed(["localhost", "127.0.0.1"], timedelta(days=1))
    cert_dir = tmp_path / "certs"
    cert_dir.mkdir()
    (cert_dir / CERT_FILE).write_bytes(chain)
    (cert_dir / KEY_FILE).write_bytes(key)
    process = operator({"secure": True, "certDir": str(cert_dir)})

    verifying = ssl.create_default_context(cadata=ca.decode())
    status, _ = process.scrape("https", reader_token, context=verifying)

    assert status == 200


def test_a_cert_dir_without_a_certificate_stops_the_start_with_a_message(
    tmp_path: Path, control_plane: Any
) -> None:
    config = tmp_path / "operator.yaml"
    config.write_text(
        yaml.safe_dump(
            {"leaderElection": {"enabled": False}, "metrics": {"secure": True, "certDir": str(tmp_path)}}
        )
    )

    result = subprocess.run(
        [str(KFP_OPERATOR), "--config", str(config), "--kubeconfig", str(control_plane.kubeconfig)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    assert result.returncode == 2
    assert "invalid configuration: metrics.certDir: cannot serve HTTPS with" in result.stderr
