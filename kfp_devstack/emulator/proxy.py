"""Forwarding KFP calls to a real KFP API server, for the emulator's real-backend mode.

In that mode the emulator stands in front of the real server: every KFP call is still
counted and subject to injected faults (which cannot happen inside the real server),
then forwarded as it came, byte for byte (path, raw query, body, the headers that
matter), and the real answer goes back unchanged.
"""

from __future__ import annotations

import http.client
from urllib.parse import urlsplit

from kfp_devstack.emulator.http_server import RawBody, Request, Response

# The headers a KFP client sends that the server reads; hop-by-hop headers stay behind.
_FORWARDED_HEADERS = ("content-type", "authorization", "kubeflow-userid", "accept")
_TIMEOUT_SECONDS = 60.0


class KfpProxy:
    def __init__(self, base_url: str) -> None:
        parts = urlsplit(base_url)
        assert parts.hostname is not None and parts.port is not None
        self._host = parts.hostname
        self._port = parts.port

    def forward(self, request: Request) -> Response:
        target = request.path + (f"?{request.raw_query}" if request.raw_query else "")
        headers = {name: value for name, value in request.headers.items() if name in _FORWARDED_HEADERS}
        connection = http.client.HTTPConnection(self._host, self._port, timeout=_TIMEOUT_SECONDS)
        try:
            connection.request(request.method, target, body=request.body or None, headers=headers)
            answer = connection.getresponse()
            body = answer.read()
            content_type = answer.getheader("Content-Type", "application/json")
        finally:
            connection.close()
        return Response(answer.status, RawBody(body, content_type))
