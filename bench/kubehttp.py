"""A lean HTTP client for the Kubernetes API server, for the bench's own load and observations.

The bench creates tens of thousands of objects on two cores shared with the system
under test, so it talks to the API server with raw JSON over the operator's own
transport (``controller.libcurl``; POSTs and streams over urllib3, as the operator's):
the official client's model (de)serialisation would cost the bench more CPU than the
API server spends on the requests. The floor sends its requests the same way, so the
operator and its floor pay the same for each request. Credentials come from the
kubeconfig the control plane writes (client certificate and CA).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import kubernetes
import urllib3

from controller.libcurl import REPEATABLE_METHODS, CurlSession, TlsOptions
from reconcilers.api import GROUP, VERSION

MERGE_PATCH = "application/merge-patch+json"


class ApiError(RuntimeError):
    def __init__(self, method: str, path: str, status: int, body: bytes) -> None:
        super().__init__(f"{method} {path}: HTTP {status}: {body[:300].decode(errors='replace')}")
        self.status = status


@dataclass(frozen=True)
class Response:
    status: int
    data: bytes

    def json(self) -> Any:
        return json.loads(self.data)


class KubeHttp:
    """Raw JSON requests to the API server named by a kubeconfig (thread-safe)."""

    def __init__(self, kubeconfig: Path, *, pool_size: int = 64) -> None:
        configuration = kubernetes.client.Configuration()
        kubernetes.config.load_kube_config(config_file=str(kubeconfig), client_configuration=configuration)
        self.host = configuration.host
        self._pool = urllib3.PoolManager(
            maxsize=pool_size,
            block=False,
            cert_reqs="CERT_REQUIRED",
            ca_certs=configuration.ssl_ca_cert,
            cert_file=configuration.cert_file,
            key_file=configuration.key_file,
            retries=False,
            timeout=urllib3.Timeout(connect=10, read=60),
        )
        self._curl = CurlSession(
            TlsOptions(
                ca_file=configuration.ssl_ca_cert,
                cert_file=configuration.cert_file,
                key_file=configuration.key_file,
            )
        )

    def request(
        self, method: str, path: str, body: Any = None, *, content_type: str = "application/json"
    ) -> Response:
        """Sends one request; raises :class:`ApiError` for a non-2xx answer."""
        data = None if body is None else json.dumps(body).encode()
        headers = {"Accept": "application/json"}
        if data is not None:
            headers["Content-Type"] = content_type
        response: Any
        if method in REPEATABLE_METHODS:
            response = self._curl.request(method, self.host + path, headers, data, 70.0)
        else:  # as the operator sends it (controller.libcurl)
            response = self._pool.request(method, self.host + path, body=data, headers=headers)
        if not 200 <= response.status < 300:
            raise ApiError(method, path, response.status, response.data)
        return Response(response.status, response.data)

    def get_json(self, path: str) -> Any:
        return self.request("GET", path).json()

    def open_stream(self, path: str, *, read_timeout: float) -> Stream:
        """Starts a streamed request (a watch); raises :class:`ApiError` for a non-200 answer."""
        response = self._pool.request(
            "GET",
            self.host + path,
            headers={"Accept": "application/json"},
            preload_content=False,
            timeout=urllib3.Timeout(connect=10, read=read_timeout),
        )
        if response.status != 200:
            body = response.read()
            response.release_conn()
            raise ApiError("GET", path, response.status, body)
        return Stream(response)

    def create_namespace(self, name: str) -> None:
        self.request(
            "POST",
            "/api/v1/namespaces",
            {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}},
        )


class Stream:
    """The lines of a streamed response as they arrive; :meth:`close` ends it from any thread."""

    def __init__(self, response: urllib3.BaseHTTPResponse) -> None:
        self._response = response

    def lines(self) -> Iterator[bytes]:
        buffer = b""
        try:
            for chunk in self._response.stream(64 * 1024):
                buffer += chunk
                while b"\n" in buffer:
                    line, buffer = buffer.split(b"\n", 1)
                    if line.strip():
                        yield line
        finally:
            self._response.release_conn()

    def close(self) -> None:
        # Unblocks a read in progress: the API server would otherwise wait for the watch on shutdown.
        self._response.shutdown()


def runs_path(namespace: str, name: str | None = None, subresource: str | None = None) -> str:
    path = f"/apis/{GROUP}/{VERSION}/namespaces/{namespace}/runs"
    if name is not None:
        path += f"/{name}"
    if subresource is not None:
        path += f"/{subresource}"
    return path
